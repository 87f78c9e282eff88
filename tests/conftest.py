"""Shared fixtures. Every test writes under a temporary STICKERBENCH_HOME, never the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pin_worker_to_its_share_of_the_cores() -> None:
    """Under pytest-xdist (``-n``), run each worker, and the ``bench`` processes it starts, on its
    own share of the cores: torch sizes its threads to the cores a process may use
    (``systems.encoders.usable_cores``), so two training workers do not oversubscribe them."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    index, count = int(worker.removeprefix("gw")), int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.sched_setaffinity(0, cores[index::count] or [cores[index % len(cores)]])


_pin_worker_to_its_share_of_the_cores()
HOME = Path(tempfile.mkdtemp(prefix="stickerbench-tests-"))
os.environ["STICKERBENCH_HOME"] = str(HOME)
SHARED_STICKER_QUERIES = ROOT.parent / "shared" / "datasets" / "sticker-queries"


@pytest.fixture(scope="session")
def tiny():
    """The tiny wechat-sim profile, generated once per session."""
    from benchmark import catalog

    return catalog.resolve("wechat-sim", "tiny")


def bench(*args: str, home: Path | None = None, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the ``bench`` CLI in a subprocess (as a user would) and capture its output."""
    full_env = {**os.environ, "STICKERBENCH_HOME": str(home or HOME), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "benchmark.cli", *args], capture_output=True, text=True,
        env=full_env, timeout=timeout, cwd=ROOT,
    )


def bench_here(*args: str) -> subprocess.CompletedProcess:
    """Run the ``bench`` CLI in this process: for arguments it refuses before any work, where a
    subprocess would only add its start-up (about 5 s of imports)."""
    from click.testing import CliRunner

    from benchmark.cli import main

    result = CliRunner().invoke(main, list(args))
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)
