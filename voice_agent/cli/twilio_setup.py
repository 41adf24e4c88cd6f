"""``receptionist twilio connect|check``: point a business's Twilio numbers at this deployment
(voice URL, messaging URL and call status callback under ``PUBLIC_BASE_URL``) through the ``twilio``
SDK, and compare what Twilio has with what we expect."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from voice_agent.cli.support import (
    TWILIO_API_URL,
    TWILIO_MESSAGING_URL,
    CommandError,
    known_businesses,
    load_settings,
    reading,
    talking_to_twilio,
    twilio_client,
    unknown_business,
)

if TYPE_CHECKING:
    from twilio.rest import Client
    from twilio.rest.api.v2010.account.incoming_phone_number import (
        IncomingPhoneNumberInstance,
    )
    from twilio.rest.messaging.v1.service import ServiceInstance

    from voice_agent.records.businesses import Business
    from voice_agent.settings import Settings
    from voice_agent.web.number_webhooks import Difference

F = TypeVar("F", bound=Callable[..., Any])


def _base_url_options(command: F) -> F:
    """The Twilio API base URLs (a test server in tests)."""
    command = click.option(
        "--twilio-messaging-base-url",
        metavar="URL",
        envvar="TWILIO_MESSAGING_BASE_URL",
        default=TWILIO_MESSAGING_URL,
        show_default=True,
        help="Twilio's Messaging API base URL (a test server in tests).",
    )(command)
    return click.option(
        "--twilio-base-url",
        metavar="URL",
        envvar="TWILIO_API_BASE_URL",
        default=TWILIO_API_URL,
        show_default=True,
        help="Twilio's REST API base URL (a test server in tests).",
    )(command)


@click.group()
def twilio() -> None:
    """Connect a business's Twilio numbers to this deployment, and check them."""


@twilio.command("connect")
@click.option("--business", "business_id", metavar="ID", required=True, help="The business.")
@click.option(
    "--number",
    "numbers",
    metavar="+1…",
    multiple=True,
    help="One of the business's numbers (repeatable); all of them when not given.",
)
@_base_url_options
def connect(
    business_id: str, numbers: Sequence[str], twilio_base_url: str, twilio_messaging_base_url: str
) -> None:
    """Set each number's voice URL, messaging URL and call status callback to this deployment's
    PUBLIC_BASE_URL (and remove a TwiML App that would override them); print what changed and
    what was there before. Exit 1 when the number's Messaging Service would still send its texts
    elsewhere. Needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN."""
    from voice_agent.web.number_webhooks import differences, public_url_problem

    settings = load_settings()
    problem = public_url_problem(settings.public_base_url)
    if problem is not None:
        raise CommandError(f"{problem}; set it to the https:// URL Twilio reaches this server at")
    business = _business(business_id)
    chosen = _numbers(business, numbers)
    client, services = _account(
        settings, "twilio connect", twilio_base_url, twilio_messaging_base_url
    )
    blocked = False
    for number in chosen:
        found = _incoming_number(client, number, business)
        changes = differences(found, settings.public_base_url)
        if not changes:
            print(f"{number} ({found.sid}) of {business.name}: already connected, nothing changed")
        else:
            fields = {change.setting.attribute: change.setting.expected for change in changes}
            with talking_to_twilio(f"the update of {number}"):
                updated = client.incoming_phone_numbers(found.sid).update(**fields)
            left = differences(updated, settings.public_base_url)
            if left:
                raise CommandError(f"Twilio did not take the {left[0].setting.label} of {number}")
            print(f"{number} ({found.sid}) of {business.name}: changed")
            for change in changes:
                after = change.setting.expected
                print(f"  {change.setting.label}: {_shown(change.current)} -> {after}")
        problem = _blocking_service(services.get(number), settings.public_base_url)
        if problem is not None:
            blocked = True
            _print_blocking_service(problem, settings.public_base_url)
    if blocked:
        raise click.exceptions.Exit(1)


@twilio.command("check")
@click.option(
    "--business",
    "business_id",
    metavar="ID",
    help="Only this business's numbers (default: every business's).",
)
@_base_url_options
def check(business_id: str | None, twilio_base_url: str, twilio_messaging_base_url: str) -> None:
    """Compare what Twilio has for each business's numbers (and the Messaging Service each
    sends from) with what this deployment expects; exit 1 on any difference, saying how to fix
    it."""
    from voice_agent.records.businesses import list_businesses
    from voice_agent.web.number_webhooks import differences

    settings = load_settings()
    if business_id is not None:
        businesses = [_business(business_id)]
    else:
        with reading(settings) as conn:
            businesses = [] if conn is None else list_businesses(conn)
        if not businesses:
            raise CommandError("no businesses to check: import them with business import FILE")
    client, services = _account(
        settings, "twilio check", twilio_base_url, twilio_messaging_base_url
    )
    mismatched = False
    for business in businesses:
        for number in business.twilio_numbers:
            found = _find(client, number)
            if found is None:
                mismatched = True
                print(f"{number} of {business.name}: not a number of this Twilio account")
                print(
                    "  fix: buy or port it into the account of TWILIO_ACCOUNT_SID, or correct "
                    f"{business.id}'s twilio_numbers"
                )
                continue
            changes = differences(found, settings.public_base_url)
            blocked = _blocking_service(services.get(number), settings.public_base_url)
            if not changes and blocked is None:
                print(f"{number} of {business.name}: ok")
                continue
            mismatched = True
            said = (
                f"{len(changes)} setting(s) differ" if changes else "its Messaging Service differs"
            )
            print(f"{number} of {business.name}: {said}")
            _print_differences(changes)
            if changes:
                print(
                    f"  fix: receptionist twilio connect --business {business.id} --number {number}"
                )
            if blocked is not None:
                _print_blocking_service(blocked, settings.public_base_url)
    if mismatched:
        raise click.exceptions.Exit(1)


def _blocking_service(service: ServiceInstance | None, public_base_url: str) -> str | None:
    """How the number's Messaging Service keeps its inbound texts from us, or None."""
    from voice_agent.web.number_webhooks import messaging_service_problem

    return None if service is None else messaging_service_problem(service, public_base_url)


def _print_blocking_service(problem: str, public_base_url: str) -> None:
    from voice_agent.web.number_webhooks import messaging_service_fix

    print(f"  {problem}")
    print(f"  fix: {messaging_service_fix(public_base_url)}")


def _account(
    settings: Settings, what: str, api_base_url: str, messaging_base_url: str
) -> tuple[Client, dict[str, ServiceInstance]]:
    """The Twilio client of the account, and the Messaging Service each number sends from."""
    client = twilio_client(
        settings, what, api_base_url=api_base_url, messaging_base_url=messaging_base_url
    )
    return client, _messaging_services(client)


def _messaging_services(client: Client) -> dict[str, ServiceInstance]:
    """The Messaging Service each of the account's numbers sends from, by number."""
    by_number: dict[str, ServiceInstance] = {}
    with talking_to_twilio("the list of Messaging Services"):
        for service in client.messaging.v1.services.list():
            for member in client.messaging.v1.services(str(service.sid)).phone_numbers.list():
                by_number[str(member.phone_number)] = service
    return by_number


def _print_differences(changes: Sequence[Difference]) -> None:
    for change in changes:
        print(
            f"  {change.setting.label}: Twilio has {_shown(change.current)}, "
            f"expected {_shown(change.setting.expected)}"
        )


def _shown(value: str) -> str:
    return value if value else "(none)"


def _business(business_id: str) -> Business:
    from voice_agent.records.businesses import get_business

    with reading(load_settings()) as conn:
        business = None if conn is None else get_business(conn, business_id)
        if business is None:
            raise unknown_business(business_id, known_businesses(conn))
    return business


def _numbers(business: Business, asked: Sequence[str]) -> list[str]:
    """The asked numbers in E.164 (each one of the business's), or all of the business's."""
    from voice_agent.phone import InvalidPhoneNumber, to_e164

    chosen: list[str] = []
    for number in asked:
        try:
            e164 = to_e164(number)
        except InvalidPhoneNumber as error:
            raise click.BadParameter(str(error), param_hint="--number") from None
        if e164 not in business.twilio_numbers:
            listed = ", ".join(business.twilio_numbers)
            raise CommandError(f"{e164} is not a number of {business.id} (its numbers: {listed})")
        chosen.append(e164)
    return chosen or list(business.twilio_numbers)


def _find(client: Client, number: str) -> IncomingPhoneNumberInstance | None:
    """The account's IncomingPhoneNumber for ``number`` (E.164), or None."""
    with talking_to_twilio(f"the list of numbers matching {number}"):
        listed = client.incoming_phone_numbers.list(phone_number=number, limit=20)
    return next((found for found in listed if found.phone_number == number), None)


def _incoming_number(
    client: Client, number: str, business: Business
) -> IncomingPhoneNumberInstance:
    found = _find(client, number)
    if found is None:
        raise CommandError(
            f"{number} of {business.id} is not a number of this Twilio account (TWILIO_ACCOUNT_SID)"
        )
    return found
