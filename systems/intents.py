"""Intent detection for PEARL: which sticker properties a query is about, most intended first.

The paper (Section 3.4, Appendix B) asks an LLM, with a chain-of-thought prompt, to rank the
five properties for each query, precomputes the rankings of frequent queries in a table, and
weights property identifiers by Eq. 15. This module provides:

* :func:`build_prompt` and :func:`parse_intents`: Appendix B's prompt and the parser of its
  answer ("... Therefore, the answer is: IP > style > entity > meaning > OCR.");
* :class:`OfflineIntentDetector`: the default, network-free detector, a ridge regression from a
  frozen encoder's embedding and lexical evidence to the annotated rankings of the training set;
* :class:`LLMIntentDetector`: rankings from an OpenAI-compatible chat endpoint, cached in an
  :class:`IntentTable`, falling back to the offline detector on any failure;
* :func:`intent_weights`: Eq. 15's decay weights of a ranking.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openai
from threadpoolctl import threadpool_limits

from benchmark.io import read_json, write_json
from benchmark.records import PROPERTIES, TrainingData

INTENT_NAMES: dict[str, str] = {
    "ocr": "OCR", "ip": "IP", "entity": "entity", "style": "style", "meaning": "meaning",
}
"""Property -> the intent name Appendix B's prompt uses for it."""

_INTRO = (
    "I am a user who is using the sticker search feature, and I have entered a query. Please "
    "help me analyze the intent behind my query.\n\n"
    "There are five possible intents: OCR, IP, entity, style, and meaning. Here are the "
    "descriptions and examples for each intent."
)
_DESCRIPTIONS = {
    "ocr": "OCR textual content refers to the text extracted from the sticker using Optical "
           "Character Recognition (OCR) technology.",
    "ip": "Character IP refers to Intellectual Property (IP) related to the characters depicted "
          "on the sticker, which could be a well-known character from a movie, TV show, comic "
          "book, video game, or any other form of media.",
    "entity": "Entity refers to the specific object, symbol, or concept that is primarily "
              "depicted in the sticker.",
    "style": "Visual style refers to the specific artistic style that the sticker's design "
             "follows.",
    "meaning": "Meaning refers to the intended message, sentiment, or symbolism that the sticker "
               "is designed to convey, which is typically provided by the source of the sticker.",
}
_QUESTION = "Q: Based on the given explanation, arrange the order of intent for the query: "
_WORKED_EXAMPLE = (
    _QUESTION + "Doraemon cute.\n\n"
    "A: Let's think step by step. \"Doraemon cute\" is most likely to be an IP intent in OCR, "
    "IP, entity, style, meaning, because Doraemon is a well-known anime character. Excluding "
    "the IP intent, among the remaining OCR, entity, style, meaning, \"Doraemon cute\" is most "
    "likely to be a style intent, because the query includes the style description \"cute\". "
    "Excluding IP and style intents, among the remaining OCR, entity, meaning, \"Doraemon "
    "cute\" is most likely to be an entity intent, because Doraemon is a specific character. "
    "Excluding IP, style, and entity intents, among the remaining OCR and meaning, \"Doraemon "
    "cute\" is most likely to be a meaning intent, because \"Doraemon cute\" can be understood "
    "as a certain meaning. \"Doraemon cute\" is least likely to be an OCR intent, because it is "
    "not an image or video with text content. Therefore, the answer is: IP > style > entity > "
    "meaning > OCR."
)
_PROMPT_EXAMPLES = 3

_ANSWER_MARK = re.compile(r"the answer is", re.IGNORECASE)
_SENTENCE_END = re.compile(r"\.\s")
_NOISE = " \t\"'`“”‘’.,;:!?*()[]{}<>-"
_ALIASES = {
    "ocr": "ocr", "ocr textual content": "ocr", "ip": "ip", "character ip": "ip",
    "entity": "entity", "style": "style", "visual style": "style", "meaning": "meaning",
}
_WORD = re.compile(r"\w+")


def build_prompt(query: str, examples: Mapping[str, Sequence[str]]) -> str:
    """Appendix B's chain-of-thought prompt for one query.

    Args:
        query: the query whose intents are asked for; it ends the prompt.
        examples: property -> example queries of that intent; the first 3 fill the
            ``{examples for the X intent}`` slot, quoted and comma-separated ("none" if empty).

    Returns:
        The prompt, paragraphs separated by blank lines, ending with "A: Let's think step by step."
    """
    paragraphs = [_INTRO]
    for p in PROPERTIES:
        quoted = ", ".join(f'"{q}"' for q in list(examples.get(p, ()))[:_PROMPT_EXAMPLES])
        paragraphs += [_DESCRIPTIONS[p], f"Examples: {quoted or 'none'}"]
    paragraphs += [_WORKED_EXAMPLE, _QUESTION + query, "A: Let's think step by step."]
    return "\n\n".join(paragraphs)


def example_queries(data: TrainingData, per_intent: int = 3) -> dict[str, list[str]]:
    """Training queries to show as examples of each intent in the prompt.

    Args:
        data: the training data; only queries with an intent annotation are used.
        per_intent: the most example texts kept per property.

    Returns:
        Property -> up to ``per_intent`` distinct texts of queries whose annotated top intent is
        that property, first in qid order; every property is a key (empty list if none).
    """
    out: dict[str, list[str]] = {p: [] for p in PROPERTIES}
    for q in sorted(data.queries, key=lambda q: q.qid):
        if q.intents and q.intents[0] in out:
            chosen = out[q.intents[0]]
            if len(chosen) < per_intent and q.text not in chosen:
                chosen.append(q.text)
    return out


def parse_intents(answer: str) -> tuple[str, ...] | None:
    """The intent ranking stated in an LLM answer to :func:`build_prompt`.

    The ranking is read after the last "the answer is" (any case), up to the end of its line or
    sentence, as names separated by ``>``. A name may be an intent name or a property
    description's name ("Character IP", "visual style", "OCR textual content"), in any case,
    with surrounding quotes, punctuation and a trailing " intent" ignored.

    Args:
        answer: the LLM's full answer.

    Returns:
        The named properties in order, repeats dropped (a partial ranking stays partial), or
        None if there is no "the answer is", no name, or a part that names no intent.
    """
    marks = list(_ANSWER_MARK.finditer(answer))
    if not marks:
        return None
    tail = answer[marks[-1].end():].lstrip(_NOISE + "\r\n")
    statement = _SENTENCE_END.split(tail.split("\n", 1)[0], maxsplit=1)[0]
    ranking: list[str] = []
    for part in statement.split(">"):
        name = " ".join(part.strip(_NOISE).lower().split()).removesuffix(" intent")
        if not name:
            continue
        if name not in _ALIASES:
            return None
        if _ALIASES[name] not in ranking:
            ranking.append(_ALIASES[name])
    return tuple(ranking) or None


def complete(ranking: Sequence[str], fallback: Sequence[str]) -> tuple[str, ...]:
    """Complete a (partial) ranking with another one.

    Args:
        ranking: the preferred order, possibly missing properties.
        fallback: a full ranking of the properties that exist in the dataset.

    Returns:
        ``ranking``'s properties that are in ``fallback``, then the rest of ``fallback`` in its
        order.
    """
    head = [p for p in dict.fromkeys(ranking) if p in fallback]
    return tuple(head + [p for p in fallback if p not in head])


def intent_weights(ranking: Sequence[str]) -> dict[str, float]:
    """Eq. 15's decay weights: ``d_p = 1 / log2(rank(p) + 1)`` with 1-based ranks."""
    return {p: 1.0 / math.log2(rank + 1) for rank, p in enumerate(ranking, start=1)}


def _words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return _WORD.findall(text.lower())


def _lexicon(data: TrainingData) -> dict[str, list[float]]:
    """Word -> P(p | word) for p in PROPERTIES.

    The evidence of a word for a property is the share of the property's distinct values (over
    the sticker corpus) that contain the word; it is normalized over the properties.
    """
    shares: dict[str, np.ndarray] = {}
    for i, p in enumerate(PROPERTIES):
        values = {getattr(s, p) for s in data.stickers} - {""}
        for value in values:
            for word in set(_words(value)):
                shares.setdefault(word, np.zeros(len(PROPERTIES)))[i] += 1.0 / len(values)
    return {w: (s / s.sum()).tolist() for w, s in sorted(shares.items())}


# numpy's multi-threaded OpenBLAS crashed (segfault) in this module's linear algebra when torch
# and faiss had run in the same process (the test suite after the dense retrievers; a bench run
# of PEARL): it runs on one BLAS thread, plenty for these small matrices.


def _ridge(x: np.ndarray, y: np.ndarray, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form ridge regression with an unpenalized intercept: (weights, bias)."""
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc = x - x_mean
    with threadpool_limits(limits=1, user_api="blas"):
        weights = np.linalg.solve(xc.T @ xc + strength * np.eye(x.shape[1]), xc.T @ (y - y_mean))
    return weights, y_mean - x_mean @ weights


def _targets(rankings: Sequence[Sequence[str]]) -> np.ndarray:
    """Eq. 15 weights of each ranking as a row over PROPERTIES (0 for unranked properties)."""
    rows = [intent_weights(r) for r in rankings]
    return np.array([[row.get(p, 0.0) for p in PROPERTIES] for row in rows])


def _kendall_tau(predicted: Sequence[str], reference: Sequence[str]) -> float:
    """Kendall tau of ``predicted`` against ``reference`` over the reference's properties."""
    position = {p: i for i, p in enumerate(predicted)}
    pairs = list(itertools.combinations(reference, 2))
    return sum(1 if position[a] < position[b] else -1 for a, b in pairs) / len(pairs)


def _split(texts: Sequence[str], share: float = 0.1, seed: int = 0) -> tuple[set[str], set[str]]:
    """A seeded (train, held-out) split of distinct texts; held-out is empty below 10 texts."""
    order = np.random.default_rng(seed).permutation(len(texts))
    held = {texts[i] for i in order[:int(len(texts) * share)]}
    return set(texts) - held, held


class OfflineIntentDetector:
    """PEARL's default intent detector: no network, learned from the training data only.

    Each query is described by the frozen encoder's embedding and 5 lexical-evidence numbers,
    the mean over its words of P(p | word) (see :func:`_lexicon`; 0 for unseen words). A ridge
    regression maps these features to Eq. 15's weights of the annotated ranking, and a query's
    ranking is its properties sorted by predicted weight (ties in PROPERTIES order). Without
    annotated training queries, the lexical evidence alone is the score.

    Attributes:
        properties: the properties that are ranked (those existing in the dataset).
    """

    def __init__(self, encode: Callable[[Sequence[str]], np.ndarray], ridge: float = 1.0):
        """Args:
            encode: texts -> one embedding row per text (a frozen encoder).
            ridge: the L2 penalty of the regression.
        """
        self.encode = encode
        self.ridge = ridge
        self.properties: tuple[str, ...] = PROPERTIES
        self._lexicon: dict[str, list[float]] = {}
        self._weights: np.ndarray | None = None
        self._bias: np.ndarray | None = None

    def fit(self, data: TrainingData, properties: Sequence[str]) -> dict:
        """Learn from the corpus and the annotated training queries.

        Before the final fit on all annotated queries, a fit on 90% of their distinct texts is
        scored on the other 10% (seed 0; all user-query pairs of a text on the same side).

        Args:
            data: the training data.
            properties: the properties to rank.

        Returns:
            Notes for the run metadata: the number of annotated queries used, the model, and
            the held-out top-1 accuracy and mean Kendall tau against the annotations (None when
            there are fewer than 10 distinct annotated texts).
        """
        self.properties = tuple(properties)
        self._lexicon = _lexicon(data)
        annotated = [q for q in data.queries if q.intents]
        notes: dict = {"intent_annotated_queries": len(annotated), "intent_heldout_queries": 0,
                       "intent_heldout_top1": None, "intent_heldout_kendall_tau": None}
        if not annotated:
            notes["intent_model"] = "lexical evidence (no annotated queries)"
            return notes
        texts = sorted({q.text for q in annotated})
        features = dict(zip(texts, self._features(texts)))
        train, held = _split(texts)
        if held:
            self._fit_rows([q for q in annotated if q.text in train], features)
            notes.update(self._score([q for q in annotated if q.text in held]))
        self._fit_rows(annotated, features)
        notes["intent_model"] = "ridge on encoder embedding + lexical evidence"
        return notes

    def rank(self, texts: Sequence[str]) -> list[tuple[str, ...]]:
        """The intent ranking of each text over :attr:`properties`, most intended first."""
        if not texts:
            return []
        if self._weights is None:
            scores = self._evidence(texts)
        else:
            with threadpool_limits(limits=1, user_api="blas"):
                scores = self._features(texts) @ self._weights + self._bias
        return [self._order(row) for row in scores]

    def state(self) -> dict:
        """Everything :meth:`from_state` needs, JSON-serializable."""
        return {
            "properties": list(self.properties),
            "ridge": self.ridge,
            "lexicon": self._lexicon,
            "weights": None if self._weights is None else self._weights.tolist(),
            "bias": None if self._bias is None else self._bias.tolist(),
        }

    @classmethod
    def from_state(cls, state: dict,
                   encode: Callable[[Sequence[str]], np.ndarray]) -> OfflineIntentDetector:
        """A fitted detector from :meth:`state`'s output and the same encoder."""
        detector = cls(encode, state["ridge"])
        detector.properties = tuple(state["properties"])
        detector._lexicon = state["lexicon"]
        if state["weights"] is not None:
            detector._weights = np.array(state["weights"])
            detector._bias = np.array(state["bias"])
        return detector

    def _evidence(self, texts: Sequence[str]) -> np.ndarray:
        """Lexical evidence per text: mean P(p | word) over its words, one column per property."""
        rows = np.zeros((len(texts), len(PROPERTIES)))
        for i, text in enumerate(texts):
            words = _words(text)
            if words:
                rows[i] = np.mean([self._lexicon.get(w, [0.0] * len(PROPERTIES)) for w in words], axis=0)
        return rows

    def _features(self, texts: Sequence[str]) -> np.ndarray:
        """Embedding and lexical evidence of each text, side by side."""
        return np.hstack([np.asarray(self.encode(list(texts)), dtype=np.float64), self._evidence(texts)])

    def _fit_rows(self, queries: Sequence, features: Mapping[str, np.ndarray]) -> None:
        """Fit the regression on these annotated queries (features looked up by text)."""
        x = np.stack([features[q.text] for q in queries])
        self._weights, self._bias = _ridge(x, _targets([q.intents for q in queries]), self.ridge)

    def _score(self, queries: Sequence) -> dict:
        """Top-1 accuracy and mean Kendall tau of the current model against annotations."""
        predicted = self.rank([q.text for q in queries])
        references = [[p for p in q.intents if p in self.properties] for q in queries]
        pairs = [(pred, ref) for pred, ref in zip(predicted, references) if ref]
        hits = [pred[0] == ref[0] for pred, ref in pairs]
        taus = [_kendall_tau(pred, ref) for pred, ref in pairs if len(ref) > 1]
        return {
            "intent_heldout_queries": len(pairs),
            "intent_heldout_top1": float(np.mean(hits)) if hits else None,
            "intent_heldout_kendall_tau": float(np.mean(taus)) if taus else None,
        }

    def _order(self, scores: np.ndarray) -> tuple[str, ...]:
        """Properties by descending score (a row over PROPERTIES), ties in PROPERTIES order."""
        column = {p: i for i, p in enumerate(PROPERTIES)}
        return tuple(sorted(self.properties, key=lambda p: (-scores[column[p]], column[p])))


@dataclass(frozen=True)
class LLMSettings:
    """Where and how to ask an OpenAI-compatible chat endpoint for intents.

    The API key is never a setting: it is read from the environment only
    (``STICKERBENCH_LLM_API_KEY``, else ``OPENAI_API_KEY``), so it stays out of configs and run
    metadata.

    Attributes:
        model: the chat model (the paper uses deepseek-chat).
        base_url: the endpoint; empty means ``STICKERBENCH_LLM_BASE_URL`` from the environment,
            else https://api.deepseek.com.
        timeout: seconds to wait for one answer.
        max_failures: after this many consecutive failed requests, the endpoint is not called
            again by the detector.
    """

    model: str = "deepseek-chat"
    base_url: str = ""
    timeout: float = 20.0
    max_failures: int = 3

    def endpoint(self) -> str:
        """The base URL to call."""
        return self.base_url or os.environ.get("STICKERBENCH_LLM_BASE_URL") or "https://api.deepseek.com"


def _api_key() -> str | None:
    """The API key from the environment, if any."""
    return os.environ.get("STICKERBENCH_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or None


class IntentTable:
    """The precomputed intent table (the paper's table of frequent queries, Appendix G).

    Query text -> the ranking an LLM answered (possibly partial), kept in a JSON file that is
    loaded if present and written atomically by :meth:`save`.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        saved = read_json(self.path) if self.path.exists() else {}
        self._rankings = {text: tuple(ranking) for text, ranking in saved.items()}

    def get(self, text: str) -> tuple[str, ...] | None:
        """The stored ranking of a query text, or None."""
        return self._rankings.get(text)

    def put(self, text: str, ranking: Sequence[str]) -> None:
        """Store the ranking of a query text."""
        self._rankings[text] = tuple(ranking)

    def save(self) -> None:
        """Write the table to its file."""
        write_json(self.path, {text: list(r) for text, r in self._rankings.items()})


def _one_line(text: str) -> str:
    """Text with every run of whitespace (newlines included) made one space."""
    return " ".join(text.split())


def _failure_kind(err: Exception) -> str:
    """A short name of why a request failed: one warning is given per name."""
    if isinstance(err, openai.APITimeoutError):
        return "timeout"
    if isinstance(err, openai.APIConnectionError):
        return "connection error"
    if isinstance(err, openai.APIStatusError):
        return f"HTTP {err.status_code}"
    return type(err).__name__


class LLMIntentDetector:
    """Intent rankings from an LLM with Appendix B's prompt, as the paper computes them.

    Answers are cached in an :class:`IntentTable`. Whatever goes wrong (no API key, endpoint
    down, timeout, HTTP error, unparseable answer) never raises: the query gets the offline
    detector's ranking, and each kind of failure is warned about once. A partial answer is
    completed with the offline ranking.

    Attributes:
        stats: counts over distinct query texts, for the run metadata: ``table_hits``,
            ``llm_answers`` (new answers from the endpoint), ``fallback_error`` (no answer) and
            ``fallback_garbage`` (an answer without a ranking).
    """

    def __init__(self, settings: LLMSettings, examples: Mapping[str, Sequence[str]], table: IntentTable,
                 fallback: OfflineIntentDetector, properties: Sequence[str]):
        """Args:
            settings: the endpoint and its limits.
            examples: the prompt's example queries per property (see :func:`example_queries`).
            table: the cache of answers; it is saved at the end of each :meth:`rank`.
            fallback: the fitted offline detector.
            properties: the properties to rank (those existing in the dataset).
        """
        self.settings = settings
        self.examples = examples
        self.table = table
        self.fallback = fallback
        self.properties = tuple(properties)
        self.endpoint = settings.endpoint()
        self.stats = {"table_hits": 0, "llm_answers": 0, "fallback_error": 0, "fallback_garbage": 0}
        self._warned: set[str] = set()
        self._failures = 0
        key = _api_key()
        self._client = None if key is None else openai.OpenAI(
            base_url=self.endpoint, api_key=key, timeout=settings.timeout, max_retries=0)

    def rank(self, texts: Sequence[str]) -> list[tuple[str, ...]]:
        """The intent ranking of each text over :attr:`properties` (each distinct text asked once)."""
        distinct = list(dict.fromkeys(texts))
        try:
            answers = {text: self._lookup(text) for text in distinct}
        finally:
            self.table.save()
        unsure = [t for t in distinct if not set(self.properties) <= set(answers[t] or ())]
        offline = dict(zip(unsure, self.fallback.rank(unsure)))
        return [complete(answers[t] or (), offline.get(t, self.properties)) for t in texts]

    def _lookup(self, text: str) -> tuple[str, ...] | None:
        """The table's or the LLM's (possibly partial) ranking of a text; None on failure."""
        cached = self.table.get(text)
        if cached is not None:
            self.stats["table_hits"] += 1
            return cached
        answer = self._ask(text)
        if answer is None:
            self.stats["fallback_error"] += 1
            return None
        ranking = parse_intents(answer)
        if ranking is None:
            self.stats["fallback_garbage"] += 1
            self._warn("unparseable answer", "ends " + repr(_one_line(answer)[-80:]))
            return None
        self.stats["llm_answers"] += 1
        self.table.put(text, ranking)
        return ranking

    def _ask(self, text: str) -> str | None:
        """The endpoint's answer to the prompt for a text, or None if it cannot be had."""
        if self._client is None:
            self._warn("no API key", "set STICKERBENCH_LLM_API_KEY or OPENAI_API_KEY")
            return None
        if self._failures >= self.settings.max_failures:
            return None
        try:
            response = self._client.chat.completions.create(
                model=self.settings.model, temperature=0,
                messages=[{"role": "user", "content": build_prompt(text, self.examples)}])
            answer = response.choices[0].message.content or ""
        except Exception as err:  # any failure of the endpoint falls back, by design
            self._failures += 1
            self._warn(_failure_kind(err), _one_line(str(err))[:200])
            if self._failures == self.settings.max_failures:
                self._warn("stopped", f"{self._failures} consecutive failures; not called again")
            return None
        self._failures = 0
        return answer

    def _warn(self, kind: str, detail: str) -> None:
        """Warn once per kind of failure, in one line naming the endpoint."""
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(f"LLM intent detection at {self.endpoint}: {kind} ({detail}); "
                          "using the offline detector's ranking", stacklevel=3)
