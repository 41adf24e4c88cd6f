"""The business settings an owner changes from the dashboard: :class:`dashboard.SettingsStore`
over the business profile, every change checked by the same rules as a business file."""

from __future__ import annotations

from dataclasses import asdict, fields

from pydantic import ValidationError
from sqlalchemy import Connection

from dashboard import SETTING_LABELS, ConsentScriptText, OwnerSettings, SettingsError
from voice_agent.consent.script import render_consent_script
from voice_agent.records.businesses import Business, get_business, save_business

_SETTING_NAMES = {item.name for item in fields(OwnerSettings)}


class ReceptionistSettings:
    """Reads and changes the owner's settings in the business table."""

    def settings(self, conn: Connection, business_id: str) -> OwnerSettings | None:
        business = get_business(conn, business_id)
        return None if business is None else _owner_settings(business)

    def change(self, conn: Connection, business_id: str, wanted: OwnerSettings) -> OwnerSettings:
        business = get_business(conn, business_id)
        if business is None:
            raise SettingsError("This business is no longer set up here.")
        try:
            changed = Business.model_validate({**business.model_dump(), **asdict(wanted)})
        except ValidationError as error:
            raise SettingsError(_in_words(error)) from None
        save_business(conn, changed)
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
