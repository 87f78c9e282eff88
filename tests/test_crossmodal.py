"""Cross-modal systems: CLIP batches and training, CN-CLIP/StickerCLIP end to end, PerSRV's
utility, recall fields and style-cluster rerank against hand computations, and "not
applicable" on datasets without images."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from benchmark import harness, tables
from benchmark.records import Click, Query, Sticker, TrainingData, TrainQuery, User
from systems.base import NotApplicable
from systems.clip import CLIP, CLIPConfig, caption, contrastive_train, distinct_batches
from systems.crossmodal import CNCLIP, StickerCLIP, StickerCLIPConfig
from systems.popularity import GPop
from systems.persrv import PerSRV, PerSRVConfig, StyleClusters, field_documents, style_clusters, utility_metrics

SMALL = {"image_size": 32, "patch_size": 8, "width": 64, "layers": 1, "embed_dim": 32, "context_length": 16,
         "pretrain_epochs": 2.0, "batch_size": 32, "warmup": 2, "threads": 1}


# --------------------------------------------------------------------------- CLIP


def test_caption_describes_the_picture_not_the_meaning():
    s = Sticker("s1", ocr="good morning", ip="kermit", entity="cup", style="pastel pixel art", meaning="greeting")
    assert caption(s) == 'a pastel pixel art sticker of kermit with a cup saying "good morning"'
    assert "greeting" not in caption(s)
    assert caption(Sticker("s2")) == "a plain sticker"


def test_distinct_batches_never_repeat_a_text_or_a_sticker_and_cover_an_epoch():
    pairs = [("q1", "a"), ("q1", "b"), ("q2", "a"), ("q3", "c"), ("q4", "d"), ("q2", "e")]
    for seed in range(5):
        batches = distinct_batches(pairs, batch_size=3, rng=np.random.default_rng(seed))
        for batch in batches:
            assert len({pairs[i][0] for i in batch}) == len({pairs[i][1] for i in batch}) == len(batch)
            assert 1 <= len(batch) <= 3
        assert sorted(i for b in batches for i in b) == list(range(len(pairs)))


def _batch_loss(clip: CLIP, pairs, images) -> float:
    import open_clip
    import torch

    with torch.no_grad():
        image = clip.model.encode_image(clip.pixels(images.load_many([s for _, s in pairs])), normalize=True)
        text = clip.model.encode_text(clip.tokenizer([t for t, _ in pairs]), normalize=True)
        return float(open_clip.loss.ClipLoss()(image, text, clip.model.logit_scale.exp()))


def test_stickerclip_finetuning_lowers_its_contrastive_loss(tiny):
    data = tiny.training_data()
    text = {q.qid: q.text for q in data.queries}
    pairs, used_t, used_s = [], set(), set()
    for qid in sorted(data.qrels):
        for sid in sorted(data.qrels[qid]):
            if text[qid] not in used_t and sid not in used_s:
                pairs.append((text[qid], sid))
                used_t.add(text[qid])
                used_s.add(sid)
    clip = CLIP.create(CLIPConfig(**SMALL))
    held = pairs[:32]
    before = _batch_loss(clip, held, data.images)
    contrastive_train(clip, held, data.images, steps=30, lr=2e-3, warmup=2, batch_size=32, seed=0, progress=False)
    assert _batch_loss(clip, held, data.images) < before - 0.5


def test_clip_initialisation_and_training_are_deterministic(tiny):
    data = tiny.training_data()
    pairs = [(caption(s), s.id) for s in sorted(data.stickers, key=lambda s: s.id)[:64]]
    weights = []
    for _ in range(2):
        clip = CLIP.create(CLIPConfig(**SMALL), seed=3)
        contrastive_train(clip, pairs, data.images, steps=3, lr=1e-3, warmup=1, batch_size=32, seed=3, progress=False)
        weights.append(clip.model.state_dict())
    assert all(np.array_equal(weights[0][k].numpy(), weights[1][k].numpy()) for k in weights[0])
    first, other = (CLIP.create(CLIPConfig(**SMALL), seed=s).model.state_dict()["visual.conv1.weight"] for s in (3, 4))
    assert not np.array_equal(first.numpy(), other.numpy())


# --------------------------------------------------------------------------- systems on the tiny profile


@pytest.mark.parametrize("cls, config", [(CNCLIP, CLIPConfig(**SMALL)),
                                         (StickerCLIP, StickerCLIPConfig(**SMALL, finetune_epochs=1.0))])
def test_clip_systems_rank_stickers_on_the_tiny_profile(tiny, tmp_path, cls, config):
    outcome = harness.run_system(cls, config, 0, tiny, tmp_path, k=20, progress=False)
    assert outcome.status == "done", outcome.error
    run = harness.read_run(harness.run_paths(tmp_path, cls.card.name, 0)[0])
    assert len(run) == len(tiny.test_pairs) and all(len(r) == 20 for r in run.values())


def test_cross_modal_systems_are_not_applicable_without_images(tiny, tmp_path):
    data = replace(tiny.training_data(), images=None)
    for cls in (CNCLIP, StickerCLIP, PerSRV):
        with pytest.raises(NotApplicable, match="has no sticker images"):
            cls(cls.Config(), 0).fit(data, tmp_path / cls.card.name)


# --------------------------------------------------------------------------- PerSRV by hand


def _data(clicks=(), stickers=None) -> TrainingData:
    stickers = stickers or (Sticker("a", ocr="good morning", meaning="greeting"), Sticker("b", ocr="thanks"))
    users = {"u1": User("u1"), "u2": User("u2")}
    return TrainingData("t", "f", tuple(stickers), users, (TrainQuery("q1", "u1", "gm"),), {"q1": {"a": 1}},
                        tuple(clicks))


def test_utility_metrics_count_clicks_users_and_queries():
    clicks = [Click("u1", "gm", "a", 1, True), Click("u1", "gm", "a", 1, True), Click("u2", "morning", "a", 2, True),
              Click("u2", "gm", "b", 1, False), Click("u2", "thx", "b", 3, True)]
    metrics = utility_metrics(_data(clicks))
    assert metrics["popularity"] == {"a": 3.0, "b": 1.0}
    assert metrics["cross_user"] == {"a": 2.0, "b": 1.0}
    assert metrics["query"] == {"a": 2.0, "b": 1.0}


def test_recall_fields_are_ocr_clicked_queries_and_meaning():
    clicks = [Click("u1", "rise and shine", "a", 1, True), Click("u1", "ignored", "b", 2, False)]
    fields = field_documents(_data(clicks))
    assert fields["ocr"] == {"a": "good morning", "b": "thanks"}
    assert fields["queries"] == {"a": "rise and shine", "b": ""}
    assert fields["description"] == {"a": "greeting", "b": ""}
    assert field_documents(_data())["queries"] == {"a": "gm", "b": ""}  # no click log: training qrels


def test_style_rerank_matches_a_hand_computation():
    clusters = StyleClusters(mean=np.array([1.0, 0.0]), scale=np.array([2.0, 1.0]),
                             centroids=np.array([[1.0, 0.0], [0.0, 1.0]]), radii=np.array([0.5, 2.0]))
    vectors = np.array([[3.0, 0.2],    # standardized (1, 0.2): within both clusters
                        [1.0, -1.0],   # (0, -1): within cluster 2 only (distance 2), cos -1 -> no gain
                        [9.0, 9.0]])   # far from both
    scores = np.array([2.0, 1.0, 5.0])
    out = clusters.rerank(scores, vectors, weight=0.3)
    x = np.array([1.0, 0.2])
    cos1 = x @ [1, 0] / np.linalg.norm(x)
    cos2 = x @ [0, 1] / np.linalg.norm(x)
    assert out[0] == pytest.approx(2.0 * (1 + 0.3 * max(cos1, cos2)))
    assert out[1] == pytest.approx(1.0)
    assert out[2] == pytest.approx(5.0)


def test_style_clusters_standardize_candidates_like_the_history():
    rng = np.random.default_rng(0)
    history = rng.normal(loc=50.0, scale=10.0, size=(12, 4))
    clusters = style_clusters(history, k=3, seed=0)
    assert len(clusters.centroids) == 3
    x = clusters.standardize(history)
    member = np.argmin(np.linalg.norm(x[:, None] - clusters.centroids[None], axis=2), axis=1)
    assert np.allclose(clusters.radii, [np.linalg.norm(x[member == c] - clusters.centroids[c], axis=1).max()
                                        for c in range(3)])
    # a history sticker lies within its own cluster, so a positive score can only grow
    boosted = clusters.rerank(np.ones(len(history)), history, weight=0.3)
    assert np.all(boosted >= 1.0) and np.any(boosted > 1.0)
    assert style_clusters(history[:1], k=5, seed=0) is None


def test_persrv_end_to_end_on_the_tiny_profile(tiny, tmp_path):
    config = PerSRVConfig(**SMALL, pool=200)
    outcome = harness.run_system(PerSRV, config, 0, tiny, tmp_path, k=20, progress=False)
    assert outcome.status == "done", outcome.error
    run = harness.read_run(harness.run_paths(tmp_path, "persrv", 0)[0])
    assert len(run) == len(tiny.test_pairs)
    # a query made of a sticker's OCR text recalls that sticker first among equals
    data = tiny.training_data()
    target = next(s for s in sorted(data.stickers, key=lambda s: s.id) if s.ocr)
    fitted = PerSRV(config, 0)
    folder = tmp_path / "fit"
    folder.mkdir()
    fitted.fit(data, folder)
    fitted.load(folder)
    ranking = fitted.search([Query("x", None, target.ocr)], 20)[0]
    assert target.id in [s for s, _ in ranking]
    assert math.isfinite(ranking[0][1])


class _CNCLIPWithoutImages(CNCLIP):
    """CN-CLIP handed a dataset view without images (as on StickerQueries)."""

    card = replace(CNCLIP.card, name="cn-clip-without-images")

    def fit(self, data, artifacts):
        super().fit(replace(data, images=None), artifacts)


def test_not_applicable_runs_show_as_such_in_the_tables(tiny, tmp_path):
    harness.run_system(GPop, None, 0, tiny, tmp_path, progress=False)
    outcome = harness.run_system(_CNCLIPWithoutImages, CLIPConfig(**SMALL), 0, tiny, tmp_path, progress=False)
    assert outcome.status == "n/a" and "no sticker images" in outcome.error
    files = {f.name[len("table1"):]: f.read_text() for f in tables.write_table1(tmp_path, tiny) if f.name.startswith("table1")}
    assert "| Cross-modal | CN-CLIP | n/a | n/a |" in files[".md"]
    assert f"n/a: not applicable ({tiny.name} has no sticker images)" in files[".md"]
    assert "CN-CLIP & n/a" in files[".tex"]
    assert ",cn-clip-without-images,CN-CLIP,0,n/a," in files[".csv"]
    assert "GPop" in files[".md"]  # the applicable rows are unaffected
