"""An attacker's replays of captured media streams, through the real server on 127.0.0.1.

The websocket upgrade's Twilio signature covers only the fixed stream URL, so it is the same
for every call: anyone who saw one can present it again. These tests do what the attacker did
(replay a captured upgrade and ``start``, then press 1 and hang up, as a keypad call that says
yes would) with every variation of the per-call credential: the captured one again, none, an
expired one, one for another call SID, one for another business or caller, one for a call SID
already used. Each is closed with 1008 before a single frame reaches the conversation (not even
the greeting is sent), and nothing is stored, appended to the ledger or texted. A signed upgrade
that never sends ``start`` is closed too, and junk frames give a bounded number of log lines.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Table, func, select
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from consent_ledger.tables import consent_events
from media_stream import Connected, Dtmf, Media, Start, Stop, encode_inbound
from media_stream.bridge import SKIPPED_FRAMES_LOGGED
from media_stream.protocol import TWILIO_MEDIA_FORMAT
from sms_sender import LocalSmsTransport
from sms_sender.tables import outbox
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL, ROOT, receptionist_settings
from voice_agent.records.businesses import import_businesses
from voice_agent.records.migrate import upgrade
from voice_agent.records.tables import calls, stream_credential_uses
from voice_agent.services import Services, build_services
from voice_agent.settings import Settings
from voice_agent.web.local_server import free_port, serving
from voice_agent.web.stream_credentials import StreamCredentials

ACME = "+15125550100"  # rings the owner first
BRIGHT_SPARK = "+13035550140"  # straight to the assistant
CALLER = "+15125550142"
VICTIM = "+15125550177"  # never calls: the number the attacker wants consent recorded for
ACCOUNT = "AC" + "2" * 32
POLICY_VIOLATION = 1008
STORE_WAIT = 60.0  # seconds to wait for a call that was admitted to be stored


@dataclass(frozen=True)
class Site:
    settings: Settings
    url: str
    services: Services

    @property
    def texts_sent(self) -> int:
        transport = self.services.sms_transport
        assert isinstance(transport, LocalSmsTransport)
        return len(transport.delivered)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with tempfile.TemporaryDirectory(prefix="replay-") as folder:
        settings = receptionist_settings(
            f"sqlite:///{Path(folder) / 'receptionist.db'}",
            port=free_port(),
            audio_dir=Path(folder) / "audio",
        ).model_copy(update={"stream_start_seconds": 2.0})
        upgrade(settings.database_url)
        services = build_services(settings)
        with services.engine.begin() as conn:
            import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
        try:
            with serving(services) as url:
                yield Site(settings, url, services)
        finally:
            services.engine.dispose()


def _sid(prefix: str, digit: str) -> str:
    return prefix + digit * 32


# --- Twilio's side: webhooks and the stream ---------------------------------------------------


def _webhook(site: Site, path: str, params: dict[str, str]) -> dict[str, str]:
    """Post a signed voice webhook; the <Parameter>s of the <Stream> it connects."""
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_BASE_URL + path, params)
    response = httpx.post(
        site.url + path, data=params, headers={"X-Twilio-Signature": signature}, timeout=30
    )
    response.raise_for_status()
    stream = ET.fromstring(response.text).find("Connect/Stream")
    assert stream is not None, response.text
    return {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}


def _answer(site: Site, call_sid: str, to: str = BRIGHT_SPARK) -> dict[str, str]:
    params = {"CallSid": call_sid, "AccountSid": ACCOUNT, "From": CALLER, "To": to}
    if to == ACME:  # the owner did not pick up
        return _webhook(site, "/twilio/voice/dial-status", {**params, "DialCallStatus": "busy"})
    return _webhook(site, "/twilio/voice", params)


def _upgrade_headers(site: Site) -> dict[str, str]:
    """The upgrade's signature: the same for every call (this is what gets captured)."""
    url = site.settings.media_stream_url
    return {"X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, {})}


def _start(call_sid: str, stream_sid: str, parameters: dict[str, str]) -> str:
    return encode_inbound(
        Start(1, stream_sid, ACCOUNT, call_sid, ("inbound",), parameters, TWILIO_MEDIA_FORMAT)
    )


def _keypad_yes_and_hang_up(call_sid: str, stream_sid: str) -> list[str]:
    """What follows ``start`` on the attacker's keypad call: audio, a 1, hang up."""
    return [
        encode_inbound(Media(2, stream_sid, "inbound", 1, 0, b"\xff" * 160)),
        encode_inbound(Dtmf(3, stream_sid, "inbound_track", "1")),
        encode_inbound(Stop(4, stream_sid, ACCOUNT, call_sid)),
    ]


@dataclass(frozen=True)
class StreamEnd:
    close_code: int | None
    frames_received: int  # what the server sent us (the greeting's audio and marks)


async def _drain(websocket: ClientConnection) -> StreamEnd:
    received = 0
    try:
        async with asyncio.timeout(STORE_WAIT):
            async for _frame in websocket:
                received += 1
    except ConnectionClosed:  # closed with an error code (1008): the close code tells
        pass
    except TimeoutError:
        pytest.fail("the server kept the stream open")
    return StreamEnd(websocket.close_code, received)


async def _replay(site: Site, frames: list[str]) -> StreamEnd:
    """Open a signed upgrade, send ``frames`` without waiting for anything, read until closed."""
    url = site.url.replace("http://", "ws://") + "/twilio/media-stream"
    async with connect(url, additional_headers=_upgrade_headers(site)) as websocket:
        for frame in frames:
            try:
                await websocket.send(frame)
            except ConnectionClosed:
                break
        return await _drain(websocket)


async def _real_call(site: Site, frames: list[str], after_greeting: list[str]) -> StreamEnd:
    """A stream Twilio connected for a call we answered: ``frames`` (up to ``start``), the
    greeting's first frame back, then ``after_greeting`` (ending with ``stop``)."""
    url = site.url.replace("http://", "ws://") + "/twilio/media-stream"
    async with connect(url, additional_headers=_upgrade_headers(site)) as websocket:
        for frame in frames:
            await websocket.send(frame)
        async with asyncio.timeout(STORE_WAIT):
            first = json.loads(await websocket.recv())
        assert first["event"] in ("media", "mark"), first
        for frame in after_greeting:
            await websocket.send(frame)
        end = await _drain(websocket)
    return StreamEnd(end.close_code, end.frames_received + 1)


# --- what the server kept ---------------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    calls: int
    consent_events: int
    outbox: int
    credential_uses: int
    texts_sent: int


def _stored(site: Site) -> Stored:
    with site.services.engine.connect() as conn:

        def count(table: Table) -> int:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

        return Stored(
            count(calls),
            count(consent_events),
            count(outbox),
            count(stream_credential_uses),
            site.texts_sent,
        )


def _call_stored(site: Site, call_sid: str) -> bool:
    with site.services.engine.connect() as conn:
        query = select(calls.c.call_sid).where(calls.c.call_sid == call_sid)
        return conn.execute(query).first() is not None


def _wait_until_stored(site: Site, call_sid: str) -> None:
    """Until the call is stored and the texts it queued (the owner's summary) have gone out,
    so that what is counted afterwards can only come from what follows."""
    deadline = time.monotonic() + STORE_WAIT
    while not _call_stored(site, call_sid) or _texts_waiting(site):
        assert time.monotonic() < deadline, f"call {call_sid} was never stored and sent"
        time.sleep(0.05)


def _texts_waiting(site: Site) -> bool:
    """Whether a text is due now and not sent yet (one due later cannot change the count)."""
    with site.services.engine.connect() as conn:
        due = outbox.c.status.in_(["scheduled", "claimed"]) & (outbox.c.due_at <= datetime.now(UTC))
        return conn.execute(select(outbox.c.id).where(due)).first() is not None


def _consent_events_for(site: Site, number: str) -> int:
    with site.services.engine.connect() as conn:
        query = (
            select(func.count())
            .select_from(consent_events)
            .where(consent_events.c.phone_number == number)
        )
        return int(conn.execute(query).scalar_one())


# --- the tests --------------------------------------------------------------------------------


def test_a_captured_stream_replayed_stores_and_sends_nothing(site: Site) -> None:
    connected = encode_inbound(Connected("Call", "1.0.0"))

    # The capture: a real call we answered, its upgrade and its start, as Twilio sends them.
    call = _sid("CA", "a")
    captured = _answer(site, call)
    assert set(captured) == {"business", "caller", "credential"}
    real = asyncio.run(
        _real_call(
            site,
            [connected, _start(call, _sid("MZ", "a"), captured)],
            [encode_inbound(Stop(2, _sid("MZ", "a"), ACCOUNT, call))],
        )
    )
    assert real.close_code == 1000 and real.frames_received >= 1
    _wait_until_stored(site, call)
    before = _stored(site)
    assert before.credential_uses == 1

    other_call = _sid("CA", "b")
    other = _answer(site, other_call)  # issued, never connected: its credential is unused
    expired = StreamCredentials.from_settings(site.settings).issue(
        _sid("CA", "c"),
        "bright-spark-electric",
        CALLER,
        site.services.clock() - timedelta(hours=1),
    )
    acme_reusing_the_sid = _answer(site, call, to=ACME)  # a fresh credential, a used call SID
    no_credential = {"business": "bright-spark-electric", "caller": VICTIM}
    replays = {
        "the captured start again": (call, captured),
        "no credential, someone else's number": (_sid("CA", "d"), no_credential),
        "the captured business and caller, no credential": (
            _sid("CA", "e"),
            {k: v for k, v in captured.items() if k != "credential"},
        ),
        "an expired credential": (
            _sid("CA", "c"),
            {**no_credential, "caller": CALLER, "credential": expired},
        ),
        "another call's credential": (_sid("CA", "f"), other),
        "another call's credential, its own SID, another caller": (
            other_call,
            {**other, "caller": VICTIM},
        ),
        "another call's credential, its own SID, another business": (
            other_call,
            {**other, "business": "acme-plumbing"},
        ),
        "a credential for a call SID already used": (call, acme_reusing_the_sid),
        "the captured credential with another call SID": (_sid("CA", "9"), captured),
    }
    for name, (call_sid, parameters) in replays.items():
        stream_sid = _sid("MZ", "1")
        frames = [
            connected,
            _start(call_sid, stream_sid, parameters),
            *_keypad_yes_and_hang_up(call_sid, stream_sid),
        ]
        end = asyncio.run(_replay(site, frames))
        assert end == StreamEnd(POLICY_VIOLATION, 0), name  # not even the greeting was sent
        # The same captured upgrade, twice at once: neither gets in.
        twice = asyncio.run(_twice(site, frames))
        assert twice == [StreamEnd(POLICY_VIOLATION, 0)] * 2, name

    assert _stored(site) == before
    assert _consent_events_for(site, VICTIM) == 0
    assert not _call_stored(site, other_call)
    transport = site.services.sms_transport
    assert isinstance(transport, LocalSmsTransport)
    assert [sms for sms in transport.delivered if sms.to_number == VICTIM] == []


async def _twice(site: Site, frames: list[str]) -> list[StreamEnd]:
    return list(await asyncio.gather(_replay(site, frames), _replay(site, frames)))


def test_a_signed_upgrade_that_never_starts_is_closed(site: Site) -> None:
    before = _stored(site)
    silent = asyncio.run(_replay(site, []))
    assert silent == StreamEnd(POLICY_VIOLATION, 0)
    connected_only = asyncio.run(_replay(site, [encode_inbound(Connected("Call", "1.0.0"))]))
    assert connected_only == StreamEnd(POLICY_VIOLATION, 0)
    assert _stored(site) == before


def _junk(count: int, stream_sid: str) -> list[str]:
    """Malformed and out-of-order frames, in turn."""
    kinds = [
        "{not json",
        '{"event":"media"}',
        encode_inbound(Media(0, "MZ" + "0" * 32, "inbound", 1, 0, b"\xff")),  # wrong stream
        json.dumps({"event": "dtmf", "streamSid": stream_sid, "sequenceNumber": "x"}),
    ]
    return [kinds[index % len(kinds)] for index in range(count)]


def _skip_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "media_stream.bridge" and "skip" in record.getMessage()
    ]


def test_junk_before_start_is_logged_a_bounded_number_of_times(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    before = _stored(site)
    frames = [*_junk(300, _sid("MZ", "2")), _start(_sid("CA", "2"), _sid("MZ", "2"), {})]
    with caplog.at_level(logging.WARNING, logger="media_stream.bridge"):
        end = asyncio.run(_replay(site, frames))
    assert end == StreamEnd(POLICY_VIOLATION, 0)
    lines = _skip_lines(caplog)
    assert len(lines) == SKIPPED_FRAMES_LOGGED + 2  # the first few, "only counted", the total
    assert lines[-1] == "skipped 300 malformed or out-of-order frames"
    assert _stored(site) == before


def test_junk_during_a_call_is_logged_a_bounded_number_of_times(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    call, stream_sid = _sid("CA", "3"), _sid("MZ", "3")
    parameters = _answer(site, call)
    frames = [encode_inbound(Connected("Call", "1.0.0")), _start(call, stream_sid, parameters)]
    after = [*_junk(200, stream_sid), encode_inbound(Stop(2, stream_sid, ACCOUNT, call))]
    with caplog.at_level(logging.WARNING, logger="media_stream.bridge"):
        end = asyncio.run(_real_call(site, frames, after))
        assert end.close_code == 1000
        _wait_until_stored(site, call)
    lines = _skip_lines(caplog)
    assert len(lines) == SKIPPED_FRAMES_LOGGED + 2
    assert re.fullmatch(r"skipped 200 malformed or out-of-order frames", lines[-1])
