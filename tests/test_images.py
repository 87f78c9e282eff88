"""Sticker images: deterministic renders that carry the sticker's properties, the lazy PNG cache
of simulated datasets, image files of real datasets, and "no images" for the others."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark import images, simvocab
from benchmark.dataset import TestQuery as StoredTestQuery  # aliased: pytest would try to collect it
from benchmark.dataset import load_dataset, write_dataset
from benchmark.images import ImageError, StickerImages, encode_png, images_for, render
from benchmark.records import Sticker, TrainQuery

SIM_CARD = {"name": "sim-mini", "version": "1", "licence": "CC0", "source": "tests/test_images.py",
            "generator": {"module": "benchmark.simulator", "config": {"seed": 0}}}
PLAIN_CARD = {"name": "plain-mini", "version": "1", "licence": "CC0", "source": "tests/test_images.py",
              "generator": {"module": "benchmark.sticker_queries", "config": {}}}
STICKER = Sticker("s1", ocr="good morning friends", ip="doraemon", entity="tiny duck", style="cute cartoon",
                  meaning="good morning")


def pixels(sticker: Sticker, **changes) -> np.ndarray:
    """The render of ``sticker`` with some properties changed, as a float array (H, W, 3)."""
    return np.asarray(render(replace(sticker, **changes)), dtype=float)


def write(folder: Path, card: dict, stickers: list[Sticker]) -> Path:
    """A minimal valid dataset holding ``stickers``."""
    train, test = [TrainQuery("q1", None, "hi")], [StoredTestQuery("q2", None, "hello")]
    qrels = {"q1": {stickers[0].id: 1}}, {"q2": {stickers[0].id: 1}}
    return write_dataset(folder, card, stickers, [], train, test, *qrels)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STICKERBENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


# --------------------------------------------------------------------------- rendering


def test_render_is_deterministic_and_sized():
    first, second = render(STICKER), render(STICKER)
    assert first.mode == "RGB" and first.size == (96, 96)
    assert encode_png(first) == encode_png(second)
    assert render(STICKER, size=160).size == (160, 160)


def test_every_simulator_style_word_has_its_own_look():
    assert set(simvocab.STYLE_TREATMENTS) <= set(images._TREATMENTS)
    assert set(simvocab.STYLE_MEDIA) <= set(images._MEDIA)


def dominant_colour(a: np.ndarray) -> tuple[int, ...]:
    """The most frequent colour of the character's body region (a box around its centre)."""
    region = a[30:45, 30:50].reshape(-1, 3).astype(int)
    colours, counts = np.unique(region, axis=0, return_counts=True)
    return tuple(colours[counts.argmax()])


def test_an_ip_keeps_its_signature_and_ips_differ():
    plain = Sticker("s", ip="pikachu", entity="cat", style="flat cartoon", meaning="happy", ocr="yay")
    same_ip = [pixels(plain), pixels(plain, entity="big dog", meaning="sad", ocr="so sad today")]
    assert dominant_colour(same_ip[0]) == dominant_colour(same_ip[1])
    others = [pixels(plain, ip=ip) for ip in ("doraemon", "snoopy", "hello kitty")]
    assert len({dominant_colour(a) for a in [same_ip[0], *others]}) == 4
    for other in others:
        assert np.abs(other - same_ip[0]).mean() > 5


def test_no_ip_draws_no_character():
    # the meaning only shapes the character's mouth: without an IP it changes nothing
    assert not np.array_equal(pixels(STICKER, meaning="happy"), pixels(STICKER, meaning="sad"))
    assert np.array_equal(pixels(STICKER, ip="", meaning="happy"), pixels(STICKER, ip="", meaning="sad"))


def test_ocr_text_is_drawn_legibly_in_the_band():
    hello, night = pixels(STICKER, ocr="hello there"), pixels(STICKER, ocr="good night everyone")
    changed = np.abs(hello - night).sum(axis=2) > 0
    band = slice(int(0.7 * 96), 96)
    assert not changed[: band.start].any()  # the picture above the band is the same
    assert changed[band].mean() > 0.05
    grey = hello[band].mean(axis=2)
    assert (grey < 80).sum() > 60 and (grey > 245).mean() > 0.5  # dark glyphs on a near-white band
    no_text = pixels(STICKER, ocr="")
    assert (no_text[band].mean(axis=2) > 245).mean() < 0.05  # no band without text


def changing_columns(a: np.ndarray) -> int:
    """How many columns of the picture (above the text band) differ from their left neighbour."""
    picture = a[: int(0.7 * 96)]
    return int((np.abs(np.diff(picture, axis=1)).sum(axis=(0, 2)) > 0).sum())


def test_pixel_art_is_blocky():
    pixel, cartoon = pixels(STICKER, style="cute pixel art"), pixels(STICKER, style="cute cartoon")
    assert changing_columns(pixel) <= 96 // 3
    assert changing_columns(cartoon) > 2 * changing_columns(pixel)


def test_unknown_style_falls_back_to_a_neutral_look():
    a, b = pixels(STICKER, style="photo"), pixels(STICKER, style="shiny sculpture")
    assert a.shape == (96, 96, 3) and np.abs(a - b).mean() > 0


# --------------------------------------------------------------------------- datasets


def test_simulated_dataset_renders_lazily_once(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    stickers = [STICKER, Sticker("s2", ip="snoopy", entity="cat", style="neon comic", meaning="hi")]
    dataset = load_dataset(write(tmp_path / "sim", SIM_CARD, stickers))
    served = dataset.training_data().images
    assert isinstance(served, StickerImages)
    path = served.path("s1")
    assert path.is_relative_to(home / ".cache" / "images" / dataset.fingerprint) and not path.exists()
    first = served.load_many(["s1", "s2"])
    assert path.read_bytes() == encode_png(render(STICKER))
    mtime = path.stat().st_mtime_ns
    monkeypatch.setattr(images, "render", lambda *a, **k: pytest.fail("rendered twice"))
    again = served.load("s1")
    assert path.stat().st_mtime_ns == mtime
    assert np.array_equal(np.asarray(again), np.asarray(first[0]))


def test_a_fresh_cache_gives_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = write(tmp_path / "sim", SIM_CARD, [STICKER])
    files = []
    for name in ("home-a", "home-b"):
        monkeypatch.setenv("STICKERBENCH_HOME", str(tmp_path / name))
        served = images_for(load_dataset(folder))
        served.load("s1")
        files.append(served.path("s1"))
    assert files[0] != files[1] and files[0].read_bytes() == files[1].read_bytes()


def test_dataset_without_images_has_none(home: Path, tmp_path: Path):
    dataset = load_dataset(write(tmp_path / "plain", PLAIN_CARD, [STICKER]))
    assert images_for(dataset) is None
    assert dataset.training_data().images is None


def test_real_image_files_are_loaded_and_a_missing_one_is_named(home: Path, tmp_path: Path):
    stickers = [Sticker("a", ocr="hi", image="img/a.png"), Sticker("b", image="img/b.png"), Sticker("c")]
    folder = write(tmp_path / "real", PLAIN_CARD, stickers)
    (folder / "img").mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(folder / "img" / "a.png")
    served = images_for(load_dataset(folder))
    assert served is not None
    assert served.load("a").getpixel((5, 5)) == (200, 10, 10)
    with pytest.raises(ImageError) as missing:
        served.load("b")
    message = str(missing.value)
    assert "'b'" in message and str(folder / "img" / "b.png") in message and "\n" not in message
    with pytest.raises(ImageError, match="'c' has no image"):
        served.load("c")
    assert not (home / ".cache" / "images").exists()
