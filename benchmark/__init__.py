"""StickerBench harness: data layer, simulator, evaluation, tables, profiling and the CLI."""

import os as _os

from benchmark.paths import cache_dir as _cache_dir

# Offline by default: a model hub name otherwise takes ~70 s to fail on this machine.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
# ranx compiles with numba on first use (16-35 s); keep the compiled code between runs.
_os.environ.setdefault("NUMBA_CACHE_DIR", str(_cache_dir() / "numba"))

__version__ = "0.1.0"
