"""The public callback form, ``/b/{id}/callback``: name, phone, what they need, and a separate,
unchecked SMS box with its disclosure beside it. A post goes to ``callback_requests``, then the
visitor is sent (303) to ``/b/{id}/callback/sent?outcome=…``, which says plainly what happened.

A post is refused, with a page that says why and with nothing stored, when:

- it does not come from a page of this site (``Origin``, else ``Referer``): 403;
- its signed form token (``form_tokens``) is missing, forged, another business's or stale: 403;
- the hidden honeypot field, which people never see, holds anything: 400;
- its address sent :data:`MAX_POSTS_PER_ADDRESS` posts within :data:`ADDRESS_WINDOW` seconds
  (kept in memory per process), or its number too many requests (``callback_requests``): 429;
- a field is missing or the phone number is not one: 422, the form shown again with what was
  typed and each problem beside its field;
- the box was ticked on a disclosure other than the one in force now (the business changed its
  maximum, say, while the page was open): 409, the form shown again with the new words.

A request that cannot be stored (the database down, the ledger damaged) is a 503 page that gives
the business's number to call instead.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from dashboard import AttemptLimiter, from_this_site
from voice_agent.consent.script import ConsentScript, render_form_disclosure
from voice_agent.phone import InvalidPhoneNumber, to_e164
from voice_agent.records.businesses import Business
from voice_agent.settings import Settings
from voice_agent.web.callback_requests import (
    CallbackRequest,
    RequestOutcome,
    TooManyRequests,
    store_callback_request,
)
from voice_agent.web.form_tokens import FormTokens
from voice_agent.web.public_html import (
    business_named,
    not_found,
    page,
    phone_for_people,
    refusal,
    services_of,
)

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

MAX_POSTS_PER_ADDRESS = 5
ADDRESS_WINDOW = 600.0
MAX_NAME = 200
MAX_NEED = 1000
MAX_USER_AGENT = 512
_SECTION = "callback"
_TERMS_CHANGED = (
    "The text-message terms below changed while this page was open. Please read them and send "
    "again."
)
_FOREIGN = "This form can only be sent from its own page."
_BAD_TOKEN = "This form has expired or did not come from our page. Please open it again and resend."
_AUTOMATED = "This request looks automated and was not sent."
_FLOODED = "Too many requests were sent from your network. Please wait a few minutes or call us."
_NUMBER_FLOODED = "This number has sent several requests already. We will call you back."
_NOT_STORED = "We could not take your request just now. Please call us at"


@dataclass(frozen=True)
class FormGuard:
    """The form's defences that outlive a request: the token key and the per-address limit."""

    tokens: FormTokens
    per_address: AttemptLimiter = field(
        default_factory=lambda: AttemptLimiter(MAX_POSTS_PER_ADDRESS, ADDRESS_WINDOW)
    )

    @classmethod
    def for_settings(cls, settings: Settings) -> FormGuard:
        return cls(FormTokens.from_settings(settings))


@dataclass(frozen=True)
class TypedValues:
    """What the visitor typed, shown again when the form is."""

    name: str = ""
    phone: str = ""
    need: str = ""
    sms_consent: bool = False


def _guard(request: Request) -> FormGuard:
    guard: FormGuard = request.app.state.callback_form
    return guard


@router.get("/b/{slug}/callback")
async def callback_form(request: Request, slug: str) -> HTMLResponse:
    business = await business_named(request, slug)
    if business is None:
        return not_found()
    return _form(request, business, TypedValues(), {}, None)


@router.post("/b/{slug}/callback")
async def send_callback_request(
    request: Request,
    slug: str,
    name: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
    need: Annotated[str, Form()] = "",
    sms_consent: Annotated[str, Form()] = "",
    website: Annotated[str, Form()] = "",
    token: Annotated[str, Form()] = "",
    disclosure_sha256: Annotated[str, Form()] = "",
) -> Response:
    business = await business_named(request, slug)
    if business is None:
        return not_found()
    services = services_of(request)
    now = services.clock()
    admitted = _admitted(request, business, token, website, now)
    if isinstance(admitted, HTMLResponse):
        return admitted
    typed = TypedValues(name.strip(), phone.strip(), need.strip(), sms_consent == "yes")
    problems = _problems(typed)
    if problems:
        return _form(request, business, typed, problems, None, status=422)
    disclosure = render_form_disclosure(business.name, business.max_texts)
    if typed.sms_consent and disclosure_sha256 != disclosure.sha256:
        return _form(request, business, typed, {}, _TERMS_CHANGED, status=409)
    callback = CallbackRequest(
        business=business,
        caller_name=typed.name,
        phone_number=to_e164(typed.phone),
        need=typed.need,
        wants_texts=typed.sms_consent,
        disclosure=disclosure,
        page_url=f"{services.settings.public_base_url}/b/{business.id}/callback",
        ip_address=_address(request),
        user_agent=request.headers.get("user-agent", "")[:MAX_USER_AGENT],
        form_served_at=admitted,
    )
    return await _stored(request, callback, now)


def _admitted(
    request: Request, business: Business, token: str, website: str, now: datetime
) -> datetime | HTMLResponse:
    """When the form posted was served, or the refusal of a post that is not from a person on
    our page: another origin, a bad token, a filled honeypot, an address over its limit."""
    services, guard = services_of(request), _guard(request)
    if not from_this_site(request, services.settings.public_base_url):
        return refusal(403, "Request refused", _FOREIGN, business)
    served_at = guard.tokens.check(token, business.id, now)
    if served_at is None:
        return refusal(403, "Request refused", _BAD_TOKEN, business)
    if website:
        return refusal(400, "Request refused", _AUTOMATED, business)
    address = _address(request)
    if guard.per_address.retry_after(address) is not None:
        return refusal(429, "Too many requests", _FLOODED, business)
    guard.per_address.failed(address)  # every post counts against its address
    return served_at


async def _stored(request: Request, callback: CallbackRequest, now: datetime) -> Response:
    """Store ``callback``, then send the visitor to the page that says what happened."""
    services, business = services_of(request), callback.business
    try:
        stored = await asyncio.to_thread(
            store_callback_request,
            services.engine,
            callback,
            now,
            services.journal.pending_opt_outs(),
        )
    except (SQLAlchemyError, ValueError):  # the database is down, the ledger damaged
        logger.exception(
            "a callback request could not be stored", extra={"business_id": business.id}
        )
        message = f"{_NOT_STORED} {phone_for_people(business.twilio_numbers[0])}."
        return refusal(503, "Request not sent", message, business)
    except TooManyRequests:
        return refusal(429, "Too many requests", _NUMBER_FLOODED, business)
    if stored.texts_queued:
        services.dispatcher.wake()
    return RedirectResponse(
        f"/b/{business.id}/callback/sent?outcome={stored.outcome.value}", status_code=303
    )


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/b/{slug}/callback/sent")
async def callback_sent(request: Request, slug: str, outcome: str = "") -> HTMLResponse:
    business = await business_named(request, slug)
    if business is None or outcome not in set(RequestOutcome):
        return not_found()
    return page(
        "callback_sent.html",
        title="Request sent",
        business=business,
        outcome=outcome,
        section=_SECTION,
    )


def _problems(typed: TypedValues) -> dict[str, str]:
    problems = {}
    if not typed.name:
        problems["name"] = "Please give your name."
    elif len(typed.name) > MAX_NAME:
        problems["name"] = f"Please keep your name under {MAX_NAME} characters."
    try:
        to_e164(typed.phone)
    except InvalidPhoneNumber:
        problems["phone"] = "Please give a phone number we can call, such as (512) 555-0123."
    if not typed.need:
        problems["need"] = "Please tell us briefly what you need."
    elif len(typed.need) > MAX_NEED:
        problems["need"] = f"Please keep this under {MAX_NEED} characters."
    return problems


def _form(
    request: Request,
    business: Business,
    typed: TypedValues,
    problems: dict[str, str],
    notice: str | None,
    status: int = 200,
) -> HTMLResponse:
    services = services_of(request)
    disclosure: ConsentScript = render_form_disclosure(business.name, business.max_texts)
    return page(
        "callback_form.html",
        status,
        title="Request a callback",
        business=business,
        section=_SECTION,
        token=_guard(request).tokens.issue(business.id, services.clock()),
        disclosure=disclosure,
        typed=typed,
        problems=problems,
        notice=notice,
    )
