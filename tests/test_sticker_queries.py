"""StickerQueries conversion: the split (no leakage, complete qrels, training text for every
sticker, determinism), CSV errors with their line, the real release (when it is shared
beside the checkout) and one end-to-end ``bench run`` on it.
"""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from benchmark.dataset import Dataset, load_dataset
from benchmark.io import DatasetError
from benchmark.sticker_queries import CSV_NAME, convert, read_csv
from conftest import ROOT, SHARED_STICKER_QUERIES, bench

REAL_CSV = SHARED_STICKER_QUERIES / CSV_NAME
needs_real_csv = pytest.mark.skipif(not REAL_CSV.is_file(), reason=f"{REAL_CSV} is not shared here")

# Overlapping queries, with mixed case, repeated and extra spaces, as people typed them.
ANNOTATIONS = {
    "a1.png": ["Happy", " thumbs up", "  Good   Job", "happy"],
    "b2.png": ["happy", "Sad face", "crying"],
    "c3.jpg": ["Crying", "tears", "SAD  face"],
    "d4.png": ["good job", "well done", "Thumbs Up"],
    "e5.png": ["sleepy", "good night", "bed time"],
    "f6.png": ["Good Night", "moon", "bed  time"],
    "g7.png": ["angry", "mad", "Angry Face"],
    "h8.png": ["hello", "hi", "Wave", " hello "],
}


def norm(text: str) -> str:
    return " ".join(text.split()).lower()


EXPECTED = {Path(name).stem: {norm(q) for q in qs} for name, qs in ANNOTATIONS.items()}
ALL_STRINGS = set().union(*EXPECTED.values())


def csv_text(annotations: dict[str, list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["sticker_id", "labeled_queries"])
    for name, queries in annotations.items():
        writer.writerow([name, ",".join(queries)])
    return out.getvalue()


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    path = tmp_path / "labels.csv"
    path.write_text(csv_text(ANNOTATIONS), encoding="utf-8")
    return path


def converted(csv_path: Path, folder: Path, seed: int = 0) -> Dataset:
    return load_dataset(convert(csv_path, folder, test_fraction=0.3, seed=seed))


def positives(qrels: dict[str, dict[str, int]], qid: str) -> set[str]:
    return {sid for sid, rel in qrels.get(qid, {}).items() if rel > 0}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- conversion


def test_every_normalized_string_is_one_query_on_one_side(small_csv: Path, tmp_path: Path):
    ds = converted(small_csv, tmp_path / "sq")
    train = [q.text for q in ds.train_queries]
    test = [q.text for q in ds.test_pairs]
    assert test, "the split held out nothing"
    assert not set(test) & set(train)
    assert sorted(train + test) == sorted(ALL_STRINGS)  # normalized, each exactly once
    assert {s.id for s in ds.stickers} == set(EXPECTED)
    assert all(q.user_id is None for q in ds.train_queries + ds.test_pairs)


def test_qrels_list_every_sticker_annotated_with_the_string(small_csv: Path, tmp_path: Path):
    ds = converted(small_csv, tmp_path / "sq")
    for pairs, qrels in ((ds.test_pairs, ds.test_qrels), (ds.train_queries, ds.train_qrels)):
        for q in pairs:
            expected = {sid for sid, strings in EXPECTED.items() if q.text in strings}
            assert positives(qrels, q.qid) == expected, q.text


def test_every_sticker_keeps_training_text(small_csv: Path, tmp_path: Path):
    training = converted(small_csv, tmp_path / "sq").training_data()
    assert set(training.train_queries_by_sticker()) == set(EXPECTED)
    docs = training.sticker_documents()
    assert set(docs) == set(EXPECTED)
    assert all(doc.strip() for doc in docs.values()), docs


def test_every_sticker_keeps_training_text_even_when_most_strings_are_held_out(small_csv: Path, tmp_path: Path):
    ds = load_dataset(convert(small_csv, tmp_path / "sq", test_fraction=0.95, seed=3))
    assert set(ds.training_data().train_queries_by_sticker()) == set(EXPECTED)


def test_same_seed_gives_identical_bytes(small_csv: Path, tmp_path: Path):
    first = convert(small_csv, tmp_path / "one", test_fraction=0.3, seed=0)
    second = convert(small_csv, tmp_path / "two", test_fraction=0.3, seed=0)
    assert snapshot(first) == snapshot(second)


def test_different_seed_gives_a_different_split(small_csv: Path, tmp_path: Path):
    held_out = [{q.text for q in converted(small_csv, tmp_path / f"s{seed}", seed).test_pairs} for seed in (0, 1)]
    assert held_out[0] != held_out[1]


# --------------------------------------------------------------------------- bad CSVs

HEADER = b"sticker_id,labeled_queries\n"
BAD_CSVS = [
    ("wrong-header", b"id,queries\na.png,hi\n", 1),
    ("duplicate-sticker-id", HEADER + b'a.png,"hi, hello"\nb.png,bye\na.jpg,"hey"\n', 4),
    ("empty-query-list", HEADER + b'a.png,"hi, hello"\nb.png," , ,"\nc.png,bye\n', 3),
    ("bad-utf8", HEADER + b'a.png,"hi, hello"\nb.png,"caf\xe9"\nc.png,bye\n', 3),
    ("bad-utf8-at-line-start", HEADER + b'a.png,hi\n\xffb.png,bye\n', 3),
    ("bad-utf8-after-bom", b"\xef\xbb\xbf" + HEADER + b'a.png,hi\n\xffb.png,bye\n', 3),
]


@pytest.mark.parametrize("content, line", [c[1:] for c in BAD_CSVS], ids=[c[0] for c in BAD_CSVS])
def test_bad_csv_names_its_line(tmp_path: Path, content: bytes, line: int):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DatasetError) as info:
        read_csv(path)
    err = info.value
    assert "\n" not in str(err)
    assert (err.path, err.line) == (path, line)
    assert str(err).startswith(f"{path}:{line}: ")
    with pytest.raises(DatasetError):
        convert(path, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_bom_is_accepted(tmp_path: Path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + csv_text(ANNOTATIONS).encode())
    assert {sid: set(qs) for sid, qs in read_csv(path).items()} == EXPECTED


# --------------------------------------------------------------------------- the real release


@needs_real_csv
def test_real_release_counts(tmp_path: Path):
    ds = load_dataset(convert(REAL_CSV, tmp_path / "sticker-queries"))
    assert len(ds.stickers) == 1115
    assert len({q.text for q in ds.train_queries}) + len({q.text for q in ds.test_pairs}) == 5108
    assert not {q.text for q in ds.train_queries} & {q.text for q in ds.test_pairs}


def test_repository_never_holds_the_csv():
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert not [line for line in listed.splitlines() if "sticker_queries_en_release" in line]


@needs_real_csv
def test_bench_run_on_sticker_queries(tmp_path: Path):
    res = tmp_path / "res"
    result = bench("run", "--systems", "gpop,bm25", "--dataset", "sticker-queries",
                   "--data-path", str(SHARED_STICKER_QUERIES), "--no-profile", "--results-dir", str(res))
    assert result.returncode == 0, result.stderr[-3000:]
    for suffix in ("csv", "md", "tex"):
        assert (res / f"table1.{suffix}").is_file()
    table = pd.read_csv(res / "table1.csv").set_index("model")
    assert set(table.index) == {"GPop", "BM25"}
    assert table.loc["BM25", "mrr@10"] > table.loc["GPop", "mrr@10"]
