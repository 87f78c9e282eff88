"""StickerBench harness: data layer, simulator, evaluation, tables, profiling and the CLI."""

import os as _os

# Offline by default: a model hub name otherwise takes ~70 s to fail on this machine.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
# ranx compiles with numba on first use (about 30 s). numba keeps the compiled code beside the
# installed ranx (or in the user's cache if that is read-only): once per install, not once per
# STICKERBENCH_HOME. NUMBA_CACHE_DIR, if set, puts it elsewhere.

__version__ = "0.1.0"
