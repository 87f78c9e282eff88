"""Sticker images: deterministic renders for simulated datasets, files for real ones.

wechat-sim stickers have property texts but no pictures. :func:`render` draws one from the
sticker's properties alone, so an image never tells a system more than the texts it already sees:

* **ip** -> a character whose *signature* (body shape and colour, ears or horns, eyes, an
  accessory, a belly patch) is drawn from sha256 of the IP name: every sticker of an IP shows
  the same character. No IP, no character: the entity icon takes its place.
* **entity** -> an icon in the top-right corner; its shape comes from the head noun (the last
  word) and its colour from the whole name, so "tiny duck" and "duck" share a shape.
* **meaning** -> the character's mouth.
* **style** ``"<treatment> <medium>"`` -> the treatment recolours and textures: pastel lightens,
  neon saturates and glows on a dark background, vintage/retro turn sepia, grainy/gritty add
  noise, dreamy blurs, bold/chunky thicken lines, cute/kawaii blush, minimalist/flat drop
  shading (flat drops outlines too), glossy adds highlights, sketchy draws jittered pencil
  lines. The medium changes the drawing: pixel art is drawn on a third-size canvas and
  enlarged with nearest neighbours, line art is ink on white, watercolor is washed out on
  paper, 3d render and clay are shaded, comic has halftone dots and thick lines, doodle
  wobbles, photo meme sits on a photo-like background under an outlined caption, text card
  makes the text dominant and the character small. The background tint comes from the hash of
  the whole style string; unknown words (real data) keep that neutral look.
* **ocr** -> the text, word-wrapped and shrunk to fit a high-contrast band at the bottom, drawn
  after every effect so that it stays legible. Empty OCR, no text.

Every random choice comes from a generator seeded by sha256 of strings. The glyphs come from
the scalable font bundled with Pillow (``ImageFont.load_default(size=...)``), so the pixels are
reproducible for a pinned Pillow version.

:class:`StickerImages` serves a dataset's images: the files named by the stickers' ``image``
field (real data), or renders cached as PNG under ``<project>/.cache/images/`` for wechat-sim
(recognised by its card's generator module). :func:`images_for` returns None for a dataset
with neither, e.g. StickerQueries.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import PIL
from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps
from tqdm import tqdm

from benchmark.io import atomic_open
from benchmark.paths import cache_dir
from benchmark.records import Sticker

if TYPE_CHECKING:
    from benchmark.dataset import Dataset

RGB = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
WHITE, BLACK, INK = (255, 255, 255), (0, 0, 0), (34, 30, 40)
SIMULATOR_MODULE = "benchmark.simulator"
"""``card["generator"]["module"]`` of a wechat-sim dataset: its stickers are rendered."""
RENDERER = hashlib.sha256(Path(__file__).read_bytes() + PIL.__version__.encode()).hexdigest()[:10]
"""Version of the drawing code and Pillow: part of the cache path, so old renders are never reused."""

# --------------------------------------------------------------------------- colours and looks


def _rng(*parts: str) -> np.random.Generator:
    """A generator seeded by sha256 of the strings (never Python's salted ``hash``)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def _hsv(h: float, s: float, v: float) -> RGB:
    return tuple(round(255 * c) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))  # type: ignore[return-value]


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))  # type: ignore[return-value]


# Each treatment/medium sets fields of _Look; a style applies its medium, then its treatment words.
_TREATMENTS: dict[str, dict] = {
    "cute": {"blush": True},
    "kawaii": {"blush": True, "sparkles": True},
    "pastel": {"lighten": 0.5},
    "neon": {"neon": True, "effects": ("glow",)},
    "retro": {"effects": ("retro",)},
    "vintage": {"effects": ("sepia", "vignette")},
    "grainy": {"effects": ("grain",)},
    "gritty": {"effects": ("grit",)},
    "dreamy": {"lighten": 0.2, "effects": ("dream",)},
    "bold": {"line": 3.0},
    "chunky": {"line": 4.5, "scale": 1.12},
    "minimalist": {"flat": True, "line": 1.0, "plain": True},
    "flat": {"flat": True, "line": 0.0},
    "glossy": {"gloss": True},
    "sketchy": {"wobble": 0.008, "strokes": 2, "pencil": True, "line": 1.0},
}
_MEDIA: dict[str, dict] = {
    "cartoon": {"line": 2.0},
    "pixel art": {"line": 1.0, "pixel": True},
    "3d render": {"line": 0.0, "shaded": True, "gloss": True, "shadow": True, "effects": ("soft",)},
    "line art": {"line": 2.0, "lineart": True},
    "watercolor": {"line": 0.0, "lighten": 0.3, "wobble": 0.01, "effects": ("wash", "paper")},
    "clay": {"line": 0.0, "shaded": True, "wobble": 0.008, "shadow": True, "effects": ("clay",)},
    "doodle": {"line": 2.0, "wobble": 0.014},
    "photo meme": {"line": 1.0, "photo": True},
    "comic": {"line": 3.0, "effects": ("halftone",)},
    "text card": {"line": 2.0, "card": True},
}


@dataclass(frozen=True)
class _Look:
    """How a style draws: colours, lines, shading and the image effects applied in order."""

    hue: float
    line: float = 2.0  # outline width on a 96 px canvas; 0 = none
    lighten: float = 0.0
    wobble: float = 0.0  # jitter of outline points, as a fraction of the canvas
    strokes: int = 1
    scale: float = 1.0
    neon: bool = False
    blush: bool = False
    sparkles: bool = False
    flat: bool = False
    plain: bool = False
    gloss: bool = False
    pencil: bool = False
    pixel: bool = False
    shaded: bool = False
    shadow: bool = False
    lineart: bool = False
    photo: bool = False
    card: bool = False
    effects: tuple[str, ...] = ()

    @property
    def background(self) -> RGB:
        if self.neon:
            return _hsv(self.hue, 0.7, 0.13)
        if self.lineart or self.plain:
            return (252, 252, 250)
        return _mix(_hsv(self.hue, 0.45 if self.card else 0.14, 0.97), WHITE, self.lighten)

    def paint(self, colour: RGB) -> RGB:
        """The fill of a body part: saturated for neon, lightened for pastel and washes."""
        if self.neon:
            h, s, _ = colorsys.rgb_to_hsv(*(c / 255 for c in colour))
            colour = _hsv(h, max(s, 0.8), 1.0)
        return _mix(colour, WHITE, self.lighten)

    def ink(self, colour: RGB | None = None) -> RGB:
        """The line colour around a part of ``colour`` (None: for a detail such as a mouth)."""
        if self.neon:
            return _mix(colour, WHITE, 0.6) if colour else (16, 14, 24)
        if self.pencil:
            return (78, 76, 88)
        if self.lineart and colour:
            return _mix(colour, BLACK, 0.6)
        return INK


@lru_cache(maxsize=1024)
def _look(style: str) -> _Look:
    """Parse ``"<treatment> <medium>"``; unknown words fall back to the neutral look."""
    text = " ".join(style.lower().split())
    medium = next((m for m in _MEDIA if text == m or text.endswith(" " + m)), "")
    params = {"effects": (), "line": 1.0 + int(_rng("line", text).integers(2))}
    treatments = text[: len(text) - len(medium)].split()
    for part in [_MEDIA.get(medium, {})] + [_TREATMENTS.get(word, {}) for word in treatments]:
        for key, value in part.items():
            if key == "effects":
                params[key] += value
            else:
                params[key] = max(params.get(key, 0), value) if key in ("lighten", "wobble") else value
    if params.get("flat"):
        params.update(shaded=False, gloss=False)
    if params.get("lineart"):
        params["line"] = max(params["line"], 1.0)
    return _Look(hue=float(_rng("style", text).random()), **params)


# --------------------------------------------------------------------------- shapes


def _blob(rx: float, ry: float, power: float = 2.0, taper: float = 0.0, n: int = 28) -> np.ndarray:
    """A superellipse (power 2: ellipse, 1: diamond, >2: rounded box); taper > 0 widens the bottom."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    x = np.sign(c) * np.abs(c) ** (2 / power) * rx
    y = np.sign(s) * np.abs(s) ** (2 / power) * ry
    return np.stack([x * (1 + taper * y), y], axis=1)


def _circle(x: float, y: float, r: float, ry: float | None = None) -> np.ndarray:
    return _blob(r, r if ry is None else ry, n=16) + (x, y)


def _star(points: int, inner: float) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 2 * points, endpoint=False) - np.pi / 2
    r = np.where(np.arange(2 * points) % 2, inner, 1.0)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


_T = np.linspace(0, 2 * np.pi, 24, endpoint=False)
_CROSS = np.array([(0.3, -1), (0.3, -0.3), (1, -0.3), (1, 0.3), (0.3, 0.3), (0.3, 1)])
_ICONS = (  # entity icon outlines in a unit box
    _blob(1, 1),  # disc
    _blob(0.8, 1, power=1),  # diamond
    _star(3, 0.5)[::2] * 1.2 + (0, 0.2),  # triangle
    _star(5, 0.45),  # star
    np.stack([np.sin(_T) ** 3, (3 - 13 * np.cos(_T) + 5 * np.cos(2 * _T) + 2 * np.cos(3 * _T)
                                + np.cos(4 * _T)) / 16], 1),  # heart
    _star(3, 1.0),  # hexagon
    np.stack([0.9 * np.sin(_T) * np.sin(_T / 2) ** 1.5, -np.cos(_T)], 1),  # drop
    np.concatenate([_CROSS, -_CROSS]),
)


@dataclass(frozen=True)
class _Character:
    """An IP's visual signature."""

    colour: RGB
    accent: RGB
    body: tuple[float, float, float, float]  # x radius, y radius, superellipse power, taper
    ears: int
    eyes: int
    accessory: int
    belly: bool


@lru_cache(maxsize=4096)
def _character(ip: str) -> _Character:
    r = _rng("ip", ip)
    hue = r.random()
    return _Character(
        colour=_hsv(hue, r.uniform(0.4, 0.8), r.uniform(0.75, 0.95)),
        accent=_hsv(hue + r.uniform(0.3, 0.7), 0.8, 0.9),
        body=(r.uniform(0.85, 1.05), r.uniform(0.8, 1.0), float(r.choice([2.0, 2.0, 2.6, 4.0])),
              r.uniform(-0.2, 0.25)),
        ears=int(r.integers(6)), eyes=int(r.integers(5)), accessory=int(r.integers(6)),
        belly=bool(r.random() < 0.5),
    )


class _Painter:
    """Draws unit-box shapes at a place of a square canvas with a look's fills, lines and jitter."""

    def __init__(self, image: Image.Image, look: _Look, rng: np.random.Generator):
        self.draw, self.look, self.rng, self.side = ImageDraw.Draw(image), look, rng, image.width
        self.width = max(1, round(look.line * image.width / 96)) if look.line else 0
        self.origin, self.radius = np.zeros(2), 1.0

    def at(self, x: float, y: float, r: float) -> _Painter:
        """Place the next shapes: unit coordinates around canvas point (x, y), radius r (fractions)."""
        self.origin, self.radius = np.array([x, y]), r
        return self

    def _px(self, pts: np.ndarray, jitter: bool = True) -> list[tuple[float, float]]:
        pts = (self.origin + pts * self.radius) * self.side
        if jitter and self.look.wobble:
            noise = self.rng.normal(0, self.look.wobble * self.side, pts.shape)
            pts = pts + (noise + np.roll(noise, 1, 0) + np.roll(noise, -1, 0)) / 1.5
        return [tuple(p) for p in pts.tolist()]

    def part(self, pts: np.ndarray, colour: RGB) -> None:
        """A body part or icon: filled per the medium, then outlined."""
        look, fill = self.look, self.look.paint(colour)
        if look.lineart:
            self.draw.polygon(self._px(pts), fill=look.background)
        elif look.shaded:
            centre = (pts.max(0) + pts.min(0)) / 2
            for k, tone in ((1.0, _mix(fill, BLACK, 0.3)), (0.8, fill), (0.45, _mix(fill, WHITE, 0.35))):
                shift = (1 - k) * (pts.max(0) - pts.min(0)) * 0.3
                self.draw.polygon(self._px(centre + (pts - centre) * k - shift, jitter=False), fill=tone)
        else:
            self.draw.polygon(self._px(pts), fill=fill)
        for _ in range(look.strokes if self.width else 0):
            px = self._px(pts)
            self.draw.line(px + px[:1], fill=look.ink(colour), width=self.width, joint="curve")

    def detail(self, pts: np.ndarray, colour: RGB | None = None) -> None:
        """A small filled detail (eye, blush, highlight); None: the look's ink."""
        self.draw.polygon(self._px(pts, jitter=False), fill=colour or self.look.ink())

    def stroke(self, pts: np.ndarray, closed: bool = False) -> None:
        """A line in the look's ink (mouth, closed eyes, antenna, glasses)."""
        px = self._px(pts, jitter=False)
        width = max(1, self.width, round(self.side / 60))
        self.draw.line(px + px[:1] if closed else px, fill=self.look.ink(), width=width, joint="curve")


def _arc(x: float, y: float, w: float, h: float) -> np.ndarray:
    """A parabola through (x - w, y), (x, y + h), (x + w, y): h > 0 smiles."""
    t = np.linspace(-1, 1, 7)
    return np.stack([x + w * t, y + h * (1 - t**2)], axis=1)


def _draw_ears(p: _Painter, ch: _Character) -> None:
    inner = _mix(ch.colour, (255, 150, 170), 0.5)
    for side in (-1, 1):
        if ch.ears == 1:
            p.part(_circle(0.62 * side, -0.7, 0.3), ch.colour)
            p.detail(_circle(0.62 * side, -0.7, 0.14), inner)
        elif ch.ears == 2:
            p.part(np.array([(0.15 * side, -0.8), (0.8 * side, -0.35), (0.7 * side, -1.2)]), ch.colour)
        elif ch.ears == 3:
            p.part(_circle(0.36 * side, -1.15, 0.17, 0.48), ch.colour)
            p.detail(_circle(0.36 * side, -1.12, 0.07, 0.32), inner)
        elif ch.ears == 4:
            p.part(np.array([(0.25 * side, -0.8), (0.6 * side, -0.65), (0.8 * side, -1.35)]), (235, 225, 200))
        elif ch.ears == 5:
            p.stroke(np.array([(0.25 * side, -0.8), (0.45 * side, -1.3)]))
            p.part(_circle(0.45 * side, -1.3, 0.12), ch.accent)


def _draw_eyes(p: _Painter, ch: _Character) -> None:
    if ch.eyes == 4:
        p.detail(_circle(0, -0.2, 0.3), WHITE)
        p.detail(_circle(0.05, -0.17, 0.15))
        return
    for side in (-1, 1):
        x = 0.36 * side
        if ch.eyes == 0:
            p.detail(_circle(x, -0.15, 0.1))
        elif ch.eyes == 1:
            p.detail(_circle(x, -0.18, 0.2, 0.22), WHITE)
            p.detail(_circle(x + 0.04, -0.15, 0.12))
            p.detail(_circle(x, -0.21, 0.045), WHITE)
        elif ch.eyes == 2:
            p.detail(_circle(x, -0.15, 0.07, 0.14))
        else:
            p.stroke(_arc(x, -0.1, 0.14, -0.12))


def _draw_mouth(p: _Painter, meaning: str) -> None:
    kind = int(_rng("mouth", meaning).integers(5))
    if kind == 0:
        p.stroke(_arc(0, 0.2, 0.2, 0.12))
    elif kind == 1:
        p.detail(np.concatenate([_arc(0, 0.15, 0.2, 0.25), [(0.2, 0.15)]]), (150, 40, 60))
    elif kind == 2:
        p.stroke(_arc(0, 0.3, 0.18, -0.1))
    elif kind == 3:
        p.stroke(np.concatenate([_arc(-0.1, 0.2, 0.1, 0.08), _arc(0.1, 0.2, 0.1, 0.08)]))
    else:
        p.detail(_circle(0, 0.25, 0.08, 0.1), (150, 40, 60))


def _draw_accessory(p: _Painter, ch: _Character) -> None:
    top = -ch.body[1]
    if ch.accessory == 1:  # bow
        for side in (-1, 1):
            x = 0.55 + 0.3 * side
            p.part(np.array([(0.55, top + 0.1), (x, top - 0.08), (x, top + 0.28)]), ch.accent)
    elif ch.accessory == 2:  # beanie
        p.part(np.concatenate([_blob(0.62, 0.5, n=16)[8:] + (0, top + 0.18), [(0.65, top + 0.18)]]), ch.accent)
        p.part(_circle(0, top - 0.36, 0.12), WHITE)
    elif ch.accessory == 3:  # glasses
        for side in (-1, 1):
            p.stroke(_circle(0.36 * side, -0.15, 0.22), closed=True)
        p.stroke(np.array([(-0.14, -0.17), (0.14, -0.17)]))
    elif ch.accessory == 4:  # scarf
        p.part(np.array([(-0.8, 0.42), (0.8, 0.42), (0.75, 0.6), (-0.75, 0.6)]), ch.accent)
        p.part(np.array([(0.3, 0.5), (0.55, 0.5), (0.6, 0.95), (0.35, 0.9)]), ch.accent)
    elif ch.accessory == 5:  # crown
        xs = np.linspace(-0.4, 0.4, 5)
        zigzag = [(x, top - (0.35 if i % 2 == 0 else 0.12)) for i, x in enumerate(xs)]
        p.part(np.array([(-0.4, top + 0.12), *zigzag, (0.4, top + 0.12)]), (245, 200, 50))


def _draw_character(p: _Painter, ch: _Character, meaning: str) -> None:
    look = p.look
    if look.shadow:
        p.detail(_circle(0, ch.body[1] + 0.05, 0.8, 0.14), _mix(look.background, BLACK, 0.25))
    _draw_ears(p, ch)
    p.part(_blob(ch.body[0], ch.body[1], ch.body[2], ch.body[3]), ch.colour)
    if ch.belly and not look.flat:
        p.detail(_circle(0, 0.42 * ch.body[1], 0.45, 0.33), _mix(look.paint(ch.colour), WHITE, 0.5))
    _draw_eyes(p, ch)
    _draw_mouth(p, meaning)
    if look.blush:
        for side in (-1, 1):
            p.detail(_circle(0.58 * side, 0.08, 0.14, 0.08), (255, 135, 160))
    _draw_accessory(p, ch)
    if look.gloss:
        p.detail(_circle(-0.45, -0.5, 0.15, 0.09), WHITE)
    if look.sparkles:
        for x, y, r in ((1.05, -0.85, 0.22), (-1.1, 0.25, 0.16)):
            p.detail(_star(4, 0.35) * r + (x, y), (255, 235, 120))


def _draw_icon(p: _Painter, entity: str) -> None:
    """The entity's icon: the shape of its head noun, the colour of its whole name."""
    shape = _ICONS[int(_rng("icon", entity.split()[-1]).integers(len(_ICONS)))]
    colour = _hsv(_rng("entity", entity).random(), 0.7, 0.9)
    p.part(shape, colour)
    if not p.look.flat:
        p.detail(shape * 0.4 + (-0.15, -0.15), _mix(p.look.paint(colour), WHITE, 0.5))


# --------------------------------------------------------------------------- image effects


def _noise(a: np.ndarray, rng: np.random.Generator, std: float) -> np.ndarray:
    return a + rng.normal(0, std, a.shape[:2])[..., None]


def _sepia(a: np.ndarray, amount: float) -> np.ndarray:
    matrix = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])
    return a + (a @ matrix.T - a) * amount


def _halftone(a: np.ndarray) -> np.ndarray:
    period = max(3, round(a.shape[0] / 19)) | 1
    yy, xx = np.mgrid[: a.shape[0], : a.shape[1]] % period - period // 2
    light = (a @ (0.299, 0.587, 0.114)) / 255
    dots = np.hypot(xx, yy) / (period / 2) < 0.3 + (1 - light)
    return np.where(dots[..., None], a * 0.62, a)


def _low_frequency(side: int, rng: np.random.Generator, cells: int = 6) -> np.ndarray:
    """Smooth noise in [0, 1] (blobs about side / cells wide), shape (side, side, 3)."""
    small = Image.fromarray(rng.integers(0, 256, (cells, cells, 3), dtype=np.uint8))
    return np.asarray(small.resize((side, side), Image.Resampling.BICUBIC), dtype=np.float64) / 255


def _effect(image: Image.Image, name: str, rng: np.random.Generator) -> Image.Image:
    """Apply one named effect of a look (see ``_TREATMENTS`` and ``_MEDIA``)."""
    k = image.width / 96
    if name in ("soft", "wash", "dream"):
        image = image.filter(ImageFilter.GaussianBlur({"soft": 0.7, "wash": 0.8, "dream": 1.1}[name] * k))
        pink = Image.new("RGB", image.size, (255, 228, 245))
        return Image.blend(image, pink, 0.15) if name == "dream" else image
    if name == "glow":
        return Image.blend(image, image.filter(ImageFilter.GaussianBlur(2.5 * k)), 0.3)
    if name == "retro":
        image = ImageOps.posterize(image, 3)
    a = np.asarray(image, dtype=np.float64)
    if name == "retro":
        a = _sepia(a, 0.5)
    elif name == "sepia":
        a = _sepia(a, 1.0) * 0.85 + np.array([240, 225, 200]) * 0.15
    elif name == "vignette":
        yy, xx = (np.mgrid[: a.shape[0], : a.shape[1]] / a.shape[0]) - 0.5
        a = a * (1 - 0.9 * (xx**2 + yy**2))[..., None]
    elif name == "grain":
        a = _noise(a, rng, 14)
    elif name == "grit":
        a = _noise((a - 128) * 1.3 + 110, rng, 26)
    elif name == "clay":
        a = _noise(a, rng, 5) * (0.94 + 0.06 * _low_frequency(a.shape[0], rng, 12))
    elif name == "paper":
        a = _noise(a * (0.9 + 0.1 * _low_frequency(a.shape[0], rng).mean(2, keepdims=True)), rng, 4)
    elif name == "halftone":
        a = _halftone(a)
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def _photo(side: int, look: _Look, rng: np.random.Generator) -> Image.Image:
    """A photo-like background: sky-to-ground gradient, blurry blobs and sensor noise."""
    t = np.linspace(0, 1, side)[:, None, None]
    top, bottom = np.array(_hsv(look.hue, 0.3, 0.85)), np.array(_hsv(look.hue + 0.15, 0.45, 0.5))
    a = (top * (1 - t) + bottom * t) * 0.7 + _low_frequency(side, rng) * 255 * 0.3
    return Image.fromarray(np.clip(_noise(a, rng, 6), 0, 255).astype(np.uint8))


# --------------------------------------------------------------------------- text


@lru_cache(maxsize=64)
def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def _wrap(words: list[str], font: Font, width: float) -> list[str]:
    """Greedy word wrap (a word wider than ``width`` gets a line of its own)."""
    lines: list[str] = []
    for word in words:
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def _shorten(line: str, font: Font, width: float) -> str:
    """``line``, cut and ended with ".." if it is wider than ``width``."""
    if font.getlength(line) <= width:
        return line
    while line and font.getlength(line + "..") > width:
        line = line[:-1]
    return line.rstrip() + ".."


def _fit(text: str, width: float, height: float, largest: int, smallest: int = 7) -> tuple[Font, list[str], int]:
    """The largest font (and its wrapped lines and line height) fitting the text in a box;
    at the smallest size, extra lines are dropped and long ones shortened."""
    words = text.split()
    for size in range(largest, smallest - 1, -1):
        font, line_height = _font(size), math.ceil(size * 1.1)
        lines = _wrap(words, font, width)
        if len(lines) * line_height <= height and all(font.getlength(line) <= width for line in lines):
            return font, lines, line_height
    kept = lines[: max(1, int(height // line_height))]
    if len(kept) < len(lines):
        kept[-1] += " .."
    return font, [_shorten(line, font, width) for line in kept], line_height


def _draw_text(image: Image.Image, text: str, look: _Look) -> None:
    """The OCR text: a band at the bottom, a meme caption, or the body of a text card."""
    side, draw = image.width, ImageDraw.Draw(image)
    stroke, stroke_fill = 0, None
    if look.card:
        box, largest = (0.06, 0.05, 0.94, 0.64), round(0.22 * side)
        fill = INK if np.dot(look.background, (0.299, 0.587, 0.114)) > 140 else WHITE
    elif look.photo:
        box, largest = (0.03, 0.7, 0.97, 0.98), round(0.17 * side)
        fill, stroke, stroke_fill = WHITE, max(1, side // 48), BLACK
    else:
        box, largest = (0.06, 0.72, 0.94, 0.97), round(0.15 * side)
        band, fill = ((14, 12, 20), _mix(_hsv(look.hue, 1, 1), WHITE, 0.5)) if look.neon else \
            ((252, 252, 250), (20, 18, 24))
        draw.rounded_rectangle((2, round(0.7 * side), side - 3, side - 3), radius=side // 12, fill=band)
    x0, y0, x1, y1 = (v * side for v in box)
    font, lines, line_height = _fit(text, x1 - x0 - 2 * stroke, y1 - y0, largest)
    top = (y0 + y1) / 2 - len(lines) * line_height / 2
    for i, line in enumerate(lines):
        draw.text(((x0 + x1) / 2, top + (i + 0.5) * line_height), line, font=font, fill=fill, anchor="mm",
                  stroke_width=stroke, stroke_fill=stroke_fill)


# --------------------------------------------------------------------------- rendering


_LAYOUTS = {  # text placement -> (character x, y, radius), (icon x, y, radius)
    "band": ((0.42, 0.4, 0.22), (0.84, 0.15, 0.1)),
    "photo": ((0.45, 0.4, 0.24), (0.84, 0.15, 0.1)),
    "card": ((0.25, 0.82, 0.13), (0.8, 0.84, 0.1)),
    "none": ((0.44, 0.55, 0.28), (0.84, 0.16, 0.11)),
}


def render(sticker: Sticker, size: int = 96) -> Image.Image:
    """Draw a sticker from its properties (same properties, same pixels).

    Args:
        sticker: the sticker; its ``id`` and ``image`` are ignored.
        size: side of the square image in pixels.

    Returns:
        An RGB image of ``size`` x ``size``.
    """
    look = _look(sticker.style)
    rng = _rng("paint", sticker.ip, sticker.entity, sticker.style, sticker.meaning, sticker.ocr)
    text = sticker.ocr.strip()
    side = max(8, size // 3) if look.pixel else size
    image = _photo(side, look, rng) if look.photo else Image.new("RGB", (side, side), look.background)
    layout = "none" if not text else "card" if look.card else "photo" if look.photo else "band"
    body, icon = _LAYOUTS[layout]
    painter = _Painter(image, look, rng)
    if sticker.ip:
        painter.at(body[0], body[1], body[2] * look.scale)
        _draw_character(painter, _character(sticker.ip), sticker.meaning)
    else:
        icon = (body[0], body[1], body[2] * 0.9)
    if sticker.entity.strip():
        _draw_icon(painter.at(*icon), sticker.entity)
    for name in look.effects:
        image = _effect(image, name, rng)
    if look.pixel:
        image = image.resize((size, size), Image.Resampling.NEAREST)
    if text:
        _draw_text(image, text, look)
    return image


def encode_png(image: Image.Image) -> bytes:
    """A small PNG of an image: a 64-colour median-cut palette, no dithering."""
    buffer = io.BytesIO()
    image.quantize(64, dither=Image.Dither.NONE).save(buffer, format="PNG")
    return buffer.getvalue()


def contact_sheet(images: Sequence[Image.Image], captions: Sequence[str], columns: int) -> Image.Image:
    """A grid of images on white, each with its caption (lines split at ``"\\n"``) below it.

    Args:
        images: the images (of any sizes; each cell fits the largest).
        captions: one caption per image.
        columns: images per row.
    """
    pad, font, line_height = 6, _font(11), 13
    width, height = max(i.width for i in images), max(i.height for i in images)
    lines = max(c.count("\n") + 1 for c in captions)
    cell_w, cell_h = width + pad, height + pad + lines * line_height + 2
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * cell_w + pad, rows * cell_h + pad), WHITE)
    draw = ImageDraw.Draw(sheet)
    for i, (image, caption) in enumerate(zip(images, captions)):
        x, y = pad + (i % columns) * cell_w, pad + (i // columns) * cell_h
        sheet.paste(image.convert("RGB"), (x, y))
        for j, line in enumerate(caption.split("\n")):
            draw.text((x + width / 2, y + height + 3 + j * line_height), _shorten(line, font, cell_w - 2),
                      font=font, fill=(40, 40, 40), anchor="ma")
    return sheet


# --------------------------------------------------------------------------- dataset images


class ImageError(Exception):
    """A sticker's image cannot be loaded; ``str(err)`` is one line naming the sticker and the path."""


class StickerImages:
    """The images of one dataset's stickers, by sticker id.

    A sticker with an ``image`` field is read from that file (relative to the dataset folder).
    With a ``cache`` folder (simulated datasets), any other sticker is rendered on its first
    request and kept there as a PNG; later requests read the file. Use :func:`images_for`.
    """

    def __init__(self, stickers: Iterable[Sticker], folder: Path, cache: Path | None = None, size: int = 96):
        self._stickers = {s.id: s for s in stickers}
        self.folder, self.cache, self.size = Path(folder), cache, size

    def __repr__(self) -> str:
        return f"StickerImages({len(self._stickers)} stickers, folder={self.folder}, cache={self.cache})"

    def path(self, sticker_id: str) -> Path:
        """Where the sticker's image is (or will be, once rendered)."""
        sticker = self._stickers.get(sticker_id)
        if sticker is None:
            raise ImageError(f"unknown sticker id {sticker_id!r}")
        if sticker.image:
            return self.folder / sticker.image
        if self.cache is None:
            raise ImageError(f"sticker {sticker_id!r} has no image (no 'image' field, not a simulated dataset)")
        name = sticker_id if re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", sticker_id) else \
            "id-" + hashlib.sha256(sticker_id.encode()).hexdigest()[:16]
        return self.cache / f"{name}.png"

    def load(self, sticker_id: str) -> Image.Image:
        """The sticker's image as RGB (rendered and cached first if needed).

        Raises:
            ImageError: unknown sticker, no image, or an image file missing or unreadable.
        """
        path, sticker = self.path(sticker_id), self._stickers[sticker_id]
        if not path.is_file():
            if sticker.image:
                raise ImageError(f"sticker {sticker_id!r}: image file not found: {path}")
            with atomic_open(path, "wb", durable=False) as f:  # a cache: rebuilt if lost
                f.write(encode_png(render(sticker, self.size)))
        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except OSError as e:  # includes PIL.UnidentifiedImageError
            raise ImageError(f"sticker {sticker_id!r}: cannot read image {path}: {e}") from None

    def load_many(self, sticker_ids: Iterable[str], progress: bool = False) -> list[Image.Image]:
        """:meth:`load` for each id, in order, with an optional progress bar on stderr."""
        ids = list(sticker_ids)
        bar = tqdm(ids, desc="sticker images", unit="img", disable=not progress, leave=False)
        return [self.load(sticker_id) for sticker_id in bar]


def images_for(dataset: Dataset, size: int = 96) -> StickerImages | None:
    """The images of a dataset, or None if it has none (neither simulated nor ``image`` fields).

    Renders of a simulated dataset are cached under
    ``<project>/.cache/images/<dataset fingerprint>/<RENDERER>-<size>/``.
    """
    generator = dataset.card.get("generator")
    simulated = isinstance(generator, dict) and generator.get("module") == SIMULATOR_MODULE
    if not simulated and not any(s.image for s in dataset.stickers):
        return None
    cache = cache_dir() / "images" / dataset.fingerprint / f"{RENDERER}-{size}" if simulated else None
    return StickerImages(dataset.stickers, dataset.path, cache, size)
