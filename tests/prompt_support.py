"""Edited copies of the shipped prompts for tests that change a consent script or an SMS template
and watch what follows it (the brief, the public pages)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import sms_sender.templates
import voice_agent.consent.script
import voice_agent.records.businesses
from tests.conftest import ROOT


def add_consent_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str, template: str
) -> None:
    """Make ``prompts/consent/{version}.txt`` say ``template``, beside the shipped scripts."""
    prompts = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts" / "consent", prompts / "consent", dirs_exist_ok=True)
    (prompts / "consent" / f"{version}.txt").write_text(template, encoding="utf-8")
    monkeypatch.setattr(voice_agent.records.businesses, "PROMPTS_DIR", prompts)
    monkeypatch.setattr(voice_agent.consent.script, "CONSENT_DIR", prompts / "consent")


def edit_sms_templates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...], old: str, new: str
) -> None:
    """Replace ``old`` with ``new`` in the SMS templates ``names`` (read afresh from now on)."""
    folder = tmp_path / "sms"
    shutil.copytree(ROOT / "prompts" / "sms", folder, dirs_exist_ok=True)
    for name in names:
        template = folder / f"{name}.txt"
        template.write_text(template.read_text(encoding="utf-8").replace(old, new), "utf-8")
    monkeypatch.setattr(sms_sender.templates, "PROMPTS_SMS_DIR", folder)
