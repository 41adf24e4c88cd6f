"""The wheel works outside the checkout: built, installed into a fresh virtualenv in a temporary
folder, it migrates a database and answers a simulated call from a server started from that
install, with the prompts, migrations and templates it ships.

The fresh virtualenv gets the wheel itself (``--no-deps``); its third-party dependencies come
from this project's virtualenv through a path file, so the test needs no network and still
proves that nothing of ours is read from the source tree: the checkout is not on its path and
every command runs from the temporary folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import sysconfig
import time
import venv
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL, ROOT
from voice_agent.web.local_server import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding the built wheel; returns its ``bin`` folder."""
    place = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", place, ROOT],
        check=True,
        cwd=place,
    )
    (wheel,) = place.glob("voice_receptionist-*.whl")
    target = place / "venv"
    venv.create(target, with_pip=False)
    site_packages = Path(sysconfig.get_path("purelib", vars={"base": target, "platbase": target}))
    (site_packages / "project_dependencies.pth").write_text(
        sysconfig.get_path("purelib") + "\n", encoding="utf-8"
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            site_packages,
            wheel,
        ],
        check=True,
        cwd=place,
    )
    _write_console_script(target / "bin" / "receptionist", target / "bin" / "python")
    return target / "bin"


def _write_console_script(path: Path, python: Path) -> None:
    """``pip install --target`` writes no scripts: the entry point, as pip would write it."""
    path.write_text(
        f"#!{python}\nfrom voice_agent.cli.main import main\nraise SystemExit(main())\n",
        encoding="utf-8",
    )
    path.chmod(0o755)


def _environment(workdir: Path, port: int) -> dict[str, str]:
    environment = {
        key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "VIRTUAL_ENV"}
    }
    environment.update(
        DATABASE_URL=f"sqlite:///{workdir / 'receptionist.db'}",
        AUDIO_DIR=str(workdir / "audio"),
        PUBLIC_BASE_URL=PUBLIC_BASE_URL,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        PORT=str(port),
    )
    return environment


@contextlib.contextmanager
def _server(bin_dir: Path, workdir: Path, environment: dict[str, str]) -> Iterator[str]:
    url = f"http://127.0.0.1:{environment['PORT']}"
    server = subprocess.Popen(
        [bin_dir / "receptionist", "serve"],
        cwd=workdir,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):  # the speech model loads first; give up after about a minute
            if server.poll() is not None:
                raise AssertionError("the installed server exited while starting")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise AssertionError("the installed server did not start")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_installed_wheel_migrates_and_answers_a_call(installed: Path, tmp_path: Path) -> None:
    environment = _environment(tmp_path, free_port())

    def receptionist(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [installed / "receptionist", *args],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )

    located = subprocess.run(
        [installed / "python", "-c", "import voice_agent, prompts; print(voice_agent.__file__)"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    assert not Path(located.stdout.strip()).is_relative_to(ROOT)  # the wheel, not the checkout

    receptionist("db", "upgrade")
    receptionist("business", "import", ROOT / "fixtures" / "businesses.yaml")
    with _server(installed, tmp_path, environment) as url:
        public_page = httpx.get(f"{url}/b/acme-plumbing/sms", timeout=10)  # templates shipped
        assert public_page.status_code == 200 and "Before we finish" in public_page.text
        simulated = receptionist(
            "simulate",
            ROOT / "fixtures" / "calls" / "consent-yes.yaml",
            "--server",
            url,
            "--speed",
            "3",  # the default voice (Piper) keeps ahead of playout at 3x on a busy machine
            "--json",
        )
    (outcome,) = json.loads(simulated.stdout)
    assert outcome["ok"], outcome["problems"]
    assert outcome["call"]["consent_outcome"] == "affirmative"
    shipped_script = "Before we finish — and just to be clear, I'm an automated assistant"
    assert shipped_script in json.dumps(outcome["call"], ensure_ascii=False)
