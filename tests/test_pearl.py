"""PEARL: the loss terms (Eq. 13-16) against hand computations, the funnel, representation
learning (Eq. 4-12), frozen user embeddings, and the system end to end on the tiny profile."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark import harness
from benchmark.records import Click, Query, Sticker, TrainingData, TrainQuery, User
from systems.pearl import (
    ABLATIONS, GROUP_TOKENS, PEARL, PROPERTY_TOKENS, Attention, PEARLConfig, code_tokens, funnel_rank, group_index,
    learn_user_embeddings, pearl_examples, property_texts, representation_rows,
)
from systems.encoders import load_encoder
from systems.registry import registry
from systems.seq2seq import Seq2Seq, Seq2SeqConfig

FAST = {"d_model": 64, "layers": 1, "max_steps": 8, "checkpoint_every": 4, "vocab_size": 2000, "repr_steps": 5}
D2 = 1 / math.log2(3)  # d_p of the second intent (Eq. 15)


# --------------------------------------------------------------------------- funnel


def test_funnel_keeps_the_intersection_and_ranks_it_first():
    retrieved = [{"a": -1.0, "b": -2.0, "c": -0.5}, {"b": -0.1, "c": -3.0, "d": -0.2}]
    ranking = funnel_rank(retrieved, [1.0, D2], k=10)
    assert [s for s, _ in ranking] == ["b", "c", "a", "d"]
    # b and c survive both steps (depth 2); a was dropped at step 2 (depth 1); d never was in S_1
    scores = dict(ranking)
    total = 1 + 1 + D2
    assert scores["b"] == pytest.approx(2 + (math.exp(-2.0) + D2 * math.exp(-0.1)) / total, abs=1e-6)
    assert scores["a"] == pytest.approx(1 + math.exp(-1.0) / total, abs=1e-6)
    assert scores["d"] == pytest.approx(D2 * math.exp(-0.2) / total, abs=1e-6)


def test_funnel_skips_an_intent_whose_intersection_is_empty():
    retrieved = [{"a": -1.0, "b": -1.0}, {"x": -0.1}, {"b": -0.5}]
    ranking = [s for s, _ in funnel_rank(retrieved, [1.0, 0.6, 0.5], k=10)]
    assert ranking == ["b", "a", "x"]  # step 2 skipped (S_2 = S_1), step 3 keeps b


def test_funnel_starts_from_all_stickers_when_the_first_intent_finds_nothing():
    ranking = [s for s, _ in funnel_rank([{}, {"a": -2.0, "b": -1.0}], [1.0, 0.6], k=10)]
    assert ranking == ["b", "a"]


def test_funnel_returns_at_most_k_and_breaks_ties_by_sticker_id():
    retrieved = [{f"s{i}": -1.0 for i in range(30)}]
    ranking = funnel_rank(retrieved, [1.0], k=20)
    assert len(ranking) == 20
    assert [s for s, _ in ranking][:3] == ["s9", "s8", "s7"]  # trec_eval: descending id on ties


def test_unguided_decoding_sums_equally_weighted_probabilities():
    retrieved = [{"a": -1.0}, {"a": -1.0, "b": -0.1}]
    ranking = dict(funnel_rank(retrieved, [1.0, 1.0], k=10, guided=False))
    assert ranking["a"] == pytest.approx(2 * math.exp(-1.0) / 3, abs=1e-6)
    assert ranking["b"] == pytest.approx(math.exp(-0.1) / 3, abs=1e-6)


# --------------------------------------------------------------------------- losses


@pytest.fixture(scope="module")
def small_model():
    config = Seq2SeqConfig(d_model=32, layers=1, vocab_size=300)
    return Seq2Seq.create(config, ["good morning cat", "thanks boss", "hello"], ["[P:ip]", "[X]", "[Y]"], seed=0)


def _hand_nll(model: Seq2Seq, source: str, decoder: list[int], targets: list[int]) -> list[float]:
    """-log P(target_t | source, decoder[:t+1]) for each position, computed directly."""
    inputs = model._sources([source], 40)
    with torch.no_grad():
        logits = model.model(**inputs, decoder_input_ids=torch.tensor([decoder])).logits[0]
    logp = logits.log_softmax(-1)
    return [-float(logp[t, y]) for t, y in enumerate(targets)]


def test_weighted_loss_matches_hand_computation(small_model):
    m = small_model
    p, x, y = m.token_id("[P:ip]"), m.token_id("[X]"), m.token_id("[Y]")
    examples = [("good morning", (p, x, y)), ("thanks", (p, y))]
    weights = torch.tensor([1.0, 0.5])
    inputs = m._sources([s for s, _ in examples], 40)
    labels = m._targets([t for _, t in examples])
    with torch.no_grad():
        loss = float(m._weighted_loss(m.model, inputs, labels, weights, given=1))
    # the prefix w_p is fed to the decoder but not predicted
    first = _hand_nll(m, "good morning", [m.start, p, x, y], [p, x, y, m.eos])[1:]
    second = _hand_nll(m, "thanks", [m.start, p, y], [p, y, m.eos])[1:]
    expected = (sum(first) + 0.5 * sum(second)) / (len(first) + len(second))
    assert loss == pytest.approx(expected, rel=1e-5)


def test_unweighted_loss_equals_the_backbone_loss(small_model):
    m = small_model
    x, y = m.token_id("[X]"), m.token_id("[Y]")
    inputs = m._sources(["good morning", "thanks"], 40)
    labels = m._targets([(x, y), (y,)])
    with torch.no_grad():
        ours = float(m._weighted_loss(m.model, inputs, labels, None, given=0))
        theirs = float(m.model(**inputs, labels=labels).loss)
    assert ours == pytest.approx(theirs, rel=1e-5)


def _data(users: dict[str, User] | None = None, clicks: tuple[Click, ...] = ()) -> TrainingData:
    stickers = (
        Sticker("s1", ocr="good morning", ip="kermit", entity="frog", style="cute", meaning="greeting"),
        Sticker("s2", entity="cat", style="cute", meaning="thanks"),
        Sticker("s3", ocr="bye", entity="cat", style="pixel", meaning="farewell"),
    )
    queries = (TrainQuery("q1", "u1", "kermit morning", ("ip", "meaning", "ocr", "entity", "style")),
               TrainQuery("q2", "u2", "cute cat", ("style", "entity", "meaning", "ocr", "ip")))
    users = users if users is not None else {"u1": User("u1", "20-29", "female"), "u2": User("u2")}
    return TrainingData("t", "f", stickers, users, queries, {"q1": {"s1": 1}, "q2": {"s2": 1, "s3": 0}}, clicks)


def test_training_examples_follow_eq_13_and_14():
    data = _data()
    texts, stand_in = property_texts(data)
    assert not stand_in
    identifiers = {p: {v: (i % 4, 1) for i, v in enumerate(sorted({t[p] for t in texts.values() if p in t}))}
                   for p in ("ocr", "ip", "entity", "style", "meaning")}
    model = Seq2Seq.create(Seq2SeqConfig(d_model=32, layers=1, vocab_size=300), ["x"],
                           [*GROUP_TOKENS, *PROPERTY_TOKENS.values(), *code_tokens(2, 2)])
    rankings = {q.qid: q.intents for q in data.queries}
    examples, weights = pearl_examples(data, texts, identifiers, rankings, model, True, True)
    prefix = {p: model.token_id(t) for p, t in PROPERTY_TOKENS.items()}
    n_values = sum(len(v) for v in identifiers.values())
    # Eq. 13: one indexing example per distinct property value, weight 1, source = the value
    index = list(zip(examples[:n_values], weights[:n_values]))
    assert all(w == 1.0 for _, w in index)
    assert ("kermit", (prefix["ip"], model.token_id("[Q0_0]"), model.token_id("[Q1_1]"))) in [e for e, _ in index]
    # Eq. 14: the group token, then each intent the relevant sticker has, weighted by d_p
    retrieval = list(zip(examples[n_values:], weights[n_values:]))
    q1 = [(t[0], w) for (src, t), w in retrieval if src == "[G:20-29/female] kermit morning"]
    assert q1 == [(prefix["ip"], 1.0), (prefix["meaning"], pytest.approx(D2)), (prefix["ocr"], 0.5),
                  (prefix["entity"], pytest.approx(1 / math.log2(5))), (prefix["style"], pytest.approx(1 / math.log2(6)))]
    q2 = [(t[0], w) for (src, t), w in retrieval if src == "[G:unknown] cute cat"]
    # s2 has no ocr and no ip; s3 is not relevant (rel 0)
    assert q2 == [(prefix["style"], 1.0), (prefix["entity"], pytest.approx(D2)), (prefix["meaning"], 0.5)]
    # PEARL-IAL: all weights 1; PEARL-UE: no group token
    _, flat = pearl_examples(data, texts, identifiers, rankings, model, True, False)
    assert set(flat) == {1.0}
    plain, _ = pearl_examples(data, texts, identifiers, rankings, model, False, True)
    assert {src for src, _ in plain[n_values:]} == {"kermit morning", "cute cat"}


def test_a_sticker_without_properties_gets_its_document_as_meaning():
    data = TrainingData("t", "f", (Sticker("a"), Sticker("b", meaning="hi")), {},
                        (TrainQuery("q", None, "hello there"),), {"q": {"a": 1}})
    texts, stand_in = property_texts(data)
    assert stand_in and texts == {"a": {"meaning": "hello there"}, "b": {"meaning": "hi"}}


def test_group_tokens_cover_eight_groups_and_unknown():
    assert len(GROUP_TOKENS) == 9 and GROUP_TOKENS[-1] == "[G:unknown]"
    assert group_index(User("u", "0-19", "male")) == 0
    assert group_index(User("u", "45-59", "female")) == 7
    assert group_index(User("u", "45-59", None)) == group_index(None) == 8


# --------------------------------------------------------------------------- frozen user embeddings


def test_frozen_rows_do_not_move_while_the_rest_trains(small_model, tmp_path: Path):
    m = Seq2Seq.create(Seq2SeqConfig(d_model=32, layers=1, vocab_size=300), ["good morning cat"],
                       ["[G:a]", "[G:b]", "[X]"], seed=0)
    frozen = [m.token_id("[G:a]"), m.token_id("[G:b]")]
    table = m.model.get_input_embeddings().weight
    before = table.detach().clone()
    x = m.token_id("[X]")
    examples = [("[G:a] good morning", (x,)), ("[G:b] cat", (x,))] * 8
    m.train(examples, Seq2SeqConfig(d_model=32, layers=1, max_steps=5, batch_size=4, warmup=1), tmp_path,
            progress=False, weights=[1.0] * len(examples), given=0, frozen=frozen)
    after = table.detach()
    assert torch.equal(after[frozen], before[frozen])
    assert not torch.equal(after[x], before[x])


# --------------------------------------------------------------------------- representation learning


def test_attention_matches_eq_4_by_hand():
    torch.manual_seed(0)
    att = Attention(3, 2, 4)
    query, keys = torch.randn(1, 3), torch.randn(1, 5, 2)
    mask = torch.tensor([[True, True, True, False, False]])
    out = att(query, keys, mask)
    q, k, v = att.q.weight @ query[0], keys[0, :3] @ att.k.weight.T, keys[0, :3] @ att.v.weight.T
    alpha = torch.softmax(k @ q / 2.0, 0)
    assert torch.allclose(out[0], alpha @ v, atol=1e-6)


def _click_log(n: int, seed: int = 0) -> tuple[dict[str, User], tuple[Click, ...]]:
    """Young users click kermit stickers, old users click cat stickers."""
    rng = np.random.default_rng(seed)
    users = {f"y{i}": User(f"y{i}", "0-19", "male") for i in range(5)} | {f"o{i}": User(f"o{i}", "45-59", "female")
                                                                          for i in range(5)}
    clicks = []
    for _ in range(n):
        uid = list(users)[int(rng.integers(10))]
        sid = ["s1", "s2"][int(rng.integers(2))]
        likes = (sid == "s1") == uid.startswith("y")
        clicks.append(Click(uid, "hello", sid, 1, bool(likes)))
    return users, tuple(clicks)


def test_representation_rows_per_task():
    users, clicks = _click_log(40)
    rows = representation_rows(_data(users, clicks), ("click", "intent", "interest"), 2)
    assert set(rows) == {"click", "intent", "interest_ip", "interest_entity"}
    assert len(rows["click"].labels) == 40 and len(rows["interest_entity"].labels) == 40
    assert len(rows["interest_ip"].labels) == sum(c.sticker_id == "s1" for c in clicks)  # s2 has no IP
    assert rows["intent"].labels.tolist() == [[0, 1, 0, 0, 1], [0, 0, 1, 1, 0]]  # top-2 of each ranking
    assert set(representation_rows(_data(users, clicks), ("intent",), 2)) == {"intent"}


def test_user_embeddings_learn_group_taste_from_clicks():
    users, clicks = _click_log(600)
    config = PEARLConfig(tasks=("interest",), repr_steps=150, repr_batch=64, repr_lr=3e-3)
    rows, notes = learn_user_embeddings(_data(users, clicks), config, 16, seed=0, encoder=load_encoder(config.encoder),
                                        progress=False)
    assert rows.shape == (len(GROUP_TOKENS), 16)
    assert notes["held_out"]["interest_entity"]["auc"] > 0.9  # the group alone decides the click
    assert notes["loss_last_20"] < notes["loss_first_20"]


def test_no_click_log_and_no_annotations_learn_nothing():
    data = TrainingData("t", "f", (Sticker("a", meaning="hi"),), {}, (TrainQuery("q", None, "hi"),), {"q": {"a": 1}})
    rows, notes = learn_user_embeddings(data, PEARLConfig(), 16, seed=0, encoder=None, progress=False)
    assert rows is None and not notes["learned"]


# --------------------------------------------------------------------------- end to end


def test_ablations_are_registered_with_one_switch_changed():
    available = registry()
    base = PEARLConfig()
    changed = {cls.card.name: {k for k, v in vars(cls.Config()).items() if getattr(base, k) != v} for cls in ABLATIONS}
    assert changed == {"pearl-ue": {"user_embedding"}, "pearl-click": {"tasks"}, "pearl-intent": {"tasks"},
                       "pearl-interest": {"tasks"}, "pearl-ial": {"intent_aware_loss"}, "pearl-ig": {"intent_guided"}}
    assert all(available[cls.card.name] is cls and cls.card.family == "Ablation" for cls in ABLATIONS)
    assert available["pearl"] is PEARL and not PEARL.card.baseline


def test_pearl_fits_searches_and_shares_its_model_with_pearl_ig(tiny):
    config = PEARLConfig(**FAST)
    system, _, _ = harness.fit_or_load(PEARL, config, 0, tiny, progress=False)
    queries = tiny.test_queries()[:6]
    rankings = system.search(queries, 20)
    known = {s.id for s in tiny.stickers}
    assert len(rankings) == 6 and all(0 < len(r) <= 20 and {s for s, _ in r} <= known for r in rankings)
    notes = system.notes()
    assert set(notes["intents"]) == {q.qid for q in queries}
    assert notes["representation"]["learned"] and notes["properties"] == ["ocr", "ip", "entity", "style", "meaning"]
    ig_cls = registry()["pearl-ig"]
    ig, _, _ = harness.fit_or_load(ig_cls, ig_cls.Config(**FAST), 0, tiny, progress=False)
    for a, b in zip(ig.model.model.state_dict().values(), system.model.model.state_dict().values()):
        assert torch.equal(a, b)


def test_pearl_without_users_properties_or_clicks(tmp_path: Path):
    stickers = tuple(Sticker(f"s{i}") for i in range(6))
    queries = tuple(TrainQuery(f"q{i}", None, text) for i, text in enumerate(["hello", "thanks a lot", "bye now"] * 2))
    qrels = {f"q{i}": {f"s{i}": 1} for i in range(6)}
    data = TrainingData("sq", "fp", stickers, {}, queries, qrels)
    system = PEARL(PEARLConfig(**FAST), seed=0)
    system.fit(data, tmp_path)
    system.load(tmp_path)
    rankings = system.search([Query("t1", None, "hello"), Query("t2", None, "bye")], 20)
    assert all(0 < len(r) <= 6 for r in rankings)
    notes = system.notes()
    assert notes["properties"] == ["meaning"] and notes["meaning_stands_in_for_missing_properties"]
    assert notes["representation"] == {"learned": False, "reason": "no click log and no intent annotations"}
    assert notes["intents"] == {"t1": ["meaning"], "t2": ["meaning"]}
