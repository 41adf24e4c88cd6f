"""The owner's web pages: sign in with an owner token, then the business's calls, each call with
its transcript, consent record and texts, and all of the business's texts.

Plain server-rendered HTML that works without JavaScript. Signing in posts the token once; the
browser then holds only a session cookie (HttpOnly, Secure over HTTPS, path ``/owner``) whose
hash is a row in ``owner_sessions``. The cookie is SameSite=Lax, so a link from the owner's
summary text or an email opens signed in, while cross-site posts carry no cookie. Every form post
must also come from a page of this site: its ``Origin`` (or, lacking one, its ``Referer``) must be
the public base URL's origin or the request's own. Responses are never cached, never framed, and
may run no script.

Every page reads the signed-in owner's business only: another business's call is a plain 404.
The texts page lists first the replies held as possible opt-outs (texts to those numbers are
paused); the owner decides each with one of two form posts, ``/owner/texts/held/{id}/opt-out``
(revoked like STOP) or ``/owner/texts/held/{id}/not-opt-out`` (the paused texts go on); another
business's hold is a 404.
Refusals are pages too: a bad page number is a 400, a missing call or page a 404, a foreign form
post a 403, a token that does not work a 401 that says no more than that. The page handlers are
plain ``def`` functions, so FastAPI runs them in its thread pool and the blocking database calls
never stall the event loop that carries live calls.

The lead puts an :class:`OwnerContext` at ``app.state.owner`` and includes :func:`owner_router`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy import Connection, Engine

from dashboard.access_tokens import OWNER_TOKENS, AttemptLimiter
from dashboard.call_log import BusinessProfile, CallLog
from dashboard.owner_pages import render
from dashboard.owner_queries import (
    PageNotFound,
    call_page,
    calls_page,
    read_snapshot,
    texts_page,
)
from dashboard.owner_sessions import end_session, find_session, start_session
from sms_sender import decide_held_reply

SESSION_COOKIE = "owner_session"
_COOKIE_PATH = "/owner"
_SIGN_IN = "/owner/sign-in"
_CALLS = "/owner/calls"
_PAGE_NUMBER = re.compile(r"[1-9][0-9]{0,5}")
_CALL_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TEXTS = "/owner/texts"
_HOLD_ID = re.compile(r"[1-9][0-9]{0,17}")
_HOLD_DECISIONS = {"opt-out": "opt_out", "not-opt-out": "not_opt_out"}
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
logger = logging.getLogger(__name__)

_TOO_MANY = "Too many sign-in attempts from your network. Please wait a minute and try again."
_TOKEN_REFUSED = (
    "That access token did not work. It may be mistyped, expired or revoked; "
    "ask your operator for a new one."
)


@dataclass(frozen=True)
class OwnerContext:
    """What the owner pages need from the application.

    ``engine`` signs owners in and out; ``read_engine`` reads the pages (on SQLite, one made with
    ``read_only=True``, so that reading never takes the write lock calls need);
    ``public_base_url`` is where browsers reach us, for the origin check and Secure cookies;
    ``token_attempts`` slows down guessing of sign-in tokens, per address.
    """

    engine: Engine
    read_engine: Engine
    call_log: CallLog
    clock: Callable[[], datetime]
    public_base_url: str
    page_size: int = 50
    token_attempts: AttemptLimiter = field(default_factory=AttemptLimiter)


class SignInRequired(Exception):
    """No working session came with the request: the owner is sent to sign in."""


class PageError(Exception):
    """A request the pages refuse, shown as a page with ``status``, a title and a message."""

    def __init__(
        self, status: int, title: str, message: str, business: BusinessProfile | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.business = business


class _OwnerPageRoute(APIRoute):
    """A route whose refusals are pages and whose every response carries the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired:
                response = _redirect(_SIGN_IN)
                if SESSION_COOKIE in request.cookies:
                    _forget_session_cookie(response, request)
            except RequestValidationError:
                response = _error_page(
                    PageError(422, "Request refused", "The request could not be read.")
                )
            except PageError as error:
                response = _error_page(error)
            response.headers.update(_SECURITY_HEADERS)
            return response

        return handle


def owner_router() -> APIRouter:
    """The ``/owner`` pages."""
    router = APIRouter(
        prefix="/owner", tags=["owner"], route_class=_OwnerPageRoute, include_in_schema=False
    )
    from_our_pages = [Depends(same_origin)]
    router.add_api_route("", home, methods=["GET"])
    router.add_api_route("/sign-in", sign_in_form, methods=["GET"])
    router.add_api_route("/sign-in", sign_in, methods=["POST"], dependencies=from_our_pages)
    router.add_api_route("/sign-out", sign_out, methods=["POST"], dependencies=from_our_pages)
    router.add_api_route("/calls", calls, methods=["GET"])
    router.add_api_route("/calls/{call_sid:path}", call, methods=["GET"])
    router.add_api_route("/texts", texts, methods=["GET"])
    router.add_api_route(
        "/texts/held/{hold_id}/{decision}",
        decide_hold,
        methods=["POST"],
        dependencies=from_our_pages,
    )
    return router


def owner_context(request: Request) -> OwnerContext:
    """The application's :class:`OwnerContext` (a server error when the app was built without)."""
    context = getattr(request.app.state, "owner", None)
    if not isinstance(context, OwnerContext):
        raise RuntimeError("app.state.owner must hold an OwnerContext")
    return context


Context = Annotated[OwnerContext, Depends(owner_context)]


def same_origin(request: Request, context: Context) -> None:
    """Refuse (403) a form post that does not come from a page of this site."""
    claimed = request.headers.get("origin") or _origin(request.headers.get("referer", ""))
    ours = {
        _origin(context.public_base_url),
        _origin(f"{request.url.scheme}://{request.url.netloc}"),
    }
    if not claimed or claimed.lower() not in ours:
        raise PageError(
            403, "Form refused", "This form can only be sent from the owner pages of this site."
        )


# --- signing in and out -------------------------------------------------------------------------


def home() -> Response:
    return _redirect(_CALLS)


def sign_in_form() -> Response:
    return _page("sign_in.html", title="Sign in", business=None, problem=None)


def sign_in(request: Request, context: Context, token: Annotated[str, Form()] = "") -> Response:
    """Check the owner token and start a session; the same refusal whatever was wrong."""
    address = request.client.host if request.client is not None else "unknown"
    wait = context.token_attempts.retry_after(address)
    if wait is not None:
        logger.warning("owner sign-in refused: too many bad tokens from one address")
        response = _page("sign_in.html", 429, title="Sign in", business=None, problem=_TOO_MANY)
        response.headers["Retry-After"] = str(wait)
        return response
    now = context.clock()
    started = None
    with context.engine.begin() as conn:
        owner = OWNER_TOKENS.authenticate(conn, token.strip(), now)
        if owner is not None and context.call_log.business(conn, owner.business_id) is not None:
            started = start_session(conn, owner, now)
    if started is None:
        context.token_attempts.failed(address)
        return _page("sign_in.html", 401, title="Sign in", business=None, problem=_TOKEN_REFUSED)
    response = _redirect(_CALLS)
    response.set_cookie(
        SESSION_COOKIE,
        started.secret,
        max_age=int((started.session.expires_at - now).total_seconds()),
        path=_COOKIE_PATH,
        secure=_secure(request, context),
        httponly=True,
        samesite="lax",
    )
    return response


def sign_out(request: Request, context: Context) -> Response:
    presented = request.cookies.get(SESSION_COOKIE)
    if presented is not None:
        with context.engine.begin() as conn:
            end_session(conn, presented, context.clock())
    response = _redirect(_SIGN_IN)
    _forget_session_cookie(response, request)
    return response


# --- the pages ------------------------------------------------------------------------------------


def calls(request: Request, context: Context, page: str = "1") -> Response:
    """The business's calls, newest first, a page at a time."""
    with read_snapshot(context.read_engine) as conn:
        business = _signed_in_business(conn, request, context)
        number = _page_number(page, business)
        try:
            found = calls_page(conn, context.call_log, business, number, context.page_size)
        except PageNotFound as missing:
            raise PageError(404, "No such page", str(missing), business) from None
    return _page(
        "calls.html",
        title="Calls",
        business=business,
        section="calls",
        rows=found.rows,
        window=found.window,
        unanswered=found.unanswered,
    )


def call(request: Request, context: Context, call_sid: str) -> Response:
    """One call: the message, both sides of the transcript, consent, and the caller's texts."""
    with read_snapshot(context.read_engine) as conn:
        business = _signed_in_business(conn, request, context)
        found = (
            call_page(conn, context.call_log, business, call_sid)
            if _CALL_SID.fullmatch(call_sid)
            else None
        )
    if found is None:
        raise PageError(404, "No such call", "Your business has no call with that id.", business)
    return _page(
        "call.html",
        title=f"Call from {found.call.caller_number}",
        business=business,
        section="calls",
        call=found.call,
        consent=found.consent,
        texts=found.texts,
        texts_total=found.texts_total,
    )


def texts(request: Request, context: Context, page: str = "1") -> Response:
    """The business's texts both ways, newest first, opt-outs marked, a page at a time."""
    with read_snapshot(context.read_engine) as conn:
        business = _signed_in_business(conn, request, context)
        number = _page_number(page, business)
        try:
            found = texts_page(conn, business, number, context.page_size)
        except PageNotFound as missing:
            raise PageError(404, "No such page", str(missing), business) from None
    return _page(
        "texts.html",
        title="Texts",
        business=business,
        section="texts",
        texts=found.texts,
        window=found.window,
        held=found.held,
    )


def decide_hold(request: Request, context: Context, hold_id: str, decision: str) -> Response:
    """The owner's decision on a held reply: an opt-out, or not one."""
    chosen = _HOLD_DECISIONS.get(decision)
    with context.engine.begin() as conn:
        business = _signed_in_business(conn, request, context)
        decided = None
        if chosen is not None and _HOLD_ID.fullmatch(hold_id):
            decided = decide_held_reply(
                conn, business.id, business.name, int(hold_id), chosen, context.clock()
            )
    if decided is None:
        raise PageError(
            404, "No such reply", "Your business has no held reply with that id.", business
        )
    logger.info(
        "owner decided a held reply: %s", decided.decision, extra={"business_id": business.id}
    )
    return _redirect(_TEXTS)


# --- helpers --------------------------------------------------------------------------------------


def _signed_in_business(
    conn: Connection, request: Request, context: OwnerContext
) -> BusinessProfile:
    presented = request.cookies.get(SESSION_COOKIE)
    session = None if presented is None else find_session(conn, presented, context.clock())
    if session is None:
        raise SignInRequired
    business = context.call_log.business(conn, session.business_id)
    if business is None:
        raise PageError(404, "No such business", "This business is no longer set up here.")
    return business


def _page_number(raw: str, business: BusinessProfile) -> int:
    if _PAGE_NUMBER.fullmatch(raw) is None:
        raise PageError(
            400, "Bad page number", "Page numbers are whole numbers from 1 to 999999.", business
        )
    return int(raw)


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, lower-cased; empty when it has none."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def _secure(request: Request, context: OwnerContext) -> bool:
    return request.url.scheme == "https" or context.public_base_url.startswith("https://")


def _forget_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path=_COOKIE_PATH,
        secure=_secure(request, owner_context(request)),
        httponly=True,
        samesite="lax",
    )


def _redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


def _error_page(error: PageError) -> Response:
    return _page(
        "error.html",
        error.status,
        title=error.title,
        message=error.message,
        business=error.business,
        section=None,
    )


def _page(template: str, status: int = 200, **values: Any) -> Response:
    return HTMLResponse(render(template, **values), status_code=status)
