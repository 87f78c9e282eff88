"""GPop, UPop and BM25 on hand-made data, and the registry."""

from __future__ import annotations

import pytest

from benchmark.records import Click, Query, Sticker, TrainingData, TrainQuery, User
from systems import registry, top_k
from systems.lexical import BM25
from systems.popularity import GPop, UPop

YOUNG = User("u1", "20-29", "female")
OLD = User("u2", "45-59", "male")
NOBODY = User("u3", None, "male")


def _clicks(user: User, sticker: str, n: int, clicked: bool = True) -> list[Click]:
    return [Click(user.id, "q", sticker, 1, clicked) for _ in range(n)]


def _data(clicks=(), stickers=None, queries=(), qrels=None) -> TrainingData:
    stickers = stickers or tuple(Sticker(f"s{i}", meaning=f"m{i}") for i in range(1, 6))
    return TrainingData(
        name="hand", fingerprint="x", stickers=tuple(stickers),
        users={u.id: u for u in (YOUNG, OLD, NOBODY)}, queries=tuple(queries),
        qrels=qrels or {}, clicks=tuple(clicks),
    )


def _fitted(cls, data, tmp_path, config=None):
    system = cls(config, seed=0)
    system.fit(data, tmp_path)
    system.load(tmp_path)
    return system


CLICKS = (
    _clicks(YOUNG, "s1", 3) + _clicks(OLD, "s2", 2) + _clicks(OLD, "s3", 1)
    + _clicks(NOBODY, "s4", 1) + _clicks(YOUNG, "s5", 9, clicked=False)
)


def test_gpop_ranks_by_clicks_for_every_query(tmp_path):
    gpop = _fitted(GPop, _data(CLICKS), tmp_path)
    rankings = gpop.search([Query("a", YOUNG, "hello"), Query("b", None, "bye")], k=3)
    # s3 and s4 tie on one click: trec_eval order puts the larger id first
    assert [[s for s, _ in r] for r in rankings] == [["s1", "s2", "s4"], ["s1", "s2", "s4"]]


def test_upop_ranks_by_group_clicks_then_global(tmp_path):
    upop = _fitted(UPop, _data(CLICKS), tmp_path)
    old, young, unknown = upop.search(
        [Query("a", OLD, "x"), Query("b", YOUNG, "x"), Query("c", NOBODY, "x")], k=4)
    assert [s for s, _ in old] == ["s2", "s3", "s1", "s4"]
    assert [s for s, _ in young] == ["s1", "s2", "s4", "s3"]
    assert [s for s, _ in unknown] == ["s1", "s2", "s4", "s3"]  # no group: GPop's list
    assert upop.notes()["queries_without_group_fell_back_to_gpop"] == 1
    assert upop.notes()["popularity_source"] == "click log"


def test_popularity_without_click_log_uses_training_qrels(tmp_path):
    data = _data(queries=[TrainQuery("t1", None, "q"), TrainQuery("t2", None, "r")],
                 qrels={"t1": {"s2": 1, "s3": 1}, "t2": {"s3": 1, "s1": 0}})
    gpop = _fitted(GPop, data, tmp_path)
    assert [s for s, _ in gpop.search([Query("a", None, "x")], k=5)[0]] == ["s3", "s2"]
    assert "no click log" in gpop.notes()["popularity_source"]


STICKERS = (
    Sticker("s1", ocr="good night", ip="doraemon", meaning="sleepy"),
    Sticker("s2", ocr="thanks boss", ip="pikachu", meaning="thanks"),
    Sticker("s3", ocr="thank you", ip="doraemon", meaning="thanks"),
    Sticker("s4", ocr="", entity="cat", style="cute cartoon", meaning="happy"),
    Sticker("s5", ocr="", entity="cat", style="cute cartoon", meaning="happy"),
)


@pytest.fixture(scope="module")
def bm25(tmp_path_factory):
    return _fitted(BM25, _data(stickers=STICKERS), tmp_path_factory.mktemp("bm25"))


def test_bm25_matches_terms(bm25):
    sleepy, thanks, nothing = bm25.search(
        [Query("a", None, "doraemon sleepy"), Query("b", None, "thanks"), Query("c", None, "zebra")], k=10)
    assert sleepy[0][0] == "s1" and {s for s, _ in sleepy} == {"s1", "s3"}
    assert {s for s, _ in thanks} == {"s2", "s3"}  # porter stemming: thank ~ thanks
    assert nothing == []
    assert all(a[1] >= b[1] for a, b in zip(sleepy, sleepy[1:]))


def test_bm25_breaks_ties_by_sticker_id_at_the_cutoff(bm25):
    (cats,) = bm25.search([Query("a", None, "cute cat")], k=1)
    assert cats == top_k([("s4", cats[0][1]), ("s5", cats[0][1])], 1)
    assert cats[0][0] == "s5"


def test_bm25_indexes_training_queries_of_stickers_without_properties(tmp_path):
    bare = (Sticker("a"), Sticker("b"))
    data = _data(stickers=bare, queries=[TrainQuery("t1", None, "thumbs up"), TrainQuery("t2", None, "crying")],
                 qrels={"t1": {"a": 1}, "t2": {"b": 1}})
    system = _fitted(BM25, data, tmp_path)
    assert system.search([Query("q", None, "thumbs")], k=5)[0][0][0] == "a"


def test_registry_lists_the_builtins_in_table_order():
    assert list(registry())[:3] == ["gpop", "upop", "bm25"]
    for cls in registry().values():
        assert cls.card.family and cls.card.paper


def test_every_registered_system_and_config_pickles():
    """Table 3 serves each system in a fresh process, which receives the class and config."""
    import pickle

    from systems.registry import BUILTINS

    for cls in BUILTINS:
        assert pickle.loads(pickle.dumps(cls)) is cls
        assert pickle.loads(pickle.dumps(cls.Config())) == cls.Config()
