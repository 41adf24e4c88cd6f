"""The public pages' HTML: Jinja templates from ``voice_agent/web/templates``, rendered afresh
for every request (nothing about a business is cached), with the headers every public page
carries and the plain 404 of a business we do not answer for.

Autoescaping is on for every template, so a business name or a visitor's words that hold markup
are shown as text. Pages run no script and load nothing from elsewhere.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import phonenumbers
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment

from dashboard import SECURITY_HEADERS, page_environment
from voice_agent.records.businesses import Business
from voice_agent.services import Services

TEMPLATES = Path(__file__).resolve().parent / "templates"

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


def phone_for_people(number: str) -> str:
    """``+15125550100`` as people write it in the number's country: ``(512) 555-0100``."""
    parsed = phonenumbers.parse(number, None)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


def _environment() -> Environment:
    environment = page_environment(TEMPLATES)
    environment.filters["phone"] = phone_for_people
    return environment


_PAGES = _environment()


def page(template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """The page ``template`` filled in with ``values``, with the pages' headers (``no-store``: a
    changed script, maximum or template shows on the next load)."""
    html = _PAGES.get_template(template).render(**values)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def refusal(status: int, title: str, message: str, business: Business | None) -> HTMLResponse:
    """A refused request as a page that says why."""
    return page(
        "public_error.html", status, title=title, message=message, business=business, section=None
    )


def not_found() -> HTMLResponse:
    """The page for a business we do not answer for."""
    return refusal(404, "Page not found", "There is no business at this address.", None)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def business_named(request: Request, slug: str) -> Business | None:
    """The business whose id is ``slug``, as the database has it now."""
    if _SLUG.fullmatch(slug) is None:
        return None
    return await services_of(request).businesses.by_id(slug)
