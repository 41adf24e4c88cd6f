"""``receptionist campaign brief``: a business's A2P 10DLC campaign (Twilio ``UsAppToPerson``),
as text to paste into the Console, as JSON, as Markdown, or created through the Twilio API."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from voice_agent.cli.support import (
    TWILIO_MESSAGING_URL,
    CommandError,
    SettingsError,
    json_option,
    known_businesses,
    load_settings,
    print_json,
    reading,
    talking_to_twilio,
    twilio_account_missing,
    twilio_client,
    unknown_business,
)

if TYPE_CHECKING:
    from voice_agent.consent.campaign_brief import CampaignBrief
    from voice_agent.records.businesses import Business
    from voice_agent.settings import Settings


@click.group()
def campaign() -> None:
    """The A2P 10DLC campaign carriers register for a business's texts."""


@campaign.command("brief")
@click.option(
    "--business",
    "business_ids",
    metavar="ID",
    required=True,
    multiple=True,
    help="The business (repeat for several: JSON is then a list).",
)
@click.option(
    "--businesses-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the businesses from this YAML file instead of the database.",
)
@json_option("the brief (the UsAppToPerson fields, the script, the pages)")
@click.option("--markdown", is_flag=True, help="Print the briefs as a Markdown document.")
@click.option("--submit", is_flag=True, help="Create the campaign through the Twilio API.")
@click.option(
    "--messaging-service",
    metavar="MG…",
    envvar="TWILIO_MESSAGING_SERVICE_SID",
    help="With --submit: the Messaging Service SID (or TWILIO_MESSAGING_SERVICE_SID).",
)
@click.option(
    "--brand-registration",
    metavar="BN…",
    envvar="TWILIO_BRAND_REGISTRATION_SID",
    help="With --submit: the A2P brand registration SID (or TWILIO_BRAND_REGISTRATION_SID).",
)
@click.option(
    "--twilio-base-url",
    metavar="URL",
    envvar="TWILIO_MESSAGING_BASE_URL",
    default=TWILIO_MESSAGING_URL,
    show_default=True,
    help="With --submit: Twilio's Messaging API base URL (a test server in tests).",
)
def brief(
    business_ids: Sequence[str],
    businesses_file: Path | None,
    as_json: bool,
    markdown: bool,
    submit: bool,
    messaging_service: str | None,
    brand_registration: str | None,
    twilio_base_url: str,
) -> None:
    """Print a business's 10DLC campaign brief: every UsAppToPerson field, the message flow
    quoting the exact consent script, message samples rendered from the real templates,
    keywords, the opt-in, opt-out and HELP messages, and the public pages (PUBLIC_BASE_URL +
    /b/ID/sms|privacy|terms|callback).

    With --submit, create the campaign on the Messaging Service through the Twilio API (needs
    TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)."""
    from voice_agent.consent.campaign_brief import CampaignBriefError, build_brief

    if as_json and markdown:
        raise click.UsageError("choose one of --json and --markdown")
    if submit and len(business_ids) != 1:
        raise click.UsageError("--submit creates one business's campaign: give one --business")
    settings = load_settings()
    if submit:
        _require_submit_settings(settings, messaging_service, brand_registration)
    businesses = _businesses(settings, business_ids, businesses_file)
    try:
        briefs = [build_brief(business, settings.public_base_url) for business in businesses]
    except CampaignBriefError as error:
        raise CommandError(str(error)) from None
    _warn_about_pages(settings.public_base_url)
    submitted = None
    if submit:
        assert messaging_service is not None and brand_registration is not None
        submitted = submit_campaign(
            briefs[0], settings, messaging_service, brand_registration, twilio_base_url
        )
    if as_json:
        documents = [b.as_dict() for b in briefs]
        if submitted is not None:
            documents[0]["submitted"] = submitted
        print_json(documents[0] if len(documents) == 1 else documents)
    elif markdown:
        print(render_markdown(briefs, businesses_file, settings.public_base_url), end="")
    else:
        print("\n\n".join(render_text(b) for b in briefs))
    if submitted is not None and not as_json:
        print(
            f"\ncreated campaign {submitted['sid']} for {briefs[0].business_name} on "
            f"{submitted['messaging_service_sid']}: {submitted['campaign_status']}"
        )


def _require_submit_settings(
    settings: Settings, messaging_service: str | None, brand_registration: str | None
) -> None:
    if twilio_account_missing(settings):
        raise SettingsError(
            "--submit needs your Twilio account: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
        )
    if not messaging_service:
        raise click.UsageError(
            "--submit needs --messaging-service MG… (or TWILIO_MESSAGING_SERVICE_SID)"
        )
    if not brand_registration:
        raise click.UsageError(
            "--submit needs --brand-registration BN… (or TWILIO_BRAND_REGISTRATION_SID)"
        )


def _businesses(
    settings: Settings, business_ids: Sequence[str], businesses_file: Path | None
) -> list[Business]:
    """The named businesses, from the file or the database, in the order named."""
    from voice_agent.records.businesses import (
        BusinessConfigError,
        get_business,
        load_businesses,
    )

    if businesses_file is not None:
        try:
            loaded = {b.id: b for b in load_businesses(businesses_file)}
        except BusinessConfigError as error:
            raise CommandError(str(error)) from None
        for business_id in business_ids:
            if business_id not in loaded:
                raise unknown_business(business_id, loaded)
        return [loaded[business_id] for business_id in business_ids]
    found: list[Business] = []
    with reading(settings) as conn:
        for business_id in business_ids:
            business = None if conn is None else get_business(conn, business_id)
            if business is None:
                raise unknown_business(business_id, known_businesses(conn))
            found.append(business)
    return found


def _warn_about_pages(public_base_url: str) -> None:
    from urllib.parse import urlsplit

    host = urlsplit(public_base_url).hostname or ""
    if not public_base_url.startswith("https://") or host in ("localhost", "127.0.0.1", "::1"):
        click.echo(
            f"warning: PUBLIC_BASE_URL is {public_base_url}; carriers need the pages public "
            "over https",
            err=True,
        )


def submit_campaign(
    brief: CampaignBrief,
    settings: Settings,
    messaging_service: str,
    brand_registration: str,
    base_url: str = TWILIO_MESSAGING_URL,
) -> dict[str, Any]:
    """Create ``brief``'s campaign (``UsAppToPerson``) on the Messaging Service; what Twilio
    answered (sid, status, service). CommandError when Twilio refuses it or cannot be reached."""
    client = twilio_client(settings, "--submit", messaging_base_url=base_url)
    with talking_to_twilio(f"the campaign of {brief.business_id}"):
        created = client.messaging.v1.services(messaging_service).us_app_to_person.create(
            brand_registration_sid=brand_registration, **brief.usa2p_fields()
        )
    return {
        "sid": created.sid,
        "messaging_service_sid": created.messaging_service_sid,
        "brand_registration_sid": created.brand_registration_sid,
        "campaign_status": created.campaign_status,
    }


def render_text(brief: CampaignBrief) -> str:
    """The brief as text to paste: each field's label and Twilio name, then its exact value."""
    lines = [
        f"10DLC campaign brief: {brief.business_name} ({brief.business_id})",
        f"Consent script {brief.script.version}, sha256 {brief.script.sha256}",
        "Each value below is pasted exactly as it stands (one paragraph each).",
    ]
    for label, field, value in brief.labelled_fields():
        lines += ["", f"{label} ({field}):", value]
    return "\n".join(lines)


def render_markdown(
    briefs: Sequence[CampaignBrief], businesses_file: Path | None, public_base_url: str
) -> str:
    """The briefs as one Markdown document, each value in a block of its own."""
    source = f"`{businesses_file.as_posix()}`" if businesses_file else "the database"
    ids = " ".join(f"--business {b.business_id}" for b in briefs)
    file_option = f" --businesses-file {businesses_file.as_posix()}" if businesses_file else ""
    parts = [
        "# 10DLC campaign briefs\n",
        "Generated by `receptionist campaign brief --markdown` from "
        f"{source} with `PUBLIC_BASE_URL={public_base_url}`; do not edit it by hand. "
        "Regenerate it with:\n",
        "```sh\n"
        f"PUBLIC_BASE_URL={public_base_url} receptionist campaign brief{file_option} {ids} "
        "--markdown > docs/campaign-briefs.md\n```\n",
        "Each block is a field of Twilio's `UsAppToPerson` (A2P 10DLC campaign), to paste as "
        "it stands; `--json` gives the same fields, `--submit` creates the campaign.\n",
    ]
    for brief in briefs:
        parts.append(f"## {brief.business_name} (`{brief.business_id}`)\n")
        parts.append(f"Consent script `{brief.script.version}`, sha256 `{brief.script.sha256}`.\n")
        for label, field, value in brief.labelled_fields():
            parts.append(f"**{label}** (`{field}`)\n\n```text\n{value}\n```\n")
    return "\n".join(parts)
