"""Signing in with a phone, and the owner's call-summary choice: the owner pages' routes for
people rather than tokens.

- ``POST /owner/sign-in/phone`` asks for a one-time code: a person's phone gets it by text
  (through the outbox, like every text); any other number gets the very same page and nothing
  else, so the page tells nobody whose number is whose. Each address may ask for 10 codes in
  15 minutes, each phone for 3 (``sign_in_codes``); more is a 429 that says when to try again.
- ``POST /owner/sign-in/code`` checks the code and starts a 30-day phone session (the cookie is
  the token sessions' own: HttpOnly, SameSite=Lax, Secure over HTTPS). Wrong codes count against
  the code (5 and it dies) and against the address (the token sign-in's limiter).
- ``GET /owner/l/{secret}`` is a call summary's link: it shows one button that signs the phone in
  and opens the call (``POST``), so that a link preview fetched by a messaging app cannot use
  the link up. A browser already signed in to that business goes straight to the call.
- ``GET|POST /owner/notifications``: owners see whether call summaries are texted to the owner
  phone and turn them off or on (a ledger event, like STOP and START from that phone). Staff are
  refused with a 403: it is a setting.
- ``GET /owner/sessions``: owners see the business's phones signed in now and sign any of them
  out (``POST /owner/sessions/{id}/sign-out``; another business's session is a 404). Staff: 403.

Every form post must come from a page of this site (``same_origin``); the notification and
sessions posts, made signed in, carry the session's form token too (``from_our_forms``).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Annotated

import phonenumbers
from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from consent_ledger import ConsentMethod, owner_notifications_allowed
from dashboard.call_log import BusinessProfile
from dashboard.owner_routes import (
    SESSION_COOKIE,
    Context,
    OwnerContext,
    OwnerPageRoute,
    PageError,
    from_our_forms,
    render_page,
    same_origin,
    set_session_cookie,
    signed_in_owner,
)
from dashboard.owner_sessions import OwnerSession, find_session
from dashboard.people import current_person, people_with_phone
from dashboard.phone_sessions import (
    SignInMethod,
    revoke_business_session,
    start_phone_session,
    working_phone_sessions,
)
from dashboard.sign_in_codes import CodeCheck, CodeRefused, IssuedCode, check_code, issue_code
from dashboard.sign_in_links import peek_link, redeem_link
from sms_sender import (
    SIGN_IN_LINK_PATH,
    SignInCodeText,
    announce_texts_queued,
    last_four,
    queue_sign_in_code,
    record_notification_choice,
)

logger = logging.getLogger(__name__)

_CALLS = "/owner/calls"
_NOTIFICATIONS = "/owner/notifications"
_NOT_A_PHONE = "That is not a phone number we can text. Enter it with its area code."
_TOO_MANY_CODES = "Too many codes were asked for. Please wait {minutes} minute(s) and try again."
_CODE_REFUSED = (
    "That code did not work. A code works for 10 minutes and 5 tries, and only the newest one "
    "works; ask for a new code if you need one."
)
_TOO_MANY_TRIES = "Too many wrong codes from your network. Please wait a minute and try again."
_LINK_REFUSED = (
    "This sign-in link has expired or was already used. Sign in with your phone number instead."
)
_SESSION_ID = re.compile(r"[1-9][0-9]{0,17}")


def owner_sign_in_router() -> APIRouter:
    """The ``/owner`` routes for signing in by phone and for the owner's notification choice."""
    router = APIRouter(
        prefix="/owner", tags=["owner"], route_class=OwnerPageRoute, include_in_schema=False
    )
    from_our_pages = [Depends(same_origin)]
    router.add_api_route(
        "/sign-in/phone", ask_for_code, methods=["POST"], dependencies=from_our_pages
    )
    router.add_api_route("/sign-in/code", enter_code, methods=["POST"], dependencies=from_our_pages)
    link = SIGN_IN_LINK_PATH.removeprefix("/owner") + "{secret}"
    router.add_api_route(link, link_page, methods=["GET"])
    router.add_api_route(link, use_link, methods=["POST"], dependencies=from_our_pages)
    our_forms = [Depends(from_our_forms)]
    router.add_api_route("/notifications", notifications, methods=["GET"])
    router.add_api_route(
        "/notifications", change_notifications, methods=["POST"], dependencies=our_forms
    )
    router.add_api_route("/sessions", signed_in_phones, methods=["GET"])
    router.add_api_route(
        "/sessions/{session_id}/sign-out", sign_out_phone, methods=["POST"], dependencies=our_forms
    )
    return router


# --- signing in by code ---------------------------------------------------------------------------


async def ask_for_code(
    request: Request, context: Context, phone: Annotated[str, Form()] = ""
) -> Response:
    """Text a code to ``phone`` when it is a person's; the same page whoever it is. The
    database work runs in the thread pool; the dispatcher is woken on the event loop."""
    response, queued = await run_in_threadpool(_ask_for_code, request, context, phone)
    if queued and context.text_queued is not None:
        context.text_queued()
    return response


def _ask_for_code(request: Request, context: OwnerContext, phone: str) -> tuple[Response, bool]:
    number = _entered_phone(phone)
    if number is None:
        return _sign_in_page(request, 422, problem=_NOT_A_PHONE), False
    address = _address(request)
    wait = context.code_requests.retry_after(address)
    if wait is not None:
        return _too_many_codes(request, wait), False
    context.code_requests.failed(address)  # every request counts against the address
    now = context.clock()
    with context.engine.begin() as conn:
        issued = issue_code(conn, number, now)
        people = people_with_phone(conn, number)
        business = context.call_log.business(conn, people[0].business_id) if people else None
        queued = False
        if isinstance(issued, IssuedCode) and business is not None:
            queued = _text_code(conn, issued.id, issued.code, business, number, now)
    if queued:  # text workers in other processes (serve --no-dispatcher) send it now too
        announce_texts_queued(context.engine)
    if isinstance(issued, CodeRefused):
        return _too_many_codes(request, issued.retry_after), False
    return _code_page(request, 200, number, problem=None), queued


def enter_code(
    request: Request,
    context: Context,
    phone: Annotated[str, Form()] = "",
    code: Annotated[str, Form()] = "",
) -> Response:
    """Start a phone session when ``code`` is the phone's working code."""
    number = _entered_phone(phone)
    if number is None:
        return _sign_in_page(request, 422, problem=_NOT_A_PHONE)
    address = _address(request)
    wait = context.token_attempts.retry_after(address)
    if wait is not None:
        logger.warning("sign-in code refused: too many wrong codes from one address")
        return _too_many(_code_page(request, 429, number, problem=_TOO_MANY_TRIES), wait)
    now = context.clock()
    with context.engine.begin() as conn:
        checked = check_code(conn, number, code, now)
        people = people_with_phone(conn, number) if checked is CodeCheck.ACCEPTED else []
        started = start_phone_session(conn, people[0], SignInMethod.CODE, now) if people else None
    if started is None:
        context.token_attempts.failed(address)
        return _code_page(request, 401, number, problem=_CODE_REFUSED)
    response = _redirect(_CALLS)
    set_session_cookie(response, request, context, started.secret, started.session.expires_at)
    return response


def _text_code(
    conn: Connection,
    code_id: int,
    code: str,
    business: BusinessProfile,
    number: str,
    now: datetime,
) -> bool:
    """Queue the code's text; False when the business has no number to text from."""
    if business.texting_number is None:
        logger.error("business %s has no number to text sign-in codes from", business.id)
        return False
    text = SignInCodeText(
        code_id, code, business.id, business.name, number, business.texting_number
    )
    queue_sign_in_code(conn, text, now)
    return True


# --- signing in by a summary's link ---------------------------------------------------------------


def link_page(request: Request, context: Context, secret: str) -> Response:
    """The link's page: one button, or straight to the call when already signed in there."""
    with context.read_engine.connect() as conn:
        link = peek_link(conn, secret, context.clock())
        session = _session_of(conn, request, context)
    if link is None:
        return _sign_in_page(request, 410, problem=_LINK_REFUSED)
    if session is not None and session.business_id == link.target.business_id:
        return _redirect(f"{_CALLS}/{link.target.call_sid}")
    if not link.works:
        return _sign_in_page(request, 410, problem=_LINK_REFUSED)
    return render_page(
        request, "sign_in_link.html", title="Open the call", business=None, secret=secret
    )


def use_link(request: Request, context: Context, secret: str) -> Response:
    """Use the link: sign its phone in for 30 days and open its call."""
    now = context.clock()
    with context.engine.begin() as conn:
        link = redeem_link(conn, secret, now)
        person = None if link is None else current_person(conn, link.business_id, link.phone_number)
        started = (
            None if person is None else start_phone_session(conn, person, SignInMethod.LINK, now)
        )
    if link is None or started is None:
        return _sign_in_page(request, 410, problem=_LINK_REFUSED)
    response = _redirect(f"{_CALLS}/{link.call_sid}")
    set_session_cookie(response, request, context, started.secret, started.session.expires_at)
    return response


# --- the owner's call summaries -------------------------------------------------------------------


def notifications(request: Request, context: Context) -> Response:
    """Whether call summaries are texted to the owner phone, with the form that changes it."""
    with context.read_engine.connect() as conn:
        business = signed_in_owner(conn, request, context).business
        texting = business.owner_phone is not None and owner_notifications_allowed(
            conn, business.id, business.owner_phone
        )
    return render_page(
        request,
        "notifications.html",
        title="Call summaries",
        business=business,
        section="notifications",
        texting=texting,
    )


def change_notifications(
    request: Request, context: Context, choice: Annotated[str, Form()] = ""
) -> Response:
    """Turn the owner phone's call-summary texts on or off (a ledger event)."""
    now = context.clock()
    with context.engine.begin() as conn:
        signed = signed_in_owner(conn, request, context)
        business, session = signed.business, signed.session
        if choice not in ("on", "off") or business.owner_phone is None:
            raise PageError(422, "Request refused", "Choose on or off.", business)
        record_notification_choice(
            conn,
            business.id,
            business.name,
            business.owner_phone,
            choice == "on",
            ConsentMethod.WEB_FORM,
            now,
            note=f"owner pages, {_signed_in_as(session)}",
        )
    logger.info("owner turned call-summary texts %s", choice, extra={"business_id": business.id})
    return _redirect(_NOTIFICATIONS)


# --- the phones signed in -------------------------------------------------------------------------


def signed_in_phones(request: Request, context: Context) -> Response:
    """The business's phones signed in now, each with a button that signs it out."""
    with context.read_engine.connect() as conn:
        signed = signed_in_owner(conn, request, context)
        business, session = signed.business, signed.session
        phones = working_phone_sessions(conn, business.id, context.clock())
    this_one = session.id if session.phone_number is not None else None
    return render_page(
        request,
        "phone_sessions.html",
        title="Signed-in phones",
        business=business,
        section="sessions",
        phones=phones,
        this_one=this_one,
    )


def sign_out_phone(request: Request, context: Context, session_id: str) -> Response:
    """Sign out one of the business's phones (an owner's decision; recorded in the log)."""
    with context.engine.begin() as conn:
        signed = signed_in_owner(conn, request, context)
        business, session = signed.business, signed.session
        ended = None
        if _SESSION_ID.fullmatch(session_id):
            ended = revoke_business_session(conn, business.id, int(session_id), context.clock())
    if ended is None:
        raise PageError(
            404, "No such phone", "No phone of your business has that session.", business
        )
    logger.info(
        "owner signed out phone session %d (%s)",
        ended.id,
        _signed_in_as(session),
        extra={"business_id": business.id},
    )
    return _redirect("/owner/sessions")


# --- helpers --------------------------------------------------------------------------------------


def _signed_in_as(session: OwnerSession) -> str:
    """Who made a change, for the record: the phone (masked) or the owner token's id."""
    if session.phone_number is not None:
        return f"signed in on {last_four(session.phone_number)}"
    return f"signed in with owner token #{session.token.id if session.token else '?'}"


def _session_of(conn: Connection, request: Request, context: OwnerContext) -> OwnerSession | None:
    presented = request.cookies.get(SESSION_COOKIE)
    return None if presented is None else find_session(conn, presented, context.clock())


def _entered_phone(raw: str) -> str | None:
    """What the person typed as an E.164 number (US unless it starts with +); None if it is
    not a possible phone number."""
    if not raw.strip() or len(raw) > 40:
        return None
    try:
        parsed = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _too_many_codes(request: Request, wait: int) -> Response:
    minutes = max(1, -(-wait // 60))
    return _too_many(
        _sign_in_page(request, 429, problem=_TOO_MANY_CODES.format(minutes=minutes)), wait
    )


def _too_many(response: Response, wait: int) -> Response:
    response.headers["Retry-After"] = str(wait)
    return response


def _sign_in_page(request: Request, status: int, problem: str | None) -> Response:
    return render_page(
        request, "sign_in.html", status, title="Sign in", business=None, problem=problem
    )


def _code_page(request: Request, status: int, number: str, problem: str | None) -> Response:
    return render_page(
        request,
        "sign_in_code.html",
        status,
        title="Enter your code",
        business=None,
        phone=number,
        shown_phone=last_four(number),
        problem=problem,
    )


def _redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303)
