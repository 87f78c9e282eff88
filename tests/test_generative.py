"""The generative family: identifiers (docids, titles, views), training pairs, and each system
end to end on the tiny profile with a few training steps."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark import harness
from benchmark.records import Sticker, TrainingData
from systems.generative import (
    DSI, DSIQG, GENRE, MINDER, DSIConfig, DSIQGConfig, MINDERConfig, Ultron, UltronConfig, body_spans, docids,
    minder_indexes, pq_docids, sticker_titles, text_parts,
)
from systems.seq2seq import Seq2SeqConfig

FAST = {"d_model": 64, "layers": 1, "max_steps": 8, "checkpoint_every": 4, "vocab_size": 2000}


def test_titles_are_unique_and_disambiguated_by_a_fixed_rule():
    parts = {
        "s1": ["hello", "hi there", "kermit"],
        "s2": ["hello", "hey", "kermit"],
        "s3": ["bye"],
        "s4": ["hello", "hi there", "pikachu"],
        "s5": ["hello", "hi there", "pikachu"],
        "s6": ["hello", "hi there", "pikachu"],
    }
    titles = sticker_titles(parts)
    assert titles == {
        "s1": "hello (hi there, kermit)",
        "s2": "hello (hey)",
        "s3": "bye",
        "s4": "hello (hi there, pikachu)",
        "s5": "hello (hi there, pikachu) #2",
        "s6": "hello (hi there, pikachu) #3",
    }
    assert len(set(titles.values())) == len(titles)


def test_text_parts_put_meaning_first_and_fall_back_to_queries_then_id():
    data = TrainingData(
        name="t", fingerprint="f", users={},
        stickers=(Sticker("a", ocr="hi", ip="kermit", meaning="greeting"), Sticker("b"), Sticker("c")),
        queries=(), qrels={},
    )
    assert text_parts(data) == {"a": ["greeting", "hi", "kermit"], "b": ["b"], "c": ["c"]}


def test_docids_naive_digits_and_atomic_tokens():
    naive = docids(["s2", "s0", "s1"] + [f"t{i}" for i in range(9)], "naive")
    assert naive["s0"] == ["[D0]"] and naive["t8"] == ["[D1]", "[D1]"]
    assert len({tuple(v) for v in naive.values()}) == 12
    assert docids(["b", "a"], "atomic") == {"a": ["[S0]"], "b": ["[S1]"]}
    with pytest.raises(ValueError, match="docid"):
        docids(["a"], "semantic")


def test_body_spans_prefer_spans_sharing_a_query_token():
    rng = np.random.default_rng(0)
    body = [1, 2, 3, 4, 5, 6]
    spans = body_spans(body, 3, 10, {6}, rng)
    assert len(spans) == 4 and spans[0] == [4, 5, 6]
    assert all(sp in [body[i:i + 3] for i in range(4)] for sp in spans)
    assert body_spans([7, 8], 10, 3, set(), rng) == [[7, 8]]
    assert body_spans([], 10, 3, set(), rng) == []


def test_minder_indexes_hold_each_view():
    views = {"a": {"title": [5, 6], "body": [7, 8, 9], "query": [[5, 9], [10]]},
             "b": {"title": [5], "body": [8, 9], "query": [[10], []]}}
    indexes = minder_indexes(views, eos=2, config=MINDERConfig(body_ngram=2))
    title, body, query = indexes["title"], indexes["body"], indexes["query"]
    assert title.count([5]) == 1 and list(title.locate([5, 6])) == [0]  # whole titles only
    assert title.allowed_after([5]).tolist() == [6, 2] and title.allowed_after([6]) is None
    assert body.count([8, 9]) == 2 and list(body.locate([9])) == [0, 1]  # any n-gram
    assert query.count([10]) == 2 and list(query.locate([10])) == [0, 1] and query.count([5]) == 0
    assert query.n_tokens == 4 and title.n_tokens == 3


SYSTEMS = [
    (DSI, DSIConfig(**FAST)),
    (DSI, DSIConfig(**FAST, docid="atomic")),
    (DSIQG, DSIQGConfig(**FAST, n_queries=2)),
    (GENRE, Seq2SeqConfig(**FAST)),
    (MINDER, MINDERConfig(**FAST, n_queries=2)),
    (Ultron, UltronConfig(**{**FAST, "max_steps": 24}, n_queries=2)),
]


@pytest.mark.parametrize("cls,config", SYSTEMS, ids=["dsi", "dsi-atomic", "dsi-qg", "genre", "minder", "ultron"])
def test_each_system_fits_and_returns_known_stickers(cls, config, tiny):
    system, _, _ = harness.fit_or_load(cls, config, 0, tiny, progress=False)
    queries = tiny.test_queries()[:6]
    rankings = system.search(queries, 20)
    known = {s.id for s in tiny.stickers}
    assert len(rankings) == len(queries)
    assert any(rankings), "a trained system retrieves something"
    for ranking in rankings:
        assert len(ranking) <= 20 and {s for s, _ in ranking} <= known
        assert len({s for s, _ in ranking}) == len(ranking)
        scores = [score for _, score in ranking]
        assert scores == sorted(scores, reverse=True)
    notes = system.notes()
    assert notes["steps"] == (24 if cls is Ultron else 8) and notes["capped_by_max_steps"]
    again, _, cached = harness.fit_or_load(cls, config, 0, tiny, progress=False)
    assert cached and again.search(queries, 20) == rankings  # loaded from the cache: same output


def test_minder_keys_all_occur_in_their_view(tiny):
    system, _, _ = harness.fit_or_load(MINDER, MINDERConfig(**FAST, n_queries=2), 0, tiny, progress=False)
    index = system.indexes["body"]
    _, _, processor = system.model.generate(
        [q.text for q in tiny.test_queries()[:3]], index, prefix=(system.view_token["body"],),
        num_beams=5, max_new_tokens=index.max_length, record=True)
    keys = set().union(*processor.prefixes)
    assert keys and all(index.count(key) > 0 for key in keys)


def test_pseudo_queries_are_shared_between_dsi_qg_and_minder():
    from systems.generative import generator_config

    assert generator_config(DSIQGConfig(**FAST, n_queries=2)) == generator_config(MINDERConfig(**FAST, n_queries=2))
    assert generator_config(DSIQGConfig(**FAST, n_queries=2)) != generator_config(DSIQGConfig(**FAST, n_queries=3))


@pytest.mark.parametrize("bits", [8, 5])
def test_pq_docids_are_each_subvectors_nearest_centroid(bits):
    import faiss

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(600, 16)).astype(np.float32)
    codes, used = pq_docids(vectors, 4, bits)
    assert used == bits and codes.shape == (600, 4) and codes.max() < 2 ** bits
    pq = faiss.ProductQuantizer(16, 4, bits)  # trained the same way: same seed, same centroids
    pq.cp.min_points_per_centroid = 1
    pq.train(vectors)
    centroids = faiss.vector_to_array(pq.centroids).reshape(4, 2 ** bits, 4)
    for j in range(4):
        sub = vectors[:, 4 * j: 4 * j + 4]
        nearest = ((sub[:, None, :] - centroids[j][None]) ** 2).sum(-1).argmin(1)
        assert (codes[:, j] == nearest).mean() > 0.99  # float ties aside
    assert pq_docids(vectors[:40], 4, 8)[1] == 5  # too few vectors for 256 centroids


def test_minder_training_pairs_follow_seal_and_minder():
    from benchmark.records import TrainQuery
    from systems.generative import VIEW_TOKENS, minder_examples
    from systems.seq2seq import Seq2Seq

    data = TrainingData(
        name="t", fingerprint="f", users={}, qrels={"q1": {"a": 1}},
        stickers=(Sticker("a", ocr="good night moon", ip="kermit", meaning="sleep"), Sticker("b", meaning="hi")),
        queries=(TrainQuery("q1", None, "night kermit"),),
    )
    model = Seq2Seq.create(Seq2SeqConfig(d_model=32, layers=1), ["good night moon kermit sleep hi night"],
                           list(VIEW_TOKENS.values()))
    tok = {"a": {"title": model.token_ids("sleep"), "body": model.token_ids("good night moon kermit"),
                 "query": [model.token_ids(q) for q in ("night", "moon", "kermit", "sleep", "good", "hi")]},
           "b": {"title": model.token_ids("hi"), "body": [], "query": []}}
    view = {name: model.token_id(t) for name, t in VIEW_TOKENS.items()}
    examples = minder_examples(data, model, tok, view, MINDERConfig(body_ngram=3, spans_per_pair=10),
                               np.random.default_rng(0))
    supervised = [t for s, t in examples if s == "night kermit"]
    assert supervised.count((view["title"], *tok["a"]["title"])) == 3
    bodies = [t[1:] for t in supervised if t[0] == view["body"]]
    assert len(bodies) == 2 and all(len(b) == 3 for b in bodies)  # the two 3-token spans of 4 tokens
    assert sum(t[0] == view["query"] for t in supervised) == 5
    unsupervised = [(s, t) for s, t in examples if s != "night kermit"]
    assert len(unsupervised) == 3  # span -> title, title -> span, span -> span (b has no body)
    assert {t[0] for _, t in unsupervised} == {view["title"], view["body"]}


def test_an_interrupted_fit_resumes_from_its_checkpoint(tiny, monkeypatch):
    from systems.seq2seq import Seq2Seq

    config = DSIConfig(**{**FAST, "max_steps": 10, "checkpoint_every": 4}, lr=2e-3)
    step, calls = Seq2Seq._train_step, {"n": 0, "limit": 6}

    def counted(self, *args):
        calls["n"] += 1
        if calls["n"] > calls["limit"]:
            raise KeyboardInterrupt  # as if the process were stopped mid-training
        return step(self, *args)

    monkeypatch.setattr(Seq2Seq, "_train_step", counted)
    with pytest.raises(KeyboardInterrupt):
        harness.fit_or_load(DSI, config, 0, tiny, progress=False)
    calls.update(n=0, limit=10**6)
    system, _, cached = harness.fit_or_load(DSI, config, 0, tiny, progress=False)
    assert not cached and calls["n"] == 10 - 4  # resumed at the checkpoint of step 4
    assert system.notes()["steps"] == 10
