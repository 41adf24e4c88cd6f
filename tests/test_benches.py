"""The benchmarks still run: each is started the way the README says, on a tiny workload, and must
print its figures. The figures themselves are the benchmarks' business, never the tests'."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT, postgres_unreachable


def _run(script: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )


def test_the_concurrency_bench_runs_calls_and_reports_a_row() -> None:
    run = _run(
        "concurrency.py", "--calls", "2", "--ramp", "0.5", "--speak-after", "2", "--talk", "8"
    )
    assert "Traceback" not in run.stderr, run.stderr
    assert run.returncode in (0, 1), run.stderr  # 1: a target missed, said on the last line
    row = re.search(r"^\s+2\s+(\d+)/(\d+)\s", run.stdout, re.MULTILINE)
    assert row is not None, run.stdout
    assert int(row.group(1)) > 0, "no caller line was answered"


def test_the_ledger_bench_appends_verifies_and_exports() -> None:
    run = _run("ledger.py", "--events", "3000", "--businesses", "3", "--appends", "50")
    assert run.returncode == 0, run.stderr
    for measure in ("appends", "verify, 1 process", "one number's packet"):
        assert re.search(rf"^{measure}\s+sqlite\s+[\d,.]+\s+[\d,.]+", run.stdout, re.MULTILINE), (
            run.stdout
        )


def test_the_scale_bench_sends_texts_through_worker_processes() -> None:
    if (reason := postgres_unreachable()) is not None:
        pytest.skip(f"PostgreSQL is unreachable: {reason}")
    run = _run("scale.py", "--processes", "1", "--texts", "40", "--skip-calls")
    assert run.returncode == 0, run.stderr + run.stdout
    assert re.search(r"^\| 1 \| \d+ \| — \| — \|$", run.stdout, re.MULTILINE), run.stdout


def test_the_owner_pages_bench_times_the_calls_page() -> None:
    run = _run("owner_pages.py", "--calls", "120", "--requests", "3")
    assert "Traceback" not in run.stderr, run.stderr
    assert run.returncode in (0, 1), run.stderr  # 1: the target missed, said on the last line
    for request in ("calls page 1", "calls last page", "search 'boiler'", "one call"):
        assert re.search(rf"^{request}\s+[\d.]+\s+[\d.]+\s+[\d.]+$", run.stdout, re.MULTILINE), (
            run.stdout
        )
