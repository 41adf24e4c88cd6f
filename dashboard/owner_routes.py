"""The owner's web pages: sign in with an owner token, then the business's calls (searched,
filtered, downloaded as CSV), each call with its transcript, consent record and texts, and the
business's texts as one conversation per number. From a call's page the owner calls back (a
``tel:`` link), texts a reply, marks the call handled, writes a note or cancels a follow-up.
(Owners and staff sign in with their phone through ``owner_sign_in``; their sessions are read
here like token sessions, and slide on as they are used. Staff may do everything here but change
the settings: a 403.)

Plain server-rendered HTML that works without JavaScript. Signing in posts the token once; the
browser then holds only a session cookie (HttpOnly, Secure over HTTPS, path ``/owner``) whose
hash is a row in ``owner_sessions`` (or ``phone_sessions``). The cookie is SameSite=Lax, so a
link from the owner's summary text or an email opens signed in, while cross-site posts carry no
cookie. Every form post must also come from a page of this site: its ``Origin`` (or, lacking one,
its ``Referer``) must be the public base URL's origin or the request's own; and every post but
signing in carries the session's form token (a hash of the session's secret, which only our
pages, rendered for that session, hold). Responses are never cached and never framed, and may run
no script but the "on a call now" page's own, served from here (the page works without it).

Every page and action reads or changes the signed-in owner's business only: another business's
call, conversation or text is a plain 404.
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

import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import anyio
from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.responses import Response as PlainResponse
from fastapi.routing import APIRoute
from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool

from consent_ledger import AudioStatus, AudioStore
from dashboard.access_tokens import OWNER_TOKENS, AttemptLimiter
from dashboard.business_settings import (
    DAY_NAMES,
    SETTING_LABELS,
    SettingsError,
    SettingsStore,
    form_values,
    recent_changes,
    record_changes,
    settings_from_form,
)
from dashboard.call_handling import add_note, mark_handled
from dashboard.call_log import BusinessProfile, CallDetails, CallFilter, CallLog
from dashboard.call_search import (
    CONSENTS,
    HANDLED_CHOICES,
    URGENCIES,
    CallSearch,
    SearchError,
)
from dashboard.calls_csv import calls_csv
from dashboard.owner_pages import REPLY_REFUSALS, TEMPLATES, live_call_line, render
from dashboard.owner_queries import (
    NO_TEXTING,
    CallPage,
    PageNotFound,
    call_page,
    calls_page,
    read_snapshot,
    texts_page,
    thread_page,
)
from dashboard.owner_sessions import OwnerSession, end_session, find_session, start_session
from dashboard.people import Role, current_person
from dashboard.phone_sessions import renew_phone_session
from sms_sender import (
    FOLLOW_UP_KINDS,
    MAX_REPLY_LENGTH,
    cancel_message,
    decide_held_reply,
    get_message,
    last_four,
    queue_owner_reply,
    reply_refusal,
)

SESSION_COOKIE = "owner_session"
_COOKIE_PATH = "/owner"
_SIGN_IN = "/owner/sign-in"
_CALLS = "/owner/calls"
_PAGE_NUMBER = re.compile(r"[1-9][0-9]{0,5}")
_CALL_SID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TEXTS = "/owner/texts"
_HOLD_ID = re.compile(r"[1-9][0-9]{0,17}")
_HOLD_DECISIONS = {"opt-out": "opt_out", "not-opt-out": "not_opt_out"}
_TEXT_ID = re.compile(r"[1-9][0-9]{0,17}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_DONE = {
    "reply": "Your text is on its way; it shows below as queued, then sent.",
    "handled": "Marked handled. Follow-up texts not sent yet were cancelled.",
    "note": "Note saved.",
    "cancelled": "That text was cancelled; it will not be sent.",
    "settings": "Settings saved. They apply from the next call.",
}
CHANGES_SHOWN = 50
LIVE_CALL_LIMIT = timedelta(minutes=30)
"""A call shows as in progress for at most this long (a process that died mid-call leaves its
admitted stream behind, and the journal stores the call when it comes back)."""
_LIVE_SCRIPT = (TEMPLATES / "live.js").read_text(encoding="utf-8")
_FORM_REFUSED = "This form is out of date. Go back, reload the page and send it again."
_OWNERS_ONLY = "Only the business's owners can change its settings."
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
"""Every page's headers: never cached, never framed, no script, nothing loaded from elsewhere."""
_OWNER_PAGE_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; media-src 'self'; script-src 'self'; "
        "connect-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
"""The owner pages' headers: the same, but for this site's own script, events and recordings."""
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
    ``token_attempts`` slows down guessing of sign-in tokens and codes, per address;
    ``code_requests`` limits how many sign-in codes one address may ask for;
    ``text_queued``, called on the event loop, has a text just queued sent at once;
    ``audio_root`` is the answer audio's store (``consent_ledger.AudioStore``), played on a call's
    page when present; the "on a call now" events come every ``live_interval`` seconds,
    ``live_updates`` per stream; ``settings_store`` reads and changes the business's settings (no
    settings page without it).
    """

    engine: Engine
    read_engine: Engine
    call_log: CallLog
    clock: Callable[[], datetime]
    public_base_url: str
    page_size: int = 50
    token_attempts: AttemptLimiter = field(default_factory=AttemptLimiter)
    code_requests: AttemptLimiter = field(
        default_factory=lambda: AttemptLimiter(max_failures=10, window=900.0)
    )
    text_queued: Callable[[], None] | None = None
    audio_root: Path | None = None
    live_interval: float = 2.0
    live_updates: int = 300
    settings_store: SettingsStore | None = None


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


class OwnerPageRoute(APIRoute):
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
                    request, PageError(422, "Request refused", "The request could not be read.")
                )
            except PageError as error:
                response = _error_page(request, error)
            if response.status_code < 400:
                await run_in_threadpool(_renew_session, request, response)
            response.headers.update(_OWNER_PAGE_HEADERS)
            return response

        return handle


def owner_router() -> APIRouter:
    """The ``/owner`` pages."""
    router = APIRouter(
        prefix="/owner", tags=["owner"], route_class=OwnerPageRoute, include_in_schema=False
    )
    from_our_pages = [Depends(same_origin)]
    router.add_api_route("", home, methods=["GET"])
    router.add_api_route("/sign-in", sign_in_form, methods=["GET"])
    router.add_api_route("/sign-in", sign_in, methods=["POST"], dependencies=from_our_pages)
    router.add_api_route(
        "/sign-out", sign_out, methods=["POST"], dependencies=[Depends(from_our_forms)]
    )
    our_forms = [Depends(from_our_forms)]
    router.add_api_route("/calls", calls, methods=["GET"])
    router.add_api_route("/calls.csv", calls_download, methods=["GET"])
    router.add_api_route(
        "/calls/{call_sid}/reply", reply_to_caller, methods=["POST"], dependencies=our_forms
    )
    router.add_api_route(
        "/calls/{call_sid}/handled", handled, methods=["POST"], dependencies=our_forms
    )
    router.add_api_route("/calls/{call_sid}/notes", note, methods=["POST"], dependencies=our_forms)
    router.add_api_route(
        "/calls/{call_sid}/follow-ups/{text_id}/cancel",
        cancel_follow_up,
        methods=["POST"],
        dependencies=our_forms,
    )
    router.add_api_route("/calls/{call_sid}/answer.wav", answer_audio, methods=["GET"])
    router.add_api_route("/calls/{call_sid:path}", call, methods=["GET"])
    router.add_api_route("/texts", texts, methods=["GET"])
    router.add_api_route("/live", live, methods=["GET"])
    router.add_api_route("/live/events", live_events, methods=["GET"])
    router.add_api_route("/live.js", live_script, methods=["GET"])
    router.add_api_route("/settings", settings_page, methods=["GET"])
    router.add_api_route("/settings", change_settings, methods=["POST"], dependencies=our_forms)
    router.add_api_route(
        "/texts/held/{hold_id}/{decision}",
        decide_hold,
        methods=["POST"],
        dependencies=our_forms,
    )
    router.add_api_route("/texts/{number}", thread, methods=["GET"])
    router.add_api_route(
        "/texts/{number}/reply", reply_in_thread, methods=["POST"], dependencies=our_forms
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
    if not from_this_site(request, context.public_base_url):
        raise PageError(
            403, "Form refused", "This form can only be sent from the owner pages of this site."
        )


def from_our_forms(request: Request, context: Context, csrf: Annotated[str, Form()] = "") -> None:
    """Refuse a form post that does not come from this site (403), that comes without a session
    (sent to sign in), or whose form token is not the session's (403)."""
    same_origin(request, context)
    presented = request.cookies.get(SESSION_COOKIE)
    if presented is None:
        raise SignInRequired
    if not hmac.compare_digest(csrf.encode(), form_token(presented).encode()):
        raise PageError(403, "Form refused", _FORM_REFUSED)


def form_token(session_secret: str) -> str:
    """The token the session's forms carry: a hash of its secret, so a page of another site can
    neither read nor work it out."""
    return hashlib.sha256(f"owner-form:{session_secret}".encode()).hexdigest()


# --- signing in and out -------------------------------------------------------------------------


def home() -> Response:
    return _redirect(_CALLS)


def sign_in_form(request: Request) -> Response:
    return render_page(request, "sign_in.html", title="Sign in", business=None, problem=None)


def sign_in(request: Request, context: Context, token: Annotated[str, Form()] = "") -> Response:
    """Check the owner token and start a session; the same refusal whatever was wrong."""
    address = request.client.host if request.client is not None else "unknown"
    wait = context.token_attempts.retry_after(address)
    if wait is not None:
        logger.warning("owner sign-in refused: too many bad tokens from one address")
        response = render_page(
            request, "sign_in.html", 429, title="Sign in", business=None, problem=_TOO_MANY
        )
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
        return render_page(
            request, "sign_in.html", 401, title="Sign in", business=None, problem=_TOKEN_REFUSED
        )
    response = _redirect(_CALLS)
    set_session_cookie(response, request, context, started.secret, started.session.expires_at)
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


def calls(
    request: Request,
    context: Context,
    page: str = "1",
    q: str = "",
    from_: Annotated[str, Query(alias="from")] = "",
    to: str = "",
    urgency: str = "",
    consent: str = "",
    handled: str = "",
) -> Response:
    """The business's calls that the search picks, newest first, a page at a time."""
    search = CallSearch(q, from_, to, urgency, consent, handled)
    with read_snapshot(context.read_engine) as conn:
        signed = signed_in(conn, request, context)
        business = signed.business
        number = _page_number(page, business)
        wanted = _filter(search, business)
        try:
            found = calls_page(conn, context.call_log, business, wanted, number, context.page_size)
        except PageNotFound as missing:
            raise PageError(404, "No such page", str(missing), business) from None
    return render_page(
        request,
        "calls.html",
        title="Calls",
        business=business,
        section="calls",
        rows=found.rows,
        window=found.window,
        unanswered=found.unanswered,
        search=search,
        query=search.query(),
        urgencies=URGENCIES,
        consents=CONSENTS,
        handled_choices=HANDLED_CHOICES,
    )


def calls_download(
    request: Request,
    context: Context,
    q: str = "",
    from_: Annotated[str, Query(alias="from")] = "",
    to: str = "",
    urgency: str = "",
    consent: str = "",
    handled: str = "",
) -> Response:
    """The calls the search picks, every one of them, as a CSV file."""
    search = CallSearch(q, from_, to, urgency, consent, handled)
    with read_snapshot(context.read_engine) as conn:
        business = signed_in(conn, request, context).business
        listings = context.call_log.calls(conn, business.id, _filter(search, business), 0, None)
    day = context.clock().astimezone(ZoneInfo(business.time_zone)).date().isoformat()
    return PlainResponse(
        calls_csv(business, listings, context.public_base_url),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="calls-{business.id}-{day}.csv"'},
    )


def answer_audio(request: Request, context: Context, call_sid: str) -> Response:
    """The recording of the caller's answer to the consent question, when one is stored."""
    with read_snapshot(context.read_engine) as conn:
        business = signed_in(conn, request, context).business
        found = _their_call_page(conn, context, business, call_sid, context.clock())
    digest = _stored_answer_audio(context, found)
    if digest is None or context.audio_root is None:
        raise PageError(404, "No recording", "This call has no recording of the answer.", business)
    return PlainResponse(
        AudioStore(context.audio_root).read(digest),
        media_type="audio/wav",
        headers={"Content-Disposition": "inline"},
    )


def call(request: Request, context: Context, call_sid: str, done: str = "") -> Response:
    """One call: the message, what to do about it, consent now and on the call, the texts with
    the caller and both sides of the transcript."""
    return _call_response(request, context, call_sid, _Outcome(done=_DONE.get(done)))


def texts(request: Request, context: Context, page: str = "1") -> Response:
    """The business's conversations, the latest first, and the replies held for a decision."""
    with read_snapshot(context.read_engine) as conn:
        business = signed_in(conn, request, context).business
        number = _page_number(page, business)
        try:
            found = texts_page(conn, business, number, context.page_size)
        except PageNotFound as missing:
            raise PageError(404, "No such page", str(missing), business) from None
    return render_page(
        request,
        "texts.html",
        title="Texts",
        business=business,
        section="texts",
        threads=found.threads,
        window=found.window,
        held=found.held,
    )


def thread(request: Request, context: Context, number: str, done: str = "") -> Response:
    """Every text between the business and one number, and a reply when one may go."""
    return _thread_response(request, context, number, _Outcome(done=_DONE.get(done)))


def live(request: Request, context: Context) -> Response:
    """The calls the assistant is on now (the list updates itself where scripts run)."""
    now = context.clock()
    with read_snapshot(context.read_engine) as conn:
        business = signed_in(conn, request, context).business
        found = context.call_log.live_calls(conn, business.id, now - LIVE_CALL_LIMIT)
    return render_page(
        request, "live.html", title="On a call now", business=business, section="live",
        live=found, now=now,
    )  # fmt: skip


def live_events(request: Request, context: Context) -> Response:
    """Server-sent events: the calls in progress now, as lines of words, every
    ``context.live_interval`` seconds, ``context.live_updates`` times (the browser reconnects);
    the stream ends as soon as the session does."""
    with read_snapshot(context.read_engine) as conn:
        business = signed_in(conn, request, context).business

    def lines() -> list[str] | None:
        now = context.clock()
        with read_snapshot(context.read_engine) as conn:
            try:
                signed_in(conn, request, context)
            except SignInRequired:
                return None
            found = context.call_log.live_calls(conn, business.id, now - LIVE_CALL_LIMIT)
        return [live_call_line(call.started_at, business.time_zone, now) for call in found]

    async def events() -> AsyncIterator[str]:
        yield f"retry: {int(context.live_interval * 1000)}\n\n"
        for update in range(context.live_updates):
            if update and await request.is_disconnected():
                return
            current = await anyio.to_thread.run_sync(lines)
            if current is None:
                return
            yield f"event: calls\ndata: {json.dumps(current)}\n\n"
            await anyio.sleep(context.live_interval)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"}
    )


def live_script() -> Response:
    """The small script that keeps the "on a call now" list current."""
    return PlainResponse(_LIVE_SCRIPT, media_type="text/javascript; charset=utf-8")


def settings_page(request: Request, context: Context, done: str = "") -> Response:
    """The settings an owner may change, the consent script (read-only), and the changes made."""
    with read_snapshot(context.read_engine) as conn:
        business = signed_in_owner(conn, request, context).business
        current = _settings_store(context, business).settings(conn, business.id)
        if current is None:
            raise PageError(404, "No such business", "This business is no longer set up here.")
    return _settings_response(request, context, business, form_values(current), _DONE.get(done))


def change_settings(
    request: Request,
    context: Context,
    callback_time: Annotated[str, Form()] = "",
    owner_phone: Annotated[str, Form()] = "",
    ring_owner_first: Annotated[str, Form()] = "",
    ring_seconds: Annotated[str, Form()] = "",
    recording_enabled: Annotated[str, Form()] = "",
    max_texts: Annotated[str, Form()] = "",
    no_reply_follow_up_hours: Annotated[str, Form()] = "",
    callback_check_hours: Annotated[str, Form()] = "",
    excluded_numbers: Annotated[str, Form()] = "",
    hours_start: Annotated[str, Form()] = "",
    hours_end: Annotated[str, Form()] = "",
    open_days: Annotated[list[str] | None, Form()] = None,
    after_hours_callback: Annotated[str, Form()] = "",
    booking_url: Annotated[str, Form()] = "",
) -> Response:
    """Store the owner's settings and a record of each one changed; a setting the rules refuse
    changes nothing, and the page says why with what was typed still in the form."""
    posted = {
        "callback_time": callback_time,
        "owner_phone": owner_phone,
        "ring_owner_first": ring_owner_first,
        "ring_seconds": ring_seconds,
        "recording_enabled": recording_enabled,
        "max_texts": max_texts,
        "no_reply_follow_up_hours": no_reply_follow_up_hours,
        "callback_check_hours": callback_check_hours,
        "excluded_numbers": excluded_numbers,
        "hours_start": hours_start,
        "hours_end": hours_end,
        "after_hours_callback": after_hours_callback,
        "booking_url": booking_url,
    }
    days = open_days or []
    with read_snapshot(context.read_engine) as conn:
        business = signed_in_owner(conn, request, context).business
    store = _settings_store(context, business)
    try:
        with context.engine.begin() as conn:
            signed = signed_in_owner(conn, request, context)
            old = store.settings(conn, business.id)
            if old is None:
                raise SettingsError("This business is no longer set up here.")
            now = context.clock()
            new = store.change(conn, business.id, settings_from_form(posted, days), now)
            by = acted_by(conn, signed.session)
            changed = record_changes(conn, business.id, old, new, by, now)
    except SettingsError as refused:
        shown = {**posted, "open_days": days}
        return _settings_response(request, context, business, shown, None, str(refused))
    logger.info("owner changed %d settings", len(changed), extra={"business_id": business.id})
    return _redirect("/owner/settings?done=settings")


# --- acting on a call -----------------------------------------------------------------------------


def reply_to_caller(
    request: Request,
    context: Context,
    call_sid: str,
    body: Annotated[str, Form()] = "",
    reply_key: Annotated[str, Form()] = "",
) -> Response:
    """Text the caller the owner's reply, when one may go; else the call's page says why."""
    with context.engine.begin() as conn:
        business = signed_in(conn, request, context).business
        found = _their_call(conn, context, business, call_sid)
        problem = _send_reply(conn, context, business, found.caller_number, body, reply_key)
    if problem is None:
        return _redirect(f"{_call_path(call_sid)}?done=reply#reply")
    return _call_response(request, context, call_sid, problem)


def reply_in_thread(
    request: Request,
    context: Context,
    number: str,
    body: Annotated[str, Form()] = "",
    reply_key: Annotated[str, Form()] = "",
) -> Response:
    """Text the owner's reply in a conversation, when one may go; else the page says why."""
    with context.engine.begin() as conn:
        business = signed_in(conn, request, context).business
        if (
            not _E164.fullmatch(number)
            or thread_page(conn, context.call_log, business, number, context.clock()) is None
        ):
            raise _no_thread(business)
        problem = _send_reply(conn, context, business, number, body, reply_key)
    if problem is None:
        return _redirect(f"{_thread_path(number)}?done=reply#reply")
    return _thread_response(request, context, number, problem)


def handled(request: Request, context: Context, call_sid: str) -> Response:
    """Mark the call handled; the follow-ups still pending to the caller are cancelled."""
    with context.engine.begin() as conn:
        signed = signed_in(conn, request, context)
        found = _their_call(conn, context, signed.business, call_sid)
        mark_handled(
            conn,
            signed.business.id,
            found.call_sid,
            found.caller_number,
            acted_by(conn, signed.session),
            context.clock(),
        )
    return _redirect(f"{_call_path(call_sid)}?done=handled")


def note(
    request: Request, context: Context, call_sid: str, body: Annotated[str, Form()] = ""
) -> Response:
    """Keep the owner's note on the call."""
    with context.engine.begin() as conn:
        signed = signed_in(conn, request, context)
        found = _their_call(conn, context, signed.business, call_sid)
        try:
            add_note(
                conn,
                signed.business.id,
                found.call_sid,
                body,
                acted_by(conn, signed.session),
                context.clock(),
            )
        except ValueError as bad:
            raise PageError(400, "Note not saved", str(bad), signed.business) from None
    return _redirect(f"{_call_path(call_sid)}?done=note")


def cancel_follow_up(request: Request, context: Context, call_sid: str, text_id: str) -> Response:
    """Cancel one follow-up text to the caller that is not sent yet."""
    with context.engine.begin() as conn:
        business = signed_in(conn, request, context).business
        found = _their_call(conn, context, business, call_sid)
        message = get_message(conn, int(text_id)) if _TEXT_ID.fullmatch(text_id) else None
        if (
            message is None
            or message.business_id != business.id
            or message.to_number != found.caller_number
            or message.kind not in FOLLOW_UP_KINDS
        ):
            raise PageError(
                404, "No such text", "This call has no follow-up text with that id.", business
            )
        if not cancel_message(conn, message.id, "cancelled by the owner"):
            raise PageError(
                409,
                "Too late to cancel",
                f"That text is already {message.status.value}; it can no longer be cancelled.",
                business,
            )
    return _redirect(f"{_call_path(call_sid)}?done=cancelled")


def decide_hold(request: Request, context: Context, hold_id: str, decision: str) -> Response:
    """The owner's decision on a held reply: an opt-out, or not one."""
    chosen = _HOLD_DECISIONS.get(decision)
    with context.engine.begin() as conn:
        business = signed_in(conn, request, context).business
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


@dataclass(frozen=True)
class SignedIn:
    """The request's working session and its business."""

    business: BusinessProfile
    session: OwnerSession


def signed_in(conn: Connection, request: Request, context: OwnerContext) -> SignedIn:
    """The business of the request's working session, and the session (its role with it)."""
    presented = request.cookies.get(SESSION_COOKIE)
    session = None if presented is None else find_session(conn, presented, context.clock())
    if session is None:
        raise SignInRequired
    business = context.call_log.business(conn, session.business_id)
    if business is None:
        raise PageError(404, "No such business", "This business is no longer set up here.")
    return SignedIn(business, session)


def signed_in_owner(conn: Connection, request: Request, context: OwnerContext) -> SignedIn:
    """Like :func:`signed_in`, for pages that change the business's settings: staff get a 403."""
    signed = signed_in(conn, request, context)
    if signed.session.role is not Role.OWNER:
        raise PageError(403, "Owners only", _OWNERS_ONLY, signed.business)
    return signed


def acted_by(conn: Connection, session: OwnerSession) -> str:
    """Who did something, for the business's records: the owner token's label, or the
    signed-in person's label with their phone's last four digits."""
    if session.token is not None:
        return session.token.label
    number = session.phone_number or ""
    person = current_person(conn, session.business_id, number)
    label = "" if person is None else person.label
    return ", ".join(part for part in (label, last_four(number)) if part)


def set_session_cookie(
    response: Response, request: Request, context: OwnerContext, secret: str, expires_at: datetime
) -> None:
    """Hand the browser the session ``secret`` until ``expires_at``."""
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=max(0, int((expires_at - context.clock()).total_seconds())),
        path=_COOKIE_PATH,
        secure=_secure(request, context),
        httponly=True,
        samesite="lax",
    )


def _renew_session(request: Request, response: Response) -> None:
    """Slide a phone session on as it is used (its cookie with it); nothing for token sessions,
    for responses that set a cookie of their own, or when it was renewed within the hour."""
    presented = request.cookies.get(SESSION_COOKIE)
    if presented is None or "set-cookie" in response.headers:
        return
    context = owner_context(request)
    with context.engine.begin() as conn:
        expires_at = renew_phone_session(conn, presented, context.clock())
    if expires_at is not None:
        set_session_cookie(response, request, context, presented, expires_at)


def _their_call(
    conn: Connection, context: OwnerContext, business: BusinessProfile, call_sid: str
) -> CallDetails:
    found = (
        context.call_log.call(conn, business.id, call_sid)
        if _CALL_SID.fullmatch(call_sid)
        else None
    )
    if found is None:
        raise PageError(404, "No such call", "Your business has no call with that id.", business)
    return found


def _no_thread(business: BusinessProfile) -> PageError:
    return PageError(
        404, "No such conversation", "Your business has no texts with that number.", business
    )


def _send_reply(
    conn: Connection,
    context: OwnerContext,
    business: BusinessProfile,
    number: str,
    body: str,
    reply_key: str,
) -> _Outcome | None:
    """Queue the owner's reply to ``number``; None, or what stopped it (in words, with the draft
    to show again)."""
    if not body.strip() or len(body.strip()) > MAX_REPLY_LENGTH:
        return _Outcome(
            400, problem=f"Write a text of 1 to {MAX_REPLY_LENGTH} characters.", draft=body
        )
    now = context.clock()
    texting = context.call_log.texting(conn, business.id)
    refusal = NO_TEXTING if texting is None else reply_refusal(conn, texting.policy, number, now)
    if texting is None or refusal is not None:
        logger.info("owner reply refused: %s", refusal, extra={"business_id": business.id})
        return _Outcome(409, problem=REPLY_REFUSALS[refusal or NO_TEXTING], draft=body)
    try:
        queue_owner_reply(conn, texting.policy, texting.from_number, number, body, reply_key, now)
    except ValueError:
        return _Outcome(400, problem=_FORM_REFUSED, draft=body)
    logger.info("owner reply queued", extra={"business_id": business.id})
    return None


@dataclass(frozen=True)
class _Outcome:
    """How a page with a reply form answers a post: its status, what was done or what stopped
    it, and the owner's draft to show again."""

    status: int = 200
    done: str | None = None
    problem: str | None = None
    draft: str = ""


def _call_response(
    request: Request, context: OwnerContext, call_sid: str, outcome: _Outcome
) -> Response:
    now = context.clock()
    with read_snapshot(context.read_engine) as conn:
        business = signed_in(conn, request, context).business
        found = _their_call_page(conn, context, business, call_sid, now)
    return _conversation_page(
        request,
        "call.html",
        outcome,
        now,
        title=f"Call from {found.call.caller_number}",
        business=business,
        section="calls",
        call=found.call,
        consent=found.consent,
        texts=found.texts,
        texts_total=found.texts_total,
        conversing=found.conversing,
        handling=found.handling,
        notes=found.notes,
        pending_follow_ups=found.pending_follow_ups,
        answer_audio=_stored_answer_audio(context, found) is not None,
    )


def _thread_response(
    request: Request, context: OwnerContext, number: str, outcome: _Outcome
) -> Response:
    now = context.clock()
    with read_snapshot(context.read_engine) as conn:
        business = signed_in(conn, request, context).business
        found = (
            thread_page(conn, context.call_log, business, number, now)
            if _E164.fullmatch(number)
            else None
        )
    if found is None:
        raise _no_thread(business)
    return _conversation_page(
        request,
        "thread.html",
        outcome,
        now,
        title=f"Texts with {number}",
        business=business,
        section="texts",
        number=number,
        texts=found.texts,
        texts_total=found.texts_total,
        conversing=found.conversing,
    )


def _conversation_page(
    request: Request, template: str, outcome: _Outcome, now: datetime, **values: Any
) -> Response:
    """A page with a reply form: a fresh reply key, and the outcome of what was just posted."""
    return render_page(
        request,
        template,
        outcome.status,
        now=now,
        done=outcome.done,
        problem=outcome.problem,
        draft=outcome.draft,
        reply_key=secrets.token_hex(16),
        **values,
    )


def _their_call_page(
    conn: Connection, context: OwnerContext, business: BusinessProfile, call_sid: str, now: datetime
) -> CallPage:
    found = (
        call_page(conn, context.call_log, business, call_sid, now)
        if _CALL_SID.fullmatch(call_sid)
        else None
    )
    if found is None:
        raise PageError(404, "No such call", "Your business has no call with that id.", business)
    return found


def _settings_store(context: OwnerContext, business: BusinessProfile) -> SettingsStore:
    if context.settings_store is None:
        raise PageError(404, "No settings", "Settings cannot be changed here.", business)
    return context.settings_store


def _settings_response(
    request: Request,
    context: OwnerContext,
    business: BusinessProfile,
    values: Mapping[str, object],
    done: str | None,
    problem: str | None = None,
) -> Response:
    store = _settings_store(context, business)
    with read_snapshot(context.read_engine) as conn:
        script = store.consent_script(conn, business.id)
        changes = recent_changes(conn, business.id, CHANGES_SHOWN)
    return render_page(
        request,
        "settings.html",
        200 if problem is None else 400,
        title="Settings",
        business=business,
        section="settings",
        values=values,
        labels=SETTING_LABELS,
        day_names=DAY_NAMES,
        script=script,
        changes=changes,
        done=done,
        problem=problem,
    )


def _stored_answer_audio(context: OwnerContext, found: CallPage) -> str | None:
    """The sha256 of the call's answer audio when the store holds it."""
    evidence = None if found.consent is None else found.consent.evidence
    digest = None if evidence is None else evidence.audio_sha256
    if digest is None or context.audio_root is None:
        return None
    present = AudioStore(context.audio_root).status(digest) is AudioStatus.PRESENT
    return digest if present else None


def _filter(search: CallSearch, business: BusinessProfile) -> CallFilter:
    try:
        return search.call_filter(business.time_zone)
    except SearchError as bad:
        raise PageError(400, "Search refused", str(bad), business) from None


def _call_path(call_sid: str) -> str:
    return f"{_CALLS}/{quote(call_sid, safe='')}"


def _thread_path(number: str) -> str:
    return f"{_TEXTS}/{quote(number, safe='')}"


def _page_number(raw: str, business: BusinessProfile) -> int:
    if _PAGE_NUMBER.fullmatch(raw) is None:
        raise PageError(
            400, "Bad page number", "Page numbers are whole numbers from 1 to 999999.", business
        )
    return int(raw)


def from_this_site(request: Request, public_base_url: str) -> bool:
    """Whether ``request`` comes from a page of this site: its ``Origin`` (or, lacking one, its
    ``Referer``) is ``public_base_url``'s origin or the request's own."""
    claimed = request.headers.get("origin") or _origin(request.headers.get("referer", ""))
    ours = {_origin(public_base_url), _origin(f"{request.url.scheme}://{request.url.netloc}")}
    return bool(claimed) and claimed.lower() in ours


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


def _error_page(request: Request, error: PageError) -> Response:
    return render_page(
        request,
        "error.html",
        error.status,
        title=error.title,
        message=error.message,
        business=error.business,
        section=None,
    )


def render_page(request: Request, template: str, status: int = 200, **values: Any) -> Response:
    """The page ``template`` with ``values``; its forms carry the session's form token."""
    presented = request.cookies.get(SESSION_COOKIE)
    csrf = "" if presented is None else form_token(presented)
    return HTMLResponse(render(template, csrf=csrf, **values), status_code=status)
