"""The business settings an owner changes from the dashboard: :class:`dashboard.SettingsStore`
over the business profile, every change checked by the same rules as a business file (its texts
must still be writable), and a new owner phone made the business's configured owner, as a
re-import of the file would."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import Connection

from dashboard import SETTING_LABELS, ConsentScriptText, OwnerSettings, SettingsError
from dashboard.people import sync_config_owner
from sms_sender import PolicyError
from voice_agent.consent.script import render_consent_script
from voice_agent.records.businesses import Business, get_business, save_business
from voice_agent.records.sms_policies import sms_policy

_SETTING_NAMES = {item.name for item in fields(OwnerSettings)}


class ReceptionistSettings:
    """Reads and changes the owner's settings in the business table."""

    def settings(self, conn: Connection, business_id: str) -> OwnerSettings | None:
        business = get_business(conn, business_id)
        return None if business is None else _owner_settings(business)

    def change(
        self, conn: Connection, business_id: str, wanted: OwnerSettings, now: datetime
    ) -> OwnerSettings:
        business = get_business(conn, business_id)
        if business is None:
            raise SettingsError("This business is no longer set up here.")
        try:
            changed = Business.model_validate({**business.model_dump(), **asdict(wanted)})
        except ValidationError as error:
            raise SettingsError(_in_words(error)) from None
        try:
            sms_policy(changed)
        except PolicyError as error:
            new_link = changed.booking_url != business.booking_url
            raise SettingsError(_texts_refused(error, new_link)) from None
        save_business(conn, changed)
        if changed.owner_phone != business.owner_phone:
            sync_config_owner(conn, business_id, changed.owner_phone, now)
        return _owner_settings(changed)

    def consent_script(self, conn: Connection, business_id: str) -> ConsentScriptText | None:
        business = get_business(conn, business_id)
        if business is None:
            return None
        script = render_consent_script(
            business.consent_script_version, business.name, business.max_texts
        )
        return ConsentScriptText(script.version, script.text)


def _owner_settings(business: Business) -> OwnerSettings:
    return OwnerSettings(**business.model_dump(include=_SETTING_NAMES))


def _in_words(error: ValidationError) -> str:
    """The first problem pydantic found, named by the setting's label."""
    issue = error.errors()[0]
    setting = str(issue["loc"][0]) if issue["loc"] else ""
    message = str(issue["msg"]).removeprefix("Value error, ")
    if not setting:  # a rule across settings: its message names them
        return f"{message[:1].upper()}{message[1:]}."
    return f"{SETTING_LABELS.get(setting, setting)}: {message}."


def _texts_refused(error: PolicyError, new_link: bool) -> str:
    """Why the texts could not be written with the settings asked for, in words."""
    if new_link:
        return f"{SETTING_LABELS['booking_url']}: too long for the texts; use a shorter link."
    return f"The business's texts could not be written with these settings ({error})."
