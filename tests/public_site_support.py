"""The whole application on a migrated database holding the demo businesses, for the public pages
and the callback form: its services (with a clock the test moves) and a ``TestClient`` that talks
to it as the public base URL, as a browser on our own pages would."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from consent_ledger import ledger_event_total
from tests.clock_support import SteppingClock
from tests.conftest import PUBLIC_BASE_URL, ROOT, receptionist_settings
from voice_agent.records.businesses import import_businesses
from voice_agent.records.migrate import upgrade
from voice_agent.services import Services, build_services
from voice_agent.web.app import create_app

T0 = datetime(2025, 6, 2, 15, 0, tzinfo=UTC)  # 10:00 at Acme (Central), inside its send window
ACME = "acme-plumbing"
SPARK = "bright-spark-electric"
OUR_PAGES = {"origin": PUBLIC_BASE_URL}
_TOKEN = re.compile(r'name="token" value="([^"]+)"')
_DISCLOSURE = re.compile(r'name="disclosure_sha256" value="([0-9a-f]{64})"')


@dataclass
class PublicSite:
    services: Services
    client: TestClient
    clock: SteppingClock
    events_at_start: int = 0  # the owners' summary-text choices, recorded at import

    @property
    def engine(self) -> Engine:
        return self.services.engine

    def form_fields(self, business_id: str = ACME) -> dict[str, str]:
        """The hidden fields of the business's callback form as served now."""
        page = self.client.get(f"/b/{business_id}/callback")
        assert page.status_code == 200, page.text
        token, disclosure = _TOKEN.search(page.text), _DISCLOSURE.search(page.text)
        assert token is not None and disclosure is not None
        return {"token": token.group(1), "disclosure_sha256": disclosure.group(1)}


def site_services(
    database_url: str, tmp_path: Path, clock: SteppingClock | None = None, port: int = 8765
) -> Services:
    """The app's services on ``database_url`` (migrated here, the demo businesses imported)."""
    upgrade(database_url)
    settings = receptionist_settings(database_url, port=port).model_copy(
        update={"journal_dir": tmp_path / "journal"}
    )
    services = build_services(settings, clock=clock or SteppingClock(T0))
    with services.engine.begin() as conn:
        import_businesses(conn, ROOT / "fixtures" / "businesses.yaml")
    return services


def close_services(services: Services) -> None:
    services.businesses.close()
    services.journal.close()
    services.engine.dispose()


@contextlib.contextmanager
def public_site(database_url: str, tmp_path: Path) -> Iterator[PublicSite]:
    """The app on ``database_url``, read through a ``TestClient``, at :data:`T0`."""
    clock = SteppingClock(T0)
    services = site_services(database_url, tmp_path, clock)
    client = TestClient(create_app(services), base_url=PUBLIC_BASE_URL)
    try:
        with services.engine.connect() as conn:
            events_at_start = ledger_event_total(conn)
        yield PublicSite(services, client, clock, events_at_start)
    finally:
        client.close()
        close_services(services)
