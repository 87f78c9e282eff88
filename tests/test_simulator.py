"""wechat-sim: determinism, profile counts and the personalization claims of DESIGN.md."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from benchmark import catalog, harness, simulator, tables
from benchmark.dataset import load_dataset
from benchmark.evaluate import permutation_test
from benchmark.records import PROPERTIES
from systems.popularity import GPop, UPop

# tiny, with more test pairs and sessions: enough statistical power for the claims below
POWER = {"test_pairs": 300, "test_unique_queries": 100, "click_sessions": 5_000}


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(tmp_path):
    cfg = simulator.profile_config("tiny")
    a = _files(simulator.generate(cfg, tmp_path / "a"))
    b = _files(simulator.generate(cfg, tmp_path / "b"))
    assert a == b
    c = _files(simulator.generate(simulator.profile_config("tiny", seed=1), tmp_path / "c"))
    assert c["stickers.jsonl"] != a["stickers.jsonl"]


def test_card_records_every_knob_and_checksum(tiny):
    config = tiny.card["generator"]["config"]
    for knob in ("n_stickers", "seed", "personalization", "intent_noise", "paraphrase_rate", "annotation_noise"):
        assert knob in config
    assert set(tiny.card["files"]) >= {"stickers.jsonl", "clicks.jsonl", "sim/queries.jsonl"}


@pytest.mark.parametrize("profile", ["tiny", "default"])
def test_counts_and_ratios_match_the_profile(profile):
    ds = catalog.resolve("wechat-sim", profile)
    cfg = simulator.PROFILES[profile]
    counts = ds.card["counts"]
    assert counts["stickers"] == cfg.n_stickers
    assert counts["train_pairs"] == cfg.train_pairs
    assert counts["train_unique_queries"] == cfg.train_unique_queries
    assert counts["test_pairs"] == cfg.test_pairs
    assert counts["test_unique_queries"] == cfg.test_unique_queries
    train_ratio = counts["train_triplets"] / counts["train_pairs"]
    test_ratio = counts["test_triplets"] / counts["test_pairs"]
    assert train_ratio == pytest.approx(cfg.train_relevant_mean, rel=0.15)
    assert test_ratio == pytest.approx(cfg.test_relevant_mean, rel=0.15)
    assert len({s.ip for s in ds.stickers if s.ip}) > cfg.n_ips // 4
    assert len({s.style for s in ds.stickers}) == cfg.n_styles
    assert any(not s.ocr for s in ds.stickers) and any(not s.ip for s in ds.stickers)


def test_training_intents_are_noisy_annotations_and_test_has_none(tmp_path):
    truth_of = {}
    folder = simulator.generate(simulator.profile_config("tiny", annotation_noise=0.0), tmp_path / "clean")
    for line in (folder / "sim/queries.jsonl").read_text().splitlines():
        row = json.loads(line)
        truth_of[row["qid"]] = tuple(row["intents"])
    clean = load_dataset(folder)
    assert all(q.intents == truth_of[q.qid] for q in clean.train_queries)
    assert all(sorted(q.intents) == sorted(PROPERTIES) for q in clean.train_queries)
    noisy = load_dataset(simulator.generate(simulator.profile_config("tiny"), tmp_path / "noisy"))
    agree = np.mean([q.intents == truth_of[q.qid] for q in noisy.train_queries])
    assert 0.2 < agree < 0.9  # annotation_noise=0.2 perturbs many rankings, not all
    assert not (tmp_path / "noisy/queries/test.jsonl").read_text().count("intents")


def test_relevant_sets_depend_on_the_group_only_with_personalization():
    flat = simulator.relevance_overlap(simulator.profile_config("tiny", personalization=0.0))
    personal = simulator.relevance_overlap(simulator.profile_config("tiny"))
    # strength 0: two users of different groups agree as much as two of the same group
    assert abs(flat["within"] - flat["across"]) < 0.06
    # default strength: the same query from another group has a visibly different relevant set
    assert personal["across"] < 0.6 * personal["within"]


def test_same_query_from_two_groups_has_different_relevant_sets(tiny):
    groups_of = {}
    for q in tiny.test_pairs:
        group = tiny.users[q.user_id].group
        groups_of.setdefault(q.text, []).append((group, set(tiny.test_qrels[q.qid])))
    shared = [v for v in groups_of.values() if len({g for g, _ in v}) > 1]
    assert shared, "the generator repeats queries for users of other groups"
    for pairs in shared:
        assert pairs[0][1] != pairs[1][1]


def _click_profile_overlap(ds) -> float:
    """Mean overlap of each group's top-30 clicked stickers with the global top-30."""
    everyone, per_group = Counter(), {}
    for c in ds.clicks:
        if c.clicked and ds.users[c.user_id].group:
            everyone[c.sticker_id] += 1
            per_group.setdefault(ds.users[c.user_id].group, Counter())[c.sticker_id] += 1
    top = {s for s, _ in everyone.most_common(30)}
    return float(np.mean([len(top & {s for s, _ in c.most_common(30)}) / 30 for c in per_group.values()]))


def test_upop_matches_gpop_without_personalization(tmp_path):
    flat = catalog.resolve("wechat-sim", "tiny", overrides={"personalization": 0.0, **POWER})
    personal = catalog.resolve("wechat-sim", "tiny", overrides=POWER)
    assert _click_profile_overlap(flat) > _click_profile_overlap(personal) + 0.08
    harness.run_all([GPop, UPop], {}, flat, 1, tmp_path, progress=False)
    scores = {s.name: s.per_query for s in tables.collect(tmp_path, flat)}
    for metric in ("mrr@10", "recall@20"):
        g, u = scores["gpop"][metric].to_numpy(), scores["upop"][metric].to_numpy()
        assert permutation_test(u, g) > 0.05, metric
        assert abs(u.mean() - g.mean()) < 0.03
