"""StickerQueries (Chee et al. 2025, MIT licence) converted into the StickerBench format.

The release is one CSV: ``sticker_id`` (an image file name) and ``labeled_queries`` (the
comma-separated queries people wrote for that sticker). There are no users, click logs or
properties. Conversion:

* a query string is normalized (lower case, single spaces) and deduplicated;
* the unique strings are split, seeded, into training and test strings (``test_fraction``);
  a sticker whose strings all fell into the test side gets back the one shared by the fewest
  stickers, so every sticker keeps some training text;
* every string is one qid (no user) whose relevant stickers are all stickers annotated with it.

The CSV is read from where it lies; the converted folder goes to the git-ignored ``datasets/``.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path

import numpy as np

from benchmark.dataset import TestQuery, write_dataset
from benchmark.io import DatasetError, sha256_file
from benchmark.records import Sticker, TrainQuery

NAME = "sticker-queries"
CSV_NAME = "sticker_queries_en_release.csv"
CONVERTER_VERSION = "1"


def normalize(text: str) -> str:
    """Lower-case and collapse whitespace."""
    return re.sub(r"\s+", " ", text).strip().lower()


def read_csv(path: Path) -> dict[str, list[str]]:
    """sticker id (file name without extension) -> its normalized, distinct query strings.

    Raises:
        DatasetError: bad UTF-8, a wrong header, an empty or duplicate sticker id, or a sticker
            without any query, with the CSV line.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(path, None, "file not found") from None
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        start = bom + e.start
        raise DatasetError(path, data[:start].count(b"\n") + 1, f"invalid UTF-8 at byte {start}") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header != ["sticker_id", "labeled_queries"]:
        raise DatasetError(path, 1, f"expected header 'sticker_id,labeled_queries', got {header}")
    stickers: dict[str, list[str]] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise DatasetError(path, line, f"expected 2 columns, got {len(row)}")
        sid = Path(row[0].strip()).stem
        if not sid or any(c.isspace() for c in sid):
            raise DatasetError(path, line, f"invalid sticker_id {row[0]!r}")
        if sid in stickers:
            raise DatasetError(path, line, f"duplicate sticker_id {row[0]!r}")
        queries = list(dict.fromkeys(q for q in (normalize(x) for x in row[1].split(",")) if q))
        if not queries:
            raise DatasetError(path, line, "sticker has no query")
        stickers[sid] = queries
    if not stickers:
        raise DatasetError(path, None, "no stickers")
    return stickers


def split_strings(stickers: dict[str, list[str]], test_fraction: float, seed: int) -> set[str]:
    """The query strings held out for test (see the module docstring)."""
    strings = sorted({q for qs in stickers.values() for q in qs})
    order = np.random.default_rng(seed).permutation(len(strings))
    test = {strings[i] for i in order[: round(test_fraction * len(strings))]}
    owners: dict[str, int] = {}
    for qs in stickers.values():
        for q in qs:
            owners[q] = owners.get(q, 0) + 1
    for sid in sorted(stickers):
        if all(q in test for q in stickers[sid]):
            test.discard(min(stickers[sid], key=lambda q: (owners[q], q)))
    return test


def convert(csv_path: Path, folder: Path, test_fraction: float = 0.2, seed: int = 0) -> Path:
    """Convert the StickerQueries CSV into a dataset folder; return the folder."""
    csv_path = Path(csv_path)
    if csv_path.is_dir():
        csv_path = csv_path / CSV_NAME
    stickers = read_csv(csv_path)
    test_strings = split_strings(stickers, test_fraction, seed)
    relevant: dict[str, list[str]] = {}
    for sid in sorted(stickers):
        for q in stickers[sid]:
            relevant.setdefault(q, []).append(sid)
    train = [q for q in sorted(relevant) if q not in test_strings]
    test = [q for q in sorted(relevant) if q in test_strings]
    wt, ws = len(str(len(train))), len(str(len(test)))
    train_qids = {q: f"train-{i:0{wt}d}" for i, q in enumerate(train)}
    test_qids = {q: f"test-{i:0{ws}d}" for i, q in enumerate(test)}
    card = {
        "name": NAME,
        "version": CONVERTER_VERSION,
        "licence": "MIT",
        "source": "StickerQueries (Chee et al. 2025), metildachee/sticker-queries, "
        "dataset/sticker_queries_en_release.csv",
        "source_sha256": sha256_file(csv_path),
        "generator": {"module": "benchmark.sticker_queries", "config": {"test_fraction": test_fraction, "seed": seed}},
        "notes": "No users, click logs or sticker properties; a sticker's text is its training queries.",
    }
    return write_dataset(
        folder,
        card,
        stickers=[Sticker(id=sid) for sid in sorted(stickers)],
        users=[],
        train_queries=[TrainQuery(train_qids[q], None, q) for q in train],
        test_pairs=[TestQuery(test_qids[q], None, q) for q in test],
        train_qrels={train_qids[q]: {s: 1 for s in relevant[q]} for q in train},
        test_qrels={test_qids[q]: {s: 1 for s in relevant[q]} for q in test},
    )
