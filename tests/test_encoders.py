"""The shared text-encoder machinery: the encodings cache is a recorded shared artifact."""

from __future__ import annotations

import numpy as np

from systems.base import recording_shared
from systems.encoders import cached_encode


class CountingEncoder:
    """A stand-in for a sentence-transformers model: row i is (len(text_i), call number)."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts, **_) -> np.ndarray:
        self.calls += 1
        return np.array([[len(t), self.calls] for t in texts], dtype=np.float32)

    def get_embedding_dimension(self) -> int:
        return 2


def test_cached_encode_builds_once_and_records_reuse():
    model = CountingEncoder()
    texts = ["a sticker", "another sticker"]
    with recording_shared() as first:
        vectors = cached_encode(model, "counting-encoder", texts)
    with recording_shared() as second:  # a later fit asking for the same texts reuses them
        again = cached_encode(model, "counting-encoder", texts)
    assert model.calls == 1
    np.testing.assert_array_equal(again, vectors)
    assert [(u["kind"], u["built"]) for u in first] == [("embeddings", True)]
    assert [(u["kind"], u["built"]) for u in second] == [("embeddings", False)]
    cached_encode(model, "another-model", texts)  # other weights, or other texts, are encoded anew
    cached_encode(model, "counting-encoder", texts[:1])
    assert model.calls == 3
