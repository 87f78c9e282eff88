"""Shared fixtures. Every test writes under a temporary STICKERBENCH_HOME, never the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
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
