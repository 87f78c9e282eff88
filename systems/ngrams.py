"""N-gram keys for MINDER/SEAL-style generative retrieval.

:class:`NgramIndex` replaces SEAL's FM-index with a truncated suffix array over token ids, in
numpy: every suffix (or, ``anchored``, every whole sequence) is cut to its first ``max_length``
tokens, padded with -1 past the end of its own sequence (a suffix never runs into the next one),
and the rows are sorted lexicographically. The rows starting with an n-gram then form one
contiguous range, found by a binary search per column; its next column lists the tokens that may
follow, which is what constrained decoding needs (:meth:`NgramIndex.allowed_after`).

The scoring functions follow SEAL (facebookresearch/SEAL): an n-gram's unconditional probability
is smoothed with ``SMOOTHING`` (5); a key weighs
``max(0, log P(n|q) + log(1 - P(n)) - log P(n) - log(1 - P(n|q))) ** 2``; and a document sums the
weights of its keys, best first, skipping keys inside an already counted key and discounting keys
whose tokens were already seen by ``1 - COVERAGE + COVERAGE * new / distinct`` (``COVERAGE`` 0.8).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

SMOOTHING = 5.0
"""Added to an n-gram's count and to the corpus size in its unconditional probability."""

COVERAGE = 0.8
"""Share of a key's weight that depends on how many of its token types are new to the document."""

MAX_CONDITIONAL_PROB = 1.0 - 1e-6
"""P(n|q) is clipped here so that log(1 - P(n|q)) stays finite."""

PAD = -1
"""Table value past the end of a suffix's own sequence."""


def _concatenate(sequences: Sequence[Sequence[int]], eos_token_id: int) -> tuple[np.ndarray, np.ndarray]:
    """All tokens in one int64 array, and each sequence's start offset (length ``len(sequences) + 1``)."""
    arrays = [np.asarray(seq, dtype=np.int64).reshape(-1) for seq in sequences]
    for i, array in enumerate(arrays):
        if np.any(array == eos_token_id):
            raise ValueError(f"sequence {i}: the end-of-sequence token is not allowed inside a sequence")
        if np.any(array < 0):
            raise ValueError(f"sequence {i}: token ids must be non-negative")
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(a) for a in arrays])
    tokens = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
    return tokens, offsets


def _suffix_table(tokens: np.ndarray, starts: np.ndarray, ends: np.ndarray, max_length: int) -> np.ndarray:
    """The first ``max_length`` tokens of each suffix, -1 past ``ends`` (exclusive), one row per start.

    Column-major: the columns are what gets sorted and searched.
    """
    dtype = np.int32 if len(tokens) == 0 or tokens.max() < np.iinfo(np.int32).max else np.int64
    table = np.full((len(starts), max_length), PAD, dtype=dtype, order="F")
    for j in range(max_length):
        positions = starts + j
        inside = positions < ends
        table[inside, j] = tokens[positions[inside]]
    return table


def _sorted_rows(table: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``table[order]`` in column-major order, so that each column slice searched is contiguous."""
    out = np.empty_like(table, order="F")
    for j in range(table.shape[1]):
        out[:, j] = table[order, j]
    return out


class NgramIndex:
    """Every n-gram (up to ``max_length`` tokens) of a token-id corpus, as a sorted suffix table.

    Args:
        sequences: token ids per sequence (non-negative, never ``eos_token_id``); empty ones are
            ignored.
        owners: the item (document) owning each sequence; items may own several sequences.
        eos_token_id: the token that ends a generated n-gram.
        max_length: the longest n-gram the index answers for.
        anchored: index only prefixes of whole sequences instead of every substring.

    Attributes:
        table: ``(len(self), max_length)`` sorted rows, -1 past the end of a sequence; stored
            column-major so that a binary search never copies a column.
        row_owner: the owner of each row's sequence.
        row_start: each row's start position in the concatenated corpus.
        n_tokens: the number of tokens in the corpus.
    """

    def __init__(self, sequences: Sequence[Sequence[int]], owners: Sequence[int], eos_token_id: int,
                 max_length: int = 16, anchored: bool = False):
        if len(owners) != len(sequences):
            raise ValueError(f"{len(sequences)} sequences but {len(owners)} owners")
        if max_length < 1:
            raise ValueError("max_length must be at least 1")
        self.eos_token_id, self.max_length, self.anchored = eos_token_id, max_length, anchored
        tokens, offsets = _concatenate(sequences, eos_token_id)
        lengths = np.diff(offsets)
        sequence_of = np.repeat(np.arange(len(lengths)), lengths)
        if anchored:
            starts = offsets[:-1][lengths > 0]
        else:
            starts = np.arange(len(tokens), dtype=np.int64)
        seq = sequence_of[starts]
        table = _suffix_table(tokens, starts, offsets[1:][seq], max_length)
        order = np.lexsort(table.T[::-1])  # lexsort's last key is the primary one
        self.tokens = tokens
        self.n_tokens = int(len(tokens))
        self.table = _sorted_rows(table, order)
        self.row_start = starts[order]
        self.row_owner = np.asarray(owners, dtype=np.int64).reshape(-1)[seq[order]]
        self._allowed: dict[tuple[int, ...], torch.Tensor | None] = {}
        self._eos_only = torch.tensor([eos_token_id], dtype=torch.int64)

    def __len__(self) -> int:
        """Number of suffix rows."""
        return len(self.table)

    def _as_ngram(self, ngram: Sequence[int]) -> tuple[int, ...]:
        """``ngram`` as a tuple of ints, checked against ``max_length``."""
        ngram = tuple(int(t) for t in ngram)
        if len(ngram) > self.max_length:
            raise ValueError(f"n-gram of {len(ngram)} tokens exceeds max_length={self.max_length}")
        return ngram

    def range(self, ngram: Sequence[int]) -> tuple[int, int]:
        """The rows ``[lo, hi)`` whose suffix starts with ``ngram``; ``(0, 0)`` if it does not occur.

        Raises:
            ValueError: ``ngram`` is longer than ``max_length``.
        """
        ngram = self._as_ngram(ngram)
        lo, hi = 0, len(self.table)
        for j, token in enumerate(ngram):
            lo, hi = self._narrow(lo, hi, j, token)
            if lo == hi:
                return 0, 0
        return lo, hi

    def _narrow(self, lo: int, hi: int, column: int, token: int) -> tuple[int, int]:
        """The rows of ``[lo, hi)`` holding ``token`` in ``column`` (sorted there), possibly empty."""
        if token < 0 or token > np.iinfo(self.table.dtype).max:
            return lo, lo
        values = self.table[lo:hi, column]
        key = self.table.dtype.type(token)  # same dtype: searchsorted would otherwise copy the column
        return lo + int(np.searchsorted(values, key, "left")), lo + int(np.searchsorted(values, key, "right"))

    def count(self, ngram: Sequence[int]) -> int:
        """Occurrences of ``ngram`` in the corpus (for ``anchored``: sequences starting with it)."""
        lo, hi = self.range(ngram)
        return hi - lo

    def next_tokens(self, ngram: Sequence[int]) -> np.ndarray:
        """Sorted distinct tokens that follow ``ngram`` somewhere in the corpus (int64)."""
        ngram = self._as_ngram(ngram)
        lo, hi = self.range(ngram)
        if lo == hi or len(ngram) == self.max_length:
            return np.zeros(0, dtype=np.int64)
        column = self.table[lo:hi, len(ngram)]  # sorted within the range
        distinct = column[np.r_[True, column[1:] != column[:-1]]]
        return distinct[distinct != PAD].astype(np.int64)

    def locate(self, ngram: Sequence[int]) -> np.ndarray:
        """Sorted distinct owners of the occurrences of ``ngram`` (int64)."""
        lo, hi = self.range(ngram)
        return np.unique(self.row_owner[lo:hi])

    def allowed_after(self, prefix: Sequence[int]) -> torch.Tensor | None:
        """Token ids a constrained decoder may emit after ``prefix`` (cached), or None.

        An occurring non-empty prefix may continue with any token that follows it in the corpus,
        or end (``eos_token_id``); the empty prefix may only start an n-gram. A prefix of
        ``max_length`` tokens may only end.

        Returns:
            An int64 tensor, or None when ``prefix`` does not occur (or is longer than
            ``max_length``): the caller then allows only end-of-sequence.
        """
        key = tuple(int(t) for t in prefix)
        if key not in self._allowed:
            self._allowed[key] = self._compute_allowed(key)
        return self._allowed[key]

    def _compute_allowed(self, prefix: tuple[int, ...]) -> torch.Tensor | None:
        if len(prefix) > self.max_length or self.count(prefix) == 0:
            return None
        if len(prefix) == self.max_length:
            return self._eos_only
        tokens = self.next_tokens(prefix)
        if prefix:
            tokens = np.append(tokens, self.eos_token_id)
        return torch.from_numpy(tokens.astype(np.int64))


def unconditional_log_prob(count: int | np.ndarray, n_tokens: int) -> float | np.ndarray:
    """log P(n) = log((count + SMOOTHING) / (n_tokens + SMOOTHING)), elementwise for arrays."""
    if isinstance(count, np.ndarray):
        return np.log((count + SMOOTHING) / (n_tokens + SMOOTHING))
    return math.log((count + SMOOTHING) / (n_tokens + SMOOTHING))


def key_weight(log_prob_given_query: float, count: int, n_tokens: int) -> float:
    """SEAL's weight of a generated key: how much likelier the query makes it than the corpus does.

    Args:
        log_prob_given_query: log P(n|q), the model's log-probability of the key (<= 0).
        count: occurrences of the key in the corpus.
        n_tokens: corpus size in tokens.

    Returns:
        ``max(0, log P(n|q) + log(1 - P(n)) - log P(n) - log(1 - P(n|q))) ** 2``, with P(n|q)
        clipped to ``MAX_CONDITIONAL_PROB``; 0 for a key absent from the corpus (as in SEAL) or
        one as frequent as the corpus is long (P(n) = 1).
    """
    if count <= 0:
        return 0.0
    log_p_n = unconditional_log_prob(count, n_tokens)
    if log_p_n >= 0.0:
        return 0.0
    log_p_nq = min(float(log_prob_given_query), math.log(MAX_CONDITIONAL_PROB))
    odds = log_p_nq + math.log1p(-math.exp(log_p_n)) - log_p_n - math.log1p(-math.exp(log_p_nq))
    return max(0.0, odds) ** 2


def _contains(big: tuple[int, ...], small: tuple[int, ...]) -> bool:
    """Whether ``small`` is a contiguous sub-sequence of ``big``."""
    width = len(small)
    return any(big[i:i + width] == small for i in range(len(big) - width + 1))


def document_score(keys: Sequence[tuple[tuple[int, ...], float]]) -> float:
    """SEAL's score of a document from the keys it matched.

    Keys are taken by weight, highest first (ties by key). A key inside an already counted key
    is skipped; otherwise it adds ``weight * (1 - COVERAGE + COVERAGE * new / distinct)``, where
    ``distinct`` counts its token types and ``new`` those not seen in keys counted before it.

    Args:
        keys: ``(tokens, weight)`` per matched key.
    """
    ordered = sorted(((tuple(int(t) for t in k), float(w)) for k, w in keys), key=lambda kw: (-kw[1], kw[0]))
    counted: list[tuple[int, ...]] = []
    seen: set[int] = set()
    score = 0.0
    for key, weight in ordered:
        if not key or any(_contains(done, key) for done in counted):
            continue
        types = set(key)
        score += weight * (1.0 - COVERAGE + COVERAGE * len(types - seen) / len(types))
        counted.append(key)
        seen |= types
    return score
