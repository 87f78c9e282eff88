"""wechat-sim: a seeded simulator of the PEARL paper's WeChat offline dataset (Appendix A).

The generative story, in the order the code follows it:

1. **Vocabularies** (:mod:`benchmark.simvocab`): character IPs (famous names, then a
   procedurally named long tail), entities (120 base nouns, then modifier + noun), visual styles
   (treatment x medium), meanings with paraphrases, and OCR phrases built from meanings, IPs
   and fillers. IP and entity popularity is Zipfian.
2. **Audiences**: every IP, entity and style has an audience profile over the 8 user groups
   (4 age bands x 2 genders): a youth score, a gender lean and an idiosyncratic part. Older
   groups also like text-heavy stickers and blessings; younger ones lively, trendy IPs.
3. **Users** belong to a group (a few have unknown age or gender) and add a personal taste
   (favourite IPs and styles drawn from their group's taste). ``utility(user, sticker) =
   personalization * (group taste + personal taste) + sticker quality + noise``.
4. **Queries** draw a query type, which fixes the prior of the intent ranking over the five
   properties; the text is composed from an anchor sticker's values of the top intents, with
   paraphrases, partial names and noise words ("doraemon sleeping", "thx boss", "cute cat").
5. **Relevance** is personal: stickers that satisfy the top intent are scored by how well they
   match the other mentioned intents plus the user's utility; the best N are relevant.
6. **Click log**: sessions of a popularity-biased production ranker under a position-based
   click model; a user's history is what they clicked.
7. **Training intents**: the true ranking perturbed with ``annotation_noise`` (a simulated LLM).

Same config and seed give byte-identical files. Simulator-only truth (query types, true
intents, target values) goes to ``sim/queries.jsonl``, which the loader never hands to systems.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import trange

from benchmark import simvocab as V
from benchmark.dataset import TestQuery, write_dataset
from benchmark.records import AGE_GROUPS, GENDERS, PROPERTIES, Click, Sticker, TrainQuery, User

GENERATOR_VERSION = "1"
GROUPS: tuple[tuple[str, str], ...] = tuple(itertools.product(AGE_GROUPS, GENDERS))
AGE_SLOPE = np.array([1.0, 0.45, -0.35, -1.0])  # youth preference per age band
GENDER_SIGN = np.array([1.0, -1.0])

# Query types: (name, prior weight, properties mentioned in the text, in word order).
# The mentioned properties lead the intent ranking; the rest follow in random order.
QUERY_TYPES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("meaning", 0.28, ("meaning",)),
    ("ocr", 0.12, ("ocr",)),
    ("ip", 0.08, ("ip",)),
    ("ip+meaning", 0.16, ("ip", "meaning")),
    ("entity", 0.07, ("entity",)),
    ("style+entity", 0.11, ("style", "entity")),
    ("style", 0.04, ("style",)),
    ("entity+meaning", 0.09, ("entity", "meaning")),
    ("meaning+filler", 0.05, ("meaning",)),
)


@dataclass(frozen=True)
class SimConfig:
    """Every knob of wechat-sim; all of them are written into the dataset card."""

    profile: str = "default"
    seed: int = 0
    n_stickers: int = 20_000
    n_ips: int = 1_600
    n_entities: int = 3_000
    n_styles: int = 107
    n_meanings: int = 150
    n_users: int = 1_200
    train_unique_queries: int = 1_891
    train_pairs: int = 2_308
    train_relevant_mean: float = 5.4
    test_unique_queries: int = 258
    test_pairs: int = 347
    test_relevant_mean: float = 42.0
    click_sessions: int = 10_000
    personalization: float = 1.0
    """Scale of group and personal taste in the utility; 0 makes all users alike."""
    intent_noise: float = 0.15
    """Probability that a query's two leading intents swap against its type's prior."""
    paraphrase_rate: float = 0.5
    """Probability that a query word is a paraphrase, synonym or partial name."""
    annotation_noise: float = 0.2
    """Probability that a training query's simulated LLM intent annotation is perturbed."""
    no_text_rate: float = 0.15
    no_ip_rate: float = 0.3
    unknown_demographics_rate: float = 0.05

    @property
    def name(self) -> str:
        return f"wechat-sim-{self.profile}"


PROFILES: dict[str, SimConfig] = {
    "tiny": SimConfig(
        profile="tiny", n_stickers=1_500, n_ips=120, n_entities=160, n_styles=30, n_meanings=40,
        n_users=120, train_unique_queries=240, train_pairs=300, test_unique_queries=45,
        test_pairs=60, test_relevant_mean=15.0, click_sessions=1_500,
    ),
    "default": SimConfig(profile="default"),
    "paper": SimConfig(
        profile="paper", n_stickers=1_092_122, n_ips=17_906, n_entities=38_895, n_users=20_000,
        click_sessions=200_000,
    ),
}


def profile_config(profile: str, **overrides) -> SimConfig:
    """The config of a named profile with some knobs overridden."""
    if profile not in PROFILES:
        raise ValueError(f"unknown wechat-sim profile {profile!r} (choose from {', '.join(PROFILES)})")
    return dataclasses.replace(PROFILES[profile], **overrides)


# --------------------------------------------------------------------------- vocabularies


def _zipf(n: int, s: float) -> np.ndarray:
    p = 1.0 / np.arange(1, n + 1) ** s
    return p / p.sum()


def _ip_names(n: int, rng: np.random.Generator) -> list[str]:
    """Famous names first (the most popular ranks), then a procedurally named long tail."""
    names = list(V.FAMOUS_IPS[:n])
    seen = set(names)
    syl, suf = V.NAME_SYLLABLES, V.NAME_SUFFIXES
    while len(names) < n:
        a, b = rng.integers(len(syl), size=2)
        first = syl[a] + syl[b] if rng.random() < 0.6 else syl[a] * 2
        name = f"{first} {suf[rng.integers(len(suf))]}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def _entity_names(n: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """Entity names and their base-noun family (index into ENTITY_NOUNS)."""
    base = [e[0] for e in V.ENTITY_NOUNS]
    names, family = base[: min(n, len(base))], list(range(min(n, len(base))))
    seen = set(names)
    mods = V.ENTITY_MODIFIERS
    while len(names) < n:
        f = int(rng.integers(len(base)))
        k = 1 if rng.random() < 0.7 else 2
        words = [mods[i] for i in sorted(rng.choice(len(mods), size=k, replace=False))]
        name = " ".join([*words, base[f]])
        if name not in seen:
            seen.add(name)
            names.append(name)
            family.append(f)
    return names, np.array(family)


def _style_names(n: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """Style names (treatment + medium) and their treatment family."""
    pairs = list(itertools.product(range(len(V.STYLE_TREATMENTS)), range(len(V.STYLE_MEDIA))))
    order = rng.permutation(len(pairs))[:n]
    chosen = [pairs[i] for i in order]
    names = [f"{V.STYLE_TREATMENTS[t]} {V.STYLE_MEDIA[m]}" for t, m in chosen]
    return names, np.array([t for t, _ in chosen])


@dataclass
class _World:
    """The sampled corpus and its latent variables (never written as such)."""

    cfg: SimConfig
    ip_names: list[str]
    entity_names: list[str]
    entity_family: np.ndarray
    style_names: list[str]
    style_family: np.ndarray
    meanings: list[tuple[str, ...]]
    ip: np.ndarray  # per sticker, -1 for none
    entity: np.ndarray
    style: np.ndarray
    meaning: np.ndarray
    ocr_phrase: np.ndarray  # per sticker: index into phrases, -1 for no text
    phrases: list[str]
    ocr: list[str]
    quality: np.ndarray
    popularity: np.ndarray  # production ranker prior
    group_taste: np.ndarray  # (n_stickers, 8)

    def values(self, prop: str) -> np.ndarray:
        """Per sticker, the id a query on ``prop`` must match (-1: sticker lacks it)."""
        return {
            "ip": self.ip,
            "entity": np.where(self.entity >= 0, self.entity_family[self.entity], -1),
            "style": self.style_family[self.style],
            "meaning": self.meaning,
            "ocr": self.ocr_phrase,
        }[prop]


def _build_world(cfg: SimConfig, rng: np.random.Generator) -> _World:
    n = cfg.n_stickers
    ip_names = _ip_names(cfg.n_ips, rng)
    entity_names, entity_family = _entity_names(cfg.n_entities, rng)
    style_names, style_family = _style_names(cfg.n_styles, rng)
    meanings = list(V.MEANINGS[: cfg.n_meanings])

    ip = rng.choice(cfg.n_ips, size=n, p=_zipf(cfg.n_ips, 1.0))
    ip[rng.random(n) < cfg.no_ip_rate] = -1
    entity = rng.choice(cfg.n_entities, size=n, p=_zipf(cfg.n_entities, 0.9))
    style = rng.choice(cfg.n_styles, size=n, p=_zipf(cfg.n_styles, 0.6))
    meaning = rng.choice(cfg.n_meanings, size=n, p=_zipf(cfg.n_meanings, 0.4))

    # OCR: a phrase of the sticker's meaning, sometimes with a filler or the IP's name.
    phrase_of = [list(m) for m in meanings]
    phrases = [p for m in phrase_of for p in m]
    offset = np.cumsum([0] + [len(m) for m in phrase_of])
    which = (rng.random(n) * np.array([len(phrase_of[m]) for m in meaning])).astype(int)
    ocr_phrase = offset[meaning] + which
    ocr_phrase[rng.random(n) < cfg.no_text_rate] = -1
    template = rng.random(n)
    fillers = rng.integers(len(V.OCR_FILLERS), size=n)
    ocr = []
    for i in range(n):
        if ocr_phrase[i] < 0:
            ocr.append("")
            continue
        text = phrases[ocr_phrase[i]]
        if template[i] < 0.25:
            text = f"{text} {V.OCR_FILLERS[fillers[i]]}"
        elif template[i] < 0.35 and ip[i] >= 0:
            text = f"{ip_names[ip[i]]} {text}"
        ocr.append(text)

    quality = rng.normal(0.0, 0.6, size=n)
    ip_pop = np.log(np.bincount(ip[ip >= 0], minlength=cfg.n_ips) + 1.0)
    popularity = quality + 0.5 * np.where(ip >= 0, ip_pop[np.maximum(ip, 0)], 0.0)

    # Audience profiles: youth score, gender lean and an idiosyncratic part per group.
    def audience(k: int) -> np.ndarray:
        youth, lean = rng.normal(size=k), 0.7 * rng.normal(size=k)
        own = 0.5 * rng.normal(size=(k, len(GROUPS)))
        age = np.repeat(AGE_SLOPE, len(GENDERS))
        sign = np.tile(GENDER_SIGN, len(AGE_GROUPS))
        return youth[:, None] * age[None, :] + lean[:, None] * sign[None, :] + own

    a_ip, a_entity, a_style = audience(cfg.n_ips), audience(cfg.n_entities), audience(cfg.n_styles)
    text_card = np.array([name.endswith("text card") for name in style_names])
    blessing = np.array([m[0] in V.BLESSING_MEANINGS for m in meanings])
    old = -np.repeat(AGE_SLOPE, len(GENDERS))  # +1 for the oldest band
    group_taste = (
        np.where(ip[:, None] >= 0, a_ip[np.maximum(ip, 0)], -0.3 * old[None, :])
        + 0.6 * a_entity[entity]
        + 0.8 * a_style[style]
        + 0.8 * old[None, :] * (text_card[style] | (ocr_phrase >= 0) & (ip < 0))[:, None]
        + 1.0 * old[None, :] * blessing[meaning][:, None]
    )
    return _World(
        cfg, ip_names, entity_names, entity_family, style_names, style_family, meanings, ip,
        entity, style, meaning, ocr_phrase, phrases, ocr, quality, popularity,
        group_taste.astype(np.float32),
    )


# --------------------------------------------------------------------------- users


@dataclass
class _Person:
    id: str
    group: int  # index into GROUPS (the true one, even when not disclosed)
    age_group: str | None
    gender: str | None
    fav_ips: np.ndarray
    fav_styles: np.ndarray


def _make_users(cfg: SimConfig, world: _World, rng: np.random.Generator) -> list[_Person]:
    people = []
    ip_taste = np.full((len(GROUPS), cfg.n_ips), -np.inf)
    has_ip = world.ip >= 0
    for g in range(len(GROUPS)):
        sums = np.bincount(world.ip[has_ip], weights=world.group_taste[has_ip, g], minlength=cfg.n_ips)
        counts = np.bincount(world.ip[has_ip], minlength=cfg.n_ips)
        ip_taste[g, counts > 0] = sums[counts > 0] / counts[counts > 0] + np.log(counts[counts > 0])
    width = len(str(cfg.n_users))
    for u in range(cfg.n_users):
        g = int(rng.integers(len(GROUPS)))
        age, gender = GROUPS[g]
        if rng.random() < cfg.unknown_demographics_rate:
            age, gender = (None, gender) if rng.random() < 0.5 else (age, None)
        p = np.exp(ip_taste[g] - ip_taste[g].max())
        fav_ips = rng.choice(cfg.n_ips, size=3, replace=False, p=p / p.sum())
        fav_styles = rng.choice(cfg.n_styles, size=2, replace=False)
        people.append(_Person(f"u{u:0{width}d}", g, age, gender, fav_ips, fav_styles))
    return people


def _utility(world: _World, person: _Person, idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """utility(user, sticker) for the stickers ``idx``: taste + quality + noise."""
    s = world.cfg.personalization
    personal = 1.0 * np.isin(world.ip[idx], person.fav_ips) + 0.6 * np.isin(world.style[idx], person.fav_styles)
    taste = world.group_taste[idx, person.group] + personal
    return s * taste + world.quality[idx] + rng.normal(0.0, 0.7, size=len(idx))


# --------------------------------------------------------------------------- queries


@dataclass
class _QuerySpec:
    kind: str
    intents: tuple[str, ...]  # true ranking over all five properties
    said: tuple[str, ...]  # properties the text names
    targets: dict[str, int]  # property -> value id wanted (said ones, maybe an unsaid lead)
    text: str

    @property
    def hard(self) -> str:
        """The highest-ranked said property: relevant stickers must match it."""
        return next(p for p in self.intents if p in self.said)

    def soft(self) -> list[tuple[int, str]]:
        """(intent rank, property) of the other wanted properties: matches add to relevance."""
        return [(r, p) for r, p in enumerate(self.intents, start=1) if p in self.targets and p != self.hard]


class _Index:
    """For each property, value id -> sorted sticker indices."""

    def __init__(self, world: _World):
        self.members: dict[str, dict[int, np.ndarray]] = {}
        for prop in PROPERTIES:
            values = world.values(prop)
            order = np.argsort(values, kind="stable")
            uniq, starts = np.unique(values[order], return_index=True)
            bounds = list(starts[1:]) + [len(order)]
            self.members[prop] = {
                int(v): order[a:b] for v, a, b in zip(uniq, starts, bounds) if v >= 0
            }

    def candidates(self, prop: str, value: int) -> np.ndarray:
        return self.members[prop].get(value, np.empty(0, dtype=int))


def _word(rng: np.random.Generator, rate: float, canonical: str, variants: list[str]) -> str:
    return str(rng.choice(variants)) if variants and rng.random() < rate else canonical


def _describe(world: _World, prop: str, s: int, rng: np.random.Generator) -> tuple[int, str]:
    """The target value id and the words a user types for property ``prop`` of sticker ``s``."""
    rate = world.cfg.paraphrase_rate
    value = int(world.values(prop)[s])
    if prop == "meaning":
        label, *paraphrases = world.meanings[value]
        return value, _word(rng, rate, label, paraphrases)
    if prop == "ip":
        name = world.ip_names[world.ip[s]]
        parts = name.split()
        return value, _word(rng, rate * 0.5, name, [parts[0]] if len(parts) > 1 else [])
    if prop == "entity":
        base, *synonyms = V.ENTITY_NOUNS[value]
        return value, _word(rng, rate, base, synonyms)
    if prop == "style":
        return value, V.STYLE_TREATMENTS[value]
    words = world.phrases[value].split()  # ocr: the phrase, sometimes cut short
    if len(words) > 2 and rng.random() < rate:
        words = words[: int(rng.integers(2, len(words)))]
    return value, " ".join(words)


def _draw_query(world: _World, index: _Index, rng: np.random.Generator) -> _QuerySpec:
    cfg = world.cfg
    weights = np.array([w for _, w, _ in QUERY_TYPES])
    while True:
        kind, _, mentioned = QUERY_TYPES[rng.choice(len(QUERY_TYPES), p=weights / weights.sum())]
        s = int(rng.integers(cfg.n_stickers))  # anchor sticker: popular values come up often
        if all(world.values(p)[s] >= 0 for p in mentioned):
            break
    targets, words = {}, []
    for prop in mentioned:
        targets[prop], text = _describe(world, prop, s, rng)
        words.append(text)
    if kind == "meaning+filler":
        words.append(str(rng.choice(V.OCR_FILLERS)))
    if rng.random() < 0.08:
        words.append(str(rng.choice(V.QUERY_NOISE_WORDS)))
    rest = [p for p in PROPERTIES if p not in mentioned]
    lead = list(mentioned)
    rest = [rest[i] for i in rng.permutation(len(rest))]
    if rng.random() < cfg.intent_noise:  # the user's intent deviates from the type's prior
        if len(lead) > 1:
            lead.reverse()
        elif world.values(rest[0])[s] >= 0:  # an unsaid top intent (e.g. the style for "thx")
            targets[rest[0]] = int(world.values(rest[0])[s])
            lead, rest = [rest[0]] + lead, rest[1:]
    return _QuerySpec(kind, tuple(lead + rest), tuple(mentioned), targets, " ".join(words))


def _relevant(
    world: _World, index: _Index, spec: _QuerySpec, person: _Person, n: int, rng: np.random.Generator
) -> np.ndarray:
    """The ``n`` best stickers for this user among those satisfying the top intent."""
    cand = index.candidates(spec.hard, spec.targets[spec.hard])
    score = _utility(world, person, cand, rng) + 2.5 * _intent_match(world, spec, cand)
    n = min(n, len(cand))
    best = np.lexsort((cand, -score))[:n]
    return cand[best]


def _intent_match(world: _World, spec: _QuerySpec, idx: np.ndarray) -> np.ndarray:
    """How well stickers match the wanted properties beyond the hard one, each match weighted
    by the intent decay 1/log2(rank+1) of PEARL's Eq. 15."""
    score = np.zeros(len(idx))
    for rank, prop in spec.soft():
        score += (world.values(prop)[idx] == spec.targets[prop]) / math.log2(rank + 1)
    return score


def _draw_count(mean: float, rng: np.random.Generator) -> int:
    """A relevant-set size: 1 + negative binomial, so the mean is ``mean`` before caps."""
    k = 4.0
    return 1 + int(rng.negative_binomial(k, k / (k + mean - 1)))


def _make_split(
    world: _World, index: _Index, people: list[_Person], split: str, n_unique: int, n_pairs: int,
    rel_mean: float, rng: np.random.Generator, min_candidates: int,
) -> tuple[list[tuple[str, _Person, _QuerySpec]], dict[str, dict[str, int]]]:
    specs: dict[str, _QuerySpec] = {}
    while len(specs) < n_unique:
        spec = _draw_query(world, index, rng)
        if spec.text not in specs and len(index.candidates(spec.hard, spec.targets[spec.hard])) >= min_candidates:
            specs[spec.text] = spec
    texts = list(specs)
    # Each unique query gets one user; the extra pairs repeat queries for users of other groups.
    owners = [int(rng.integers(len(people))) for _ in texts]
    extra = rng.choice(len(texts), size=n_pairs - n_unique, replace=True)
    pairs: list[tuple[str, int]] = [(t, o) for t, o in zip(texts, owners)]
    for i in extra:
        groups = {people[o].group for t, o in pairs if t == texts[i]}
        for _ in range(20):
            u = int(rng.integers(len(people)))
            if people[u].group not in groups:
                break
        pairs.append((texts[i], u))
    width = len(str(n_pairs))
    rows, qrels = [], {}
    for j, (text, u) in enumerate(pairs):
        qid = f"{split}-{j:0{width}d}"
        rel = _relevant(world, index, specs[text], people[u], _draw_count(rel_mean, rng), rng)
        qrels[qid] = {_sid(world, int(s)): 1 for s in rel}
        rows.append((qid, people[u], specs[text]))
    return rows, qrels


def _sid(world: _World, i: int) -> str:
    return f"s{i:0{len(str(world.cfg.n_stickers))}d}"


def _annotate(intents: tuple[str, ...], noise: float, rng: np.random.Generator) -> tuple[str, ...]:
    """A simulated LLM annotation: the true ranking with adjacent swaps at rate ``noise``."""
    out = list(intents)
    for i in range(len(out) - 1):
        if rng.random() < noise:
            out[i], out[i + 1] = out[i + 1], out[i]
    return tuple(out)


# --------------------------------------------------------------------------- click log


def _click_log(
    world: _World, index: _Index, people: list[_Person], rng: np.random.Generator, progress: bool
) -> list[Click]:
    """Sessions of a popularity-biased production ranker with a position-based click model.

    The ranker shows the 10 most popular stickers (plus noise) among those matching the query's
    top intent. A shown sticker at position r is examined with probability 1 / r**0.8 and
    clicked if examined with probability sigmoid(2 * (utility - 1)).
    """
    clicks = []
    examine = 1.0 / np.arange(1, 11) ** 0.8
    sessions = trange(world.cfg.click_sessions, desc="wechat-sim click log", unit="session",
                      disable=not progress, leave=False)
    for _ in sessions:
        person = people[int(rng.integers(len(people)))]
        spec = _draw_query(world, index, rng)
        cand = index.candidates(spec.hard, spec.targets[spec.hard])
        prior = world.popularity[cand] + rng.normal(0.0, 0.5, size=len(cand))
        shown = cand[np.lexsort((cand, -prior))[:10]]
        utility = _utility(world, person, shown, rng) + 1.5 * _intent_match(world, spec, shown)
        p = examine[: len(shown)] / (1.0 + np.exp(-2.0 * (utility - 1.0)))
        hit = rng.random(len(shown)) < p
        for pos, (s, c) in enumerate(zip(shown, hit), start=1):
            clicks.append(Click(person.id, spec.text, _sid(world, int(s)), pos, bool(c)))
    return clicks


# --------------------------------------------------------------------------- entry point


def generate(cfg: SimConfig, folder: Path, progress: bool = False) -> Path:
    """Generate wechat-sim with ``cfg`` into ``folder`` (atomically) and return the folder.

    Args:
        cfg: the knobs; see :data:`PROFILES`.
        folder: destination dataset folder (replaced if it exists).
        progress: show progress bars on stderr.
    """
    seeds = np.random.SeedSequence(cfg.seed).spawn(6)
    rngs = [np.random.default_rng(s) for s in seeds]
    world = _build_world(cfg, rngs[0])
    index = _Index(world)
    people = _make_users(cfg, world, rngs[1])
    min_cand = max(10, int(cfg.test_relevant_mean * 1.5))
    train_rows, train_qrels = _make_split(
        world, index, people, "train", cfg.train_unique_queries, cfg.train_pairs,
        cfg.train_relevant_mean, rngs[2], min_candidates=5,
    )
    test_rows, test_qrels = _make_split(
        world, index, people, "test", cfg.test_unique_queries, cfg.test_pairs,
        cfg.test_relevant_mean, rngs[3], min_candidates=min_cand,
    )
    clicks = _click_log(world, index, people, rngs[4], progress)
    history: dict[str, list[str]] = {}
    for c in clicks:
        if c.clicked and c.sticker_id not in history.setdefault(c.user_id, []):
            history[c.user_id].append(c.sticker_id)

    stickers = [
        Sticker(
            id=_sid(world, i),
            ocr=world.ocr[i],
            ip=world.ip_names[world.ip[i]] if world.ip[i] >= 0 else "",
            entity=world.entity_names[world.entity[i]],
            style=world.style_names[world.style[i]],
            meaning=world.meanings[world.meaning[i]][0],
        )
        for i in range(cfg.n_stickers)
    ]
    users = [User(p.id, p.age_group, p.gender, tuple(history.get(p.id, ()))) for p in people]
    train_queries = [
        TrainQuery(qid, p.id, spec.text, _annotate(spec.intents, cfg.annotation_noise, rngs[5]))
        for qid, p, spec in train_rows
    ]
    test_pairs = [TestQuery(qid, p.id, spec.text) for qid, p, spec in test_rows]
    truth = [
        {"qid": qid, "split": split, "kind": spec.kind, "intents": list(spec.intents),
         "targets": {k: int(v) for k, v in spec.targets.items()}, "user_group": "/".join(GROUPS[p.group])}
        for split, rows in (("train", train_rows), ("test", test_rows))
        for qid, p, spec in rows
    ]
    card = {
        "name": cfg.name,
        "version": GENERATOR_VERSION,
        "licence": "CC0-1.0 (synthetic data generated by StickerBench)",
        "source": "wechat-sim: seeded simulator of the PEARL paper's WeChat offline dataset (Appendix A)",
        "generator": {"module": "benchmark.simulator", "config": dataclasses.asdict(cfg)},
        "vocab": {"ips": cfg.n_ips, "entities": cfg.n_entities, "styles": cfg.n_styles,
                  "meanings": cfg.n_meanings},
        "simulator_only": ["sim/queries.jsonl"],
    }
    return write_dataset(
        folder, card, stickers, users, train_queries, test_pairs, train_qrels, test_qrels,
        clicks, extra_jsonl={"sim/queries.jsonl": truth},
    )


def relevance_overlap(cfg: SimConfig, n_queries: int = 60) -> dict[str, float]:
    """Check personalization: mean Jaccard overlap of the relevant sets of one query for two
    users of the same group (``within``) and for users of two different groups (``across``).

    With ``personalization=0`` both are alike; with the default strength ``across`` is
    markedly lower. Used by the tests and handy when tuning the knobs.
    """
    seeds = np.random.SeedSequence(cfg.seed).spawn(6)
    world = _build_world(cfg, np.random.default_rng(seeds[0]))
    index = _Index(world)
    people = _make_users(cfg, world, np.random.default_rng(seeds[1]))
    rng = np.random.default_rng([cfg.seed, 7])
    by_group: dict[int, list[_Person]] = {}
    for p in people:
        by_group.setdefault(p.group, []).append(p)
    n = max(1, round(cfg.test_relevant_mean))
    within, across = [], []
    while len(within) < n_queries:
        spec = _draw_query(world, index, rng)
        if len(index.candidates(spec.hard, spec.targets[spec.hard])) < 3 * n:
            continue
        g1, g2 = rng.choice(len(GROUPS), size=2, replace=False)
        a, b = rng.choice(len(by_group[g1]), size=2, replace=False)
        c = rng.integers(len(by_group[g2]))
        sets = [set(_relevant(world, index, spec, p, n, rng).tolist())
                for p in (by_group[g1][a], by_group[g1][b], by_group[g2][c])]
        within.append(len(sets[0] & sets[1]) / len(sets[0] | sets[1]))
        across.append(len(sets[0] & sets[2]) / len(sets[0] | sets[2]))
    return {"within": float(np.mean(within)), "across": float(np.mean(across))}
