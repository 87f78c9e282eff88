"""The dataset format: round trip, validation messages, checksums, train/test isolation and the
``bench data validate`` command.

Every validation case starts from a small, valid dataset written with ``write_dataset``,
corrupts exactly one line of one file, re-signs the card (so the checksum check passes and the
intended problem is the one reported) and checks that the :class:`DatasetError` is a single
line naming that file and that line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Callable, Iterator, Mapping

import pytest

from benchmark.dataset import TestQuery as StoredTestQuery  # aliased: pytest would try to collect it
from benchmark.dataset import load_dataset, write_dataset
from benchmark.io import DatasetError
from benchmark.records import Click, Query, Sticker, TrainingData, TrainQuery, User
from conftest import bench

# --------------------------------------------------------------------------- a small dataset

CARD = {"name": "mini", "version": "1", "licence": "CC0", "source": "tests/test_dataset.py"}
STICKERS = (
    Sticker("s1", ocr="hello", meaning="greeting", image="img/s1.png"),
    Sticker("s2", ip="Doge", entity="dog", style="cartoon"),
    Sticker("s3", meaning="sad"),
    Sticker("s4", ocr="good night", style="photo"),
)
USERS = (
    User("u1", "20-29", "female", ("s1", "s2")),
    User("u2", "45-59", "male", ("s3",)),
)
TRAIN = (
    TrainQuery("q-tr-1", "u1", "hi there", ("ocr", "meaning")),
    TrainQuery("q-tr-2", "u2", "so sad"),
    TrainQuery("q-tr-3", None, "cute dog", ("ip",)),
)
TEST = (
    StoredTestQuery("q-te-1", "u1", "hello friend"),
    StoredTestQuery("q-te-2", "u2", "good night"),
)
# qrels/train.tsv lines: 1 q-tr-1 s1 | 2 q-tr-2 s3 | 3 q-tr-2 s4 | 4 q-tr-3 s2
TRAIN_QRELS = {"q-tr-1": {"s1": 1}, "q-tr-2": {"s3": 1, "s4": 0}, "q-tr-3": {"s2": 2}}
# qrels/test.tsv lines: 1 q-te-1 s1 | 2 q-te-2 s3 | 3 q-te-2 s4
TEST_QRELS = {"q-te-1": {"s1": 1}, "q-te-2": {"s3": 0, "s4": 1}}
CLICKS = (
    Click("u1", "hi there", "s1", 1, True),
    Click("u1", "hi there", "s2", 2, False),
    Click("u2", "so sad", "s3", 1, True),
)


def build(folder: Path) -> Path:
    """Write the small dataset above into ``folder``."""
    return write_dataset(folder, CARD, STICKERS, USERS, TRAIN, TEST, TRAIN_QRELS, TEST_QRELS, CLICKS)


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return build(tmp_path / "mini")


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included), by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- corrupting helpers


def resign(folder: Path) -> None:
    """Recompute the card's checksums so that only the content problem remains."""
    card_path = folder / "dataset.json"
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["files"] = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in card["files"]}
    card_path.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def set_line(path: Path, number: int, new: str | bytes) -> None:
    """Replace line ``number`` (1-based) of a file; ``number`` one past the end appends."""
    lines = path.read_bytes().splitlines()
    assert 1 <= number <= len(lines) + 1, f"{path} has {len(lines)} lines"
    raw = new.encode("utf-8") if isinstance(new, str) else new
    lines[number - 1:number] = [raw]
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def line_of(path: Path, number: int) -> str:
    return path.read_bytes().splitlines()[number - 1].decode("utf-8")


def patch_row(path: Path, number: int, **changes) -> None:
    """Update fields of the JSON object on line ``number`` of a JSON Lines file."""
    row = json.loads(line_of(path, number))
    row.update(changes)
    set_line(path, number, json.dumps(row))


Mutation = Callable[[Path], None]


def patch(rel: str, number: int, **changes) -> Mutation:
    return lambda folder: patch_row(folder / rel, number, **changes)


def replace(rel: str, number: int, new: str | bytes) -> Mutation:
    return lambda folder: set_line(folder / rel, number, new)


def duplicate(rel: str, source: int, number: int) -> Mutation:
    return lambda folder: set_line(folder / rel, number, line_of(folder / rel, source))


# (id, file, line, mutation, a fragment of the message)
CASES = [
    ("duplicate-sticker-id", "stickers.jsonl", 5, duplicate("stickers.jsonl", 2, 5), "duplicate sticker id"),
    ("qrels-unknown-sticker", "qrels/train.tsv", 3, replace("qrels/train.tsv", 3, "q-tr-2 0 s99 1"),
     "unknown sticker id 's99'"),
    ("qrels-unknown-qid", "qrels/train.tsv", 2, replace("qrels/train.tsv", 2, "q-nope 0 s3 1"),
     "unknown qid 'q-nope'"),
    ("test-qrels-name-train-qid", "qrels/test.tsv", 2, replace("qrels/test.tsv", 2, "q-tr-1 0 s3 1"),
     "unknown qid 'q-tr-1'"),
    ("test-unknown-user", "queries/test.jsonl", 2, patch("queries/test.jsonl", 2, user_id="u9"),
     "unknown user_id 'u9'"),
    ("empty-query-text", "queries/train.jsonl", 2, patch("queries/train.jsonl", 2, text="  \t "),
     "empty query text"),
    ("invalid-utf8", "users.jsonl", 2, replace("users.jsonl", 2, b'{"id":"u2","gender":"m\xe9le"}'),
     "invalid UTF-8"),
    ("invalid-json", "clicks.jsonl", 2, replace("clicks.jsonl", 2, '{"user_id": "u1", "query": '),
     "invalid JSON"),
    ("wrong-type", "stickers.jsonl", 3, patch("stickers.jsonl", 3, ocr=3), "'ocr' has the wrong type"),
    ("unknown-field", "users.jsonl", 1, patch("users.jsonl", 1, nickname="bob"), "unknown field"),
    ("history-unknown-sticker", "users.jsonl", 2, patch("users.jsonl", 2, history=["s3", "s42"]),
     "unknown sticker 's42'"),
    ("history-non-string", "users.jsonl", 1, patch("users.jsonl", 1, history=[["s1"]]), "history"),
    ("bad-age-group", "users.jsonl", 1, patch("users.jsonl", 1, age_group="18-25"), "age_group '18-25'"),
    ("test-query-without-relevant", "queries/test.jsonl", 2, replace("qrels/test.tsv", 3, "q-te-2 0 s4 0"),
     "no relevant sticker"),
    ("qrels-three-columns", "qrels/train.tsv", 4, replace("qrels/train.tsv", 4, "q-tr-3 0 s2"),
     "expected 4 columns"),
    ("qrels-non-integer", "qrels/train.tsv", 1, replace("qrels/train.tsv", 1, "q-tr-1 0 s1 1.5"),
     "not an integer"),
    ("intents-in-test", "queries/test.jsonl", 1, patch("queries/test.jsonl", 1, intents=["ocr"]),
     "unknown field(s) 'intents'"),
    ("unknown-intent", "queries/train.jsonl", 3, patch("queries/train.jsonl", 3, intents=["ip", "colour"]),
     "intents must be"),
]


def corrupt(folder: Path, mutate: Mutation) -> Path:
    mutate(folder)
    resign(folder)
    return folder


def load_error(folder: Path, **kwargs) -> DatasetError:
    with pytest.raises(DatasetError) as info:
        load_dataset(folder, **kwargs)
    return info.value


# --------------------------------------------------------------------------- round trip


def test_round_trip_gives_back_equal_records(good: Path):
    ds = load_dataset(good)
    assert ds.name == "mini"
    assert ds.stickers == STICKERS
    assert ds.users == {u.id: u for u in USERS}
    assert ds.train_queries == TRAIN
    assert ds.test_pairs == TEST
    assert ds.train_qrels == TRAIN_QRELS
    assert ds.test_qrels == TEST_QRELS
    assert ds.clicks == CLICKS
    assert ds.card["counts"]["test_pairs"] == len(TEST)
    assert ds.card["counts"]["train_triplets"] == 3  # relevance 0 is not a triplet


def test_fingerprint_is_stable_and_follows_the_data(good: Path, tmp_path: Path):
    first = load_dataset(good).fingerprint
    assert load_dataset(good).fingerprint == first
    assert load_dataset(build(tmp_path / "again")).fingerprint == first
    corrupt(good, patch("stickers.jsonl", 1, ocr="hello there"))
    assert load_dataset(good).fingerprint != first


def test_writing_twice_gives_identical_bytes(good: Path, tmp_path: Path):
    before = snapshot(good)
    assert snapshot(build(tmp_path / "other")) == before
    build(good)  # overwriting in place
    assert snapshot(good) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("rel, line, mutate, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_corrupted_file_is_reported_with_file_and_line(good: Path, rel, line, mutate, fragment):
    err = load_error(corrupt(good, mutate))
    message = str(err)
    assert "\n" not in message
    assert err.path == good / rel
    assert err.line == line
    assert message.startswith(f"{good / rel}:{line}: ")
    assert fragment in message


@pytest.mark.parametrize("rel, line, mutate, fragment", [c[1:] for c in CASES[:4]], ids=[c[0] for c in CASES[:4]])
def test_same_error_without_checksum_verification(good: Path, rel, line, mutate, fragment):
    mutate(good)  # card not re-signed
    err = load_error(good, verify_checksums=False)
    assert (err.path, err.line) == (good / rel, line)
    assert fragment in str(err)


@pytest.mark.parametrize("rel", ["stickers.jsonl", "qrels/test.tsv", "clicks.jsonl"])
def test_checksum_mismatch_names_the_changed_file(good: Path, rel: str):
    path = good / rel
    path.write_bytes(path.read_bytes() + b"\n")  # harmless content change, card left as is
    err = load_error(good)
    assert err.path == path
    assert str(err).startswith(f"{path}: ")
    assert "checksum" in str(err)
    assert "\n" not in str(err)
    load_dataset(good, verify_checksums=False)  # the content itself is fine


def test_file_listed_in_card_but_missing(good: Path):
    (good / "clicks.jsonl").unlink()
    err = load_error(good)
    assert err.path == good / "clicks.jsonl"
    assert "missing" in str(err)


# --------------------------------------------------------------------------- isolation


def strings_in(obj) -> Iterator[str]:
    """Every string reachable from ``obj`` through dataclasses, mappings and sequences."""
    if isinstance(obj, str):
        yield obj
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from strings_in(getattr(obj, f.name))
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from strings_in(key)
            yield from strings_in(value)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for item in obj:
            yield from strings_in(item)


def test_training_data_holds_no_test_qid(tiny):
    test_qids = {q.qid for q in tiny.test_pairs}
    assert test_qids
    training = tiny.training_data()
    assert isinstance(training, TrainingData)
    assert not test_qids & {q.qid for q in training.queries}
    assert not test_qids & set(training.qrels)
    assert not test_qids & set(strings_in(training))


def test_test_queries_expose_only_qid_user_text(tiny):
    queries = tiny.test_queries()
    assert [q.qid for q in queries] == sorted(q.qid for q in tiny.test_pairs)
    for q in queries:
        assert type(q) is Query
        assert [f.name for f in dataclasses.fields(q)] == ["qid", "user", "text"]
        assert q.user is None or isinstance(q.user, User)


# --------------------------------------------------------------------------- the CLI


def test_cli_validate_accepts_a_good_folder(good: Path):
    result = bench("data", "validate", str(good))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: mini ")


CLI_CASES = [c for c in CASES if c[0] in ("duplicate-sticker-id", "invalid-utf8", "test-query-without-relevant")]


@pytest.mark.parametrize("rel, line, mutate, fragment", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli_validate_reports_one_line_and_changes_nothing(good: Path, rel, line, mutate, fragment):
    corrupt(good, mutate)
    before = snapshot(good)
    result = bench("data", "validate", str(good))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert f"{good / rel}:{line}:" in lines[0]
    assert fragment in lines[0]
    assert snapshot(good) == before
