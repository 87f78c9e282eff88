"""The n-gram suffix table and SEAL's key and document scoring, against brute force and hand arithmetic."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np
import pytest
import torch

from systems.ngrams import NgramIndex, document_score, key_weight, unconditional_log_prob

EOS = 2
VOCAB = [3, 4, 5, 6]
ABSENT = 7  # never generated in the random corpora


def random_corpus(seed: int) -> tuple[list[list[int]], list[int]]:
    """Small sequences over a tiny vocabulary (many repeats), some empty, one duplicated, owners shared."""
    rng = np.random.default_rng(seed)
    sequences = [rng.choice(VOCAB, size=rng.integers(0, 8)).tolist() for _ in range(rng.integers(2, 7))]
    sequences.append(list(sequences[0]))  # a repeated sequence
    owners = rng.integers(0, 3, size=len(sequences)).tolist()  # several sequences per owner
    return sequences, owners


def brute_force(sequences, owners, max_length, anchored):
    """Every occurrence of every n-gram, by enumerating substrings (prefixes when anchored)."""
    positions, owner_sets, following = defaultdict(set), defaultdict(set), defaultdict(set)
    offset = 0
    for seq, owner in zip(sequences, owners):
        starts = range(len(seq)) if not anchored else range(min(1, len(seq)))
        for i in starts:
            for j in range(i, min(len(seq), i + max_length) + 1):
                gram = tuple(seq[i:j])
                positions[gram].add(offset + i)
                owner_sets[gram].add(owner)
                if j < len(seq) and j - i < max_length:
                    following[gram].add(seq[j])
        offset += len(seq)
    return positions, owner_sets, following


def expected_rows(sequences, max_length, anchored):
    """The sorted truncated suffixes, padded with -1, built directly in Python."""
    rows = []
    for seq in sequences:
        for i in (range(len(seq)) if not anchored else range(min(1, len(seq)))):
            cut = list(seq[i:i + max_length])
            rows.append(tuple(cut + [-1] * (max_length - len(cut))))
    return sorted(rows)


def queries(present, max_length):
    """Present n-grams, one-token extensions (mostly absent), and every short n-gram over the vocabulary."""
    out = set(present)
    for gram in present:
        if len(gram) < max_length:
            out.update(gram + (t,) for t in VOCAB + [ABSENT, EOS])
    for n in (1, 2):
        out.update(itertools.product(VOCAB + [ABSENT], repeat=n))
    return sorted(out)


@pytest.mark.parametrize("anchored", [False, True])
@pytest.mark.parametrize("max_length", [3, 5])
@pytest.mark.parametrize("seed", range(5))
def test_index_matches_brute_force(seed, max_length, anchored):
    sequences, owners = random_corpus(seed)
    index = NgramIndex(sequences, owners, EOS, max_length=max_length, anchored=anchored)
    positions, owner_sets, following = brute_force(sequences, owners, max_length, anchored)
    assert index.n_tokens == sum(len(s) for s in sequences)
    assert len(index) == len(positions[()])
    assert [tuple(r) for r in index.table.tolist()] == expected_rows(sequences, max_length, anchored)
    absent = 0
    for gram in queries(list(positions), max_length):
        lo, hi = index.range(gram)
        assert set(index.row_start[lo:hi].tolist()) == positions.get(gram, set()), gram
        assert index.count(gram) == len(positions.get(gram, ())), gram
        assert index.locate(gram).tolist() == sorted(owner_sets.get(gram, ())), gram
        assert index.next_tokens(gram).tolist() == sorted(following.get(gram, ())), gram
        absent += gram not in positions
    assert absent > 0


def test_rows_carry_their_owner_and_start():
    sequences, owners = random_corpus(0)
    index = NgramIndex(sequences, owners, EOS, max_length=4)
    flat = [t for s in sequences for t in s]
    owner_at = [o for s, o in zip(sequences, owners) for _ in s]
    for row, start, owner in zip(index.table.tolist(), index.row_start.tolist(), index.row_owner.tolist()):
        assert row[0] == flat[start] and owner == owner_at[start]


def test_suffixes_stop_at_sequence_boundaries():
    index = NgramIndex([[3, 4], [5, 6], [4, 5]], [0, 1, 2], EOS)
    assert index.count([4, 5]) == 1  # inside the third sequence only, not across the first two
    assert index.count([3, 4, 5]) == 0 and index.count([4, 5, 6]) == 0
    assert index.next_tokens([4]).tolist() == [5] and index.locate([4, 5]).tolist() == [2]
    assert index.next_tokens([6]).tolist() == []


def test_anchored_finds_only_prefixes():
    index = NgramIndex([[3, 4, 5], [4, 5], [3, 4], []], [0, 1, 1, 2], EOS, anchored=True)
    assert len(index) == 3 and index.n_tokens == 7
    assert index.count([3, 4]) == 2 and index.locate([3, 4]).tolist() == [0, 1]
    assert index.count([4, 5]) == 1 and index.locate([4, 5]).tolist() == [1]
    assert index.count([5]) == 0 and index.count([4, 5, 6]) == 0
    assert index.next_tokens([]).tolist() == [3, 4]
    assert index.locate([]).tolist() == [0, 1]  # owner 2 has only an empty sequence


def test_range_edge_cases():
    index = NgramIndex([[3, 4, 5]], [0], EOS, max_length=2)
    assert index.range([]) == (0, 3)
    for absent in ([9], [3, 9], [2**40]):  # the last one does not even fit the int32 table
        lo, hi = index.range(absent)
        assert lo == hi
    with pytest.raises(ValueError, match="max_length"):
        index.range([3, 4, 5])
    assert index.next_tokens([3, 4]).tolist() == []  # already max_length tokens
    empty = NgramIndex([], [], EOS)
    assert len(empty) == 0 and empty.count([]) == 0 and empty.count([3]) == 0


def test_allowed_after():
    index = NgramIndex([[5, 6, 7], [6, 7, 8], [5, 9]], [0, 0, 1], EOS, max_length=3)
    root = index.allowed_after([])
    assert root.dtype == torch.int64 and root.tolist() == [5, 6, 7, 8, 9]  # no EOS before any token
    assert index.allowed_after([5]).tolist() == [6, 9, EOS]
    assert index.allowed_after([6, 7]).tolist() == [8, EOS]  # continues, or ends like sequence 0
    assert index.allowed_after([9]).tolist() == [EOS]
    assert index.allowed_after([5, 6, 7]).tolist() == [EOS]  # max_length reached
    assert index.allowed_after([6, 7, 8]).tolist() == [EOS]
    assert index.allowed_after([7, 6]) is None and index.allowed_after([4]) is None
    assert index.allowed_after([7, 5]) is None  # would cross from sequence 0 into sequence 1
    assert index.allowed_after([5, 6, 7, 8]) is None  # longer than max_length
    assert index.allowed_after((5,)) is index.allowed_after([5])  # cached
    assert NgramIndex([], [], EOS).allowed_after([]) is None


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="end-of-sequence"):
        NgramIndex([[3, 4], [5, EOS, 6]], [0, 1], EOS)
    with pytest.raises(ValueError, match="owners"):
        NgramIndex([[3, 4]], [0, 1], EOS)
    with pytest.raises(ValueError, match="non-negative"):
        NgramIndex([[3, -1]], [0], EOS)


def test_unconditional_log_prob():
    # (5 + 5) / (995 + 5) = 0.01
    assert unconditional_log_prob(5, 995) == pytest.approx(math.log(0.01))
    # (0 + 5) / 1000 and (15 + 5) / 1000
    np.testing.assert_allclose(unconditional_log_prob(np.array([0, 15]), 995), np.log([0.005, 0.02]))


def test_key_weight():
    # P(n) = (5 + 5) / (995 + 5) = 0.01.
    # P(n|q) = 0.5: log(0.5 * 0.99 / (0.01 * 0.5)) = log(99) = 4.59512 -> 21.1151
    assert key_weight(math.log(0.5), 5, 995) == pytest.approx(4.595119850134589 ** 2)
    # P(n|q) = 0.1: log(0.1 * 0.99 / (0.01 * 0.9)) = log(11) = 2.397895 -> 5.749902
    assert key_weight(math.log(0.1), 5, 995) == pytest.approx(5.749902, rel=1e-6)
    # P(n|q) = 0.005 < P(n) = 0.01: the odds ratio is below 1, its log negative -> 0
    assert key_weight(math.log(0.005), 5, 995) == 0.0
    # P(n|q) = 1 is clipped to 1 - 1e-6: log((1 - 1e-6) * 0.99 / (0.01 * 1e-6)) = log(98999901) = 18.410629
    assert key_weight(0.0, 5, 995) == pytest.approx(18.410629 ** 2, rel=1e-6)
    assert key_weight(math.log(0.5), 0, 995) == 0.0  # absent from the corpus, as in SEAL
    assert key_weight(math.log(0.5), 995, 995) == 0.0  # P(n) = 1: carries no information


def test_document_score():
    keys = [
        ((3, 4, 4), 2.0),  # types {3, 4}, new {4}: 2.0 * (0.2 + 0.8 * 1/2) = 1.2
        ((1, 2, 3), 4.0),  # first, all new: 4.0
        ((2, 3), 3.0),     # inside (1, 2, 3): skipped
        ((5,), 1.0),       # new: 1.0
        ((1, 3), 0.5),     # not contiguous in (1, 2, 3); types all seen: 0.5 * 0.2 = 0.1
    ]
    assert document_score(keys) == pytest.approx(4.0 + 1.2 + 1.0 + 0.1)
    assert document_score(keys[::-1]) == pytest.approx(6.3)
    assert document_score([]) == 0.0


def test_document_score_repeated_tokens_and_ties():
    # (7, 7, 8): 2 types, both new -> full 2.0; (8, 8, 9): types {8, 9}, new {9} -> 1.0 * 0.6
    assert document_score([((7, 7, 8), 2.0), ((8, 8, 9), 1.0)]) == pytest.approx(2.6)
    # equal weights: (1, 2, 3) sorts before (2, 3), which is then skipped -> 1.0 whatever the input order
    # (the other order would give 1.0 + 1.0 * (0.2 + 0.8 * 1/3) = 1.4667)
    assert document_score([((2, 3), 1.0), ((1, 2, 3), 1.0)]) == pytest.approx(1.0)
    assert document_score([((1, 2, 3), 1.0), ((2, 3), 1.0)]) == pytest.approx(1.0)
    assert document_score([((4, 5), 1.5), ((4, 5), 1.5)]) == pytest.approx(1.5)  # a duplicate is inside itself
