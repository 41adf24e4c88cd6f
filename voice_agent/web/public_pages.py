"""A business's public pages, open to anyone without signing in: ``/b/{id}/sms`` ("SMS opt-in:
how it works"), ``/b/{id}/privacy`` and ``/b/{id}/terms``.

Carriers read these before they approve a business's texting campaign, so nothing on them is
written by hand: each request reads the business as the database has it now and states what the
system does with it — the consent script rendered for the business with its version, the form's
disclosure, the sample messages and the STOP, HELP and START replies rendered from the shipped
templates, the keywords honoured, the maximum of texts and their hours, the retention of each
kind of record and who else handles the data (from the operator's settings). The facts come from
the business's campaign brief (``voice_agent.consent.campaign_brief``), so the pages and the
brief can never say different things. An unknown business is a 404 page.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from voice_agent.consent.campaign_brief import CampaignBrief, build_brief
from voice_agent.consent.script import REASK, ConsentScript, render_form_disclosure
from voice_agent.records.businesses import Business
from voice_agent.settings import (
    ChatModelChoice,
    Settings,
    SmsTransportChoice,
    SynthesizerChoice,
    TranscriberChoice,
)
from voice_agent.web.public_html import business_named, not_found, page, services_of

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class PublicFacts:
    """What the public pages of one business state, read from its configuration now.

    ``processors`` are the outside services that handle callers' data under the operator's
    settings (what each does); ``follow_ups`` the kinds of text after the confirmation that the
    business has turned on.
    """

    business: Business
    brief: CampaignBrief
    disclosure: ConsentScript
    reask: str
    processors: tuple[str, ...]
    follow_ups: tuple[str, ...]

    @property
    def script(self) -> ConsentScript:
        return self.brief.script


def public_facts(business: Business, settings: Settings) -> PublicFacts:
    """The facts the pages of ``business`` state under ``settings``."""
    follow_ups = []
    if business.no_reply_follow_up_hours is not None:
        follow_ups.append(
            f"a reminder if we have not heard back, about {business.no_reply_follow_up_hours:g} "
            "hours after the call"
        )
    if business.callback_check_hours is not None:
        follow_ups.append(
            f"a check that we reached you, about {business.callback_check_hours:g} hours after "
            "the call"
        )
    return PublicFacts(
        business=business,
        brief=build_brief(business, settings.public_base_url),
        disclosure=render_form_disclosure(business.name, business.max_texts),
        reask=REASK,
        processors=processors(settings),
        follow_ups=tuple(follow_ups),
    )


def processors(settings: Settings) -> tuple[str, ...]:
    """Who handles callers' data besides the business and us, under ``settings``."""
    handled = ["Twilio connects the phone calls"]
    if settings.sms_transport is SmsTransportChoice.TWILIO:
        handled[0] += " and carries the text messages"
    if settings.transcriber is TranscriberChoice.DEEPGRAM:
        handled.append("Deepgram turns the caller's speech into text")
    if settings.synthesizer in (SynthesizerChoice.DEEPGRAM, SynthesizerChoice.OPENAI):
        name = "Deepgram" if settings.synthesizer is SynthesizerChoice.DEEPGRAM else "OpenAI"
        handled.append(f"{name} turns the assistant's words into speech")
    if settings.chat_model is ChatModelChoice.OPENAI:
        handled.append("OpenAI reads the conversation to help the assistant take the message")
    return tuple(handled)


@router.get("/b/{slug}/sms")
async def sms_terms(request: Request, slug: str) -> HTMLResponse:
    return await _policy_page(request, slug, "sms_terms.html", "SMS opt-in: how it works")


@router.get("/b/{slug}/privacy")
async def privacy(request: Request, slug: str) -> HTMLResponse:
    return await _policy_page(request, slug, "privacy.html", "Privacy policy")


@router.get("/b/{slug}/terms")
async def terms(request: Request, slug: str) -> HTMLResponse:
    return await _policy_page(request, slug, "terms.html", "Terms of service")


async def _policy_page(request: Request, slug: str, template: str, title: str) -> HTMLResponse:
    business = await business_named(request, slug)
    if business is None:
        return not_found()
    facts = public_facts(business, services_of(request).settings)
    return page(template, title=title, business=business, facts=facts, section=template)
