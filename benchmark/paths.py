"""Where StickerBench keeps generated datasets, results and caches.

Everything lives under the project root: ``$STICKERBENCH_HOME`` if set, else the source
checkout this package was installed from (editable install), else the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

CHECKPOINTS = "checkpoints"
"""The sub-folder of a fit folder (or a shared artifact's) that survives an interrupted fit
(training checkpoints to resume from); it is deleted once the fit completes."""


def project_root() -> Path:
    """The folder holding ``datasets/``, ``results/`` and ``.cache/``."""
    if os.environ.get("STICKERBENCH_HOME"):
        return Path(os.environ["STICKERBENCH_HOME"]).resolve()
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file():
        return checkout
    return Path.cwd()


def datasets_dir() -> Path:
    return project_root() / "datasets"


def results_dir() -> Path:
    return project_root() / "results"


def cache_dir() -> Path:
    return project_root() / ".cache"
