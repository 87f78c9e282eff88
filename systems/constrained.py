"""The constrained decoder shared by every generative system (DSI, DSI-QG, GENRE, MINDER, PEARL).

:class:`PrefixTrie` stores identifiers (token-id sequences) in flat arrays, CSR style: node ``n``
has children ``child_token[child_start[n]:child_start[n+1]]`` leading to nodes
``child_node[...]``, and a ``terminal`` flag when an identifier ends there. Several stickers may
share one identifier: :meth:`PrefixTrie.items` lists them all.

:class:`ConstrainedLogitsProcessor` plugs the trie (or any :class:`Constraint`, such as MINDER's
n-gram index) into Hugging Face ``generate``: at each step it finds every beam's allowed tokens
(memoized by prefix in the index, so one dictionary lookup per beam) and masks all beams at
once with a single index fill, instead of a Python callback per beam. The edge cases:

* a node where an identifier ends allows the end-of-sequence token (and its children, if the
  identifier is also a prefix of a longer one);
* after end-of-sequence only padding follows;
* a prefix outside the trie (beams whose score is already -inf reach the processor) allows only
  end-of-sequence; :func:`decoded_items` drops such hypotheses afterwards.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np
import torch
from transformers import LogitsProcessor


class PrefixTrie:
    """A prefix tree over token-id sequences, in flat numpy arrays.

    Args:
        sequences: one identifier (token ids, without end-of-sequence) per item.
        eos_token_id: the token that ends an identifier.
    """

    def __init__(self, sequences: Sequence[Sequence[int]], eos_token_id: int):
        self.eos_token_id = eos_token_id
        children: list[dict[int, int]] = [{}]
        items: list[list[int]] = [[]]
        for item, seq in enumerate(sequences):
            if len(seq) == 0:
                raise ValueError(f"item {item} has an empty identifier")
            node = 0
            for token in seq:
                token = int(token)
                if token == eos_token_id:
                    raise ValueError(f"item {item}: the end-of-sequence token is not allowed inside an identifier")
                if token not in children[node]:
                    children[node][token] = len(children)
                    children.append({})
                    items.append([])
                node = children[node][token]
            items[node].append(item)
        self.child_start = np.zeros(len(children) + 1, dtype=np.int64)
        self.child_start[1:] = np.cumsum([len(c) for c in children])
        ordered = [sorted(c.items()) for c in children]
        self.child_token = np.array([t for c in ordered for t, _ in c], dtype=np.int64)
        self.child_node = np.array([n for c in ordered for _, n in c], dtype=np.int64)
        self.terminal = np.array([bool(i) for i in items])
        self._items = items
        self._allowed: dict[int, torch.Tensor] = {}
        self._after: dict[tuple[int, ...], torch.Tensor | None] = {}

    def __len__(self) -> int:
        """Number of nodes (the root included)."""
        return len(self.terminal)

    def step(self, node: int, token: int) -> int:
        """The child of ``node`` along ``token``, or -1."""
        lo, hi = self.child_start[node], self.child_start[node + 1]
        i = lo + np.searchsorted(self.child_token[lo:hi], token)
        return int(self.child_node[i]) if i < hi and self.child_token[i] == token else -1

    def walk(self, tokens: Sequence[int]) -> int:
        """The node reached by ``tokens`` from the root, or -1 if they leave the trie."""
        node = 0
        for token in tokens:
            node = self.step(node, int(token))
            if node < 0:
                return -1
        return node

    def allowed(self, node: int) -> torch.Tensor:
        """Token ids allowed after ``node`` (cached): its children, plus EOS where an identifier ends."""
        if node not in self._allowed:
            tokens = self.child_token[self.child_start[node]: self.child_start[node + 1]]
            if self.terminal[node]:
                tokens = np.append(tokens, self.eos_token_id)
            self._allowed[node] = torch.from_numpy(np.asarray(tokens, dtype=np.int64))
        return self._allowed[node]

    def items(self, tokens: Sequence[int]) -> list[int]:
        """The items whose identifier is exactly ``tokens`` (empty if none)."""
        node = self.walk(tokens)
        return list(self._items[node]) if node >= 0 else []

    def allowed_after(self, prefix: Sequence[int]) -> torch.Tensor | None:
        """Token ids allowed after ``prefix`` (None if it leaves the trie); memoized by prefix,
        for the lifetime of the trie, so repeated queries reuse earlier walks."""
        key = tuple(prefix)
        if key not in self._after:
            node = self.walk(key)
            self._after[key] = self.allowed(node) if node >= 0 else None
        return self._after[key]


class Constraint(Protocol):
    """What the logits processor asks of an identifier index (:class:`PrefixTrie`, or the
    n-gram index of :mod:`systems.ngrams`)."""

    eos_token_id: int

    def allowed_after(self, prefix: Sequence[int]) -> torch.Tensor | None:
        """Token ids that may follow ``prefix``, or None if ``prefix`` is not in the index."""


class ConstrainedLogitsProcessor(LogitsProcessor):
    """Restricts generation to the identifiers of a :class:`Constraint`.

    The constraint memoizes allowed tokens by prefix (across calls), so a step costs one
    dictionary lookup per beam and one masked fill for the whole batch. With ``record=True`` it also keeps every partial
    hypothesis it sees, per input row (SEAL/MINDER use all of them as keys).

    Args:
        constraint: the identifiers.
        prompt_length: decoder tokens before the identifier starts (the decoder start token,
            plus e.g. a view or property prefix token).
        pad_token_id: the only token allowed after end-of-sequence.
        num_beams: beams per input row (to attribute recorded prefixes to rows).
        record: keep the partial hypotheses in :attr:`prefixes`.
    """

    def __init__(self, constraint: Constraint, prompt_length: int, pad_token_id: int, num_beams: int = 1,
                 record: bool = False):
        self.constraint, self.prompt_length, self.pad_token_id = constraint, prompt_length, pad_token_id
        self.num_beams, self.record = num_beams, record
        self.eos_token_id = constraint.eos_token_id
        self.prefixes: list[set[tuple[int, ...]]] = []
        self._eos_only = torch.tensor([self.eos_token_id])
        self._pad_only = torch.tensor([pad_token_id])

    def allowed_for(self, prefix: Sequence[int]) -> torch.Tensor:
        """Allowed next tokens after an identifier prefix (EOS only outside the index)."""
        prefix = tuple(prefix)
        if self.eos_token_id in prefix:
            return self._pad_only
        found = self.constraint.allowed_after(prefix)
        return self._eos_only if found is None or len(found) == 0 else found

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        prefixes = input_ids[:, self.prompt_length:].tolist()
        if self.record:
            self._record(prefixes)
        allowed = [self.allowed_for(p) for p in prefixes]
        rows = torch.from_numpy(np.repeat(np.arange(len(allowed)), [len(a) for a in allowed]))
        mask = torch.full_like(scores, float("-inf"))
        mask[rows, torch.cat(allowed)] = 0.0
        return scores + mask

    def _record(self, prefixes: list[list[int]]) -> None:
        rows = len(prefixes) // self.num_beams
        while len(self.prefixes) < rows:
            self.prefixes.append(set())
        for i, prefix in enumerate(prefixes):
            if prefix and self.eos_token_id not in prefix:
                self.prefixes[i // self.num_beams].add(tuple(prefix))


def decoded_items(trie: PrefixTrie, sequences: torch.Tensor, scores: torch.Tensor, prompt_length: int,
                  pad_token_id: int) -> list[tuple[list[int], float]]:
    """Map generated sequences back to items, best first.

    Hypotheses with a -inf score or that do not end on a complete identifier are dropped.

    Returns:
        ``(items, score)`` per surviving hypothesis, in the order given.
    """
    eos = trie.eos_token_id
    out = []
    for seq, score in zip(sequences.tolist(), scores.tolist()):
        if not np.isfinite(score):
            continue
        tokens = [t for t in seq[prompt_length:] if t != pad_token_id]
        if eos in tokens:
            tokens = tokens[: tokens.index(eos)]
        items = trie.items(tokens)
        if items:
            out.append((items, float(score)))
    return out
