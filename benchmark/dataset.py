"""The on-disk dataset format: writing, loading and validating a dataset folder.

Layout (DESIGN.md, "Data model")::

    dataset.json            card: name, version, licence, source, counts, sha256 of every file
    stickers.jsonl          id, ocr, ip, entity, style, meaning, image?
    users.jsonl             id, age_group, gender, history
    queries/train.jsonl     qid, user_id, text, intents?
    queries/test.jsonl      qid, user_id, text
    qrels/train.tsv         qid 0 sticker_id rel
    qrels/test.tsv
    clicks.jsonl            user_id, query, sticker_id, position, clicked   (optional)
    sim/                    simulator-only truth (optional; never given to systems)

Every problem found while loading raises :class:`~benchmark.io.DatasetError` whose message is
one line naming the file and line.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from benchmark.images import images_for
from benchmark.io import (
    DatasetError,
    read_json,
    read_jsonl,
    read_lines,
    replace_dir,
    sha256_file,
    write_json,
    write_jsonl,
    write_text,
)
from benchmark.records import (
    AGE_GROUPS,
    GENDERS,
    PROPERTIES,
    Click,
    Query,
    Sticker,
    TrainingData,
    TrainQuery,
    User,
)

CARD = "dataset.json"
DATA_FILES = (
    "stickers.jsonl",
    "users.jsonl",
    "queries/train.jsonl",
    "queries/test.jsonl",
    "qrels/train.tsv",
    "qrels/test.tsv",
)
OPTIONAL_FILES = ("clicks.jsonl",)
SPLITS = ("train", "test")


@dataclass(frozen=True)
class TestQuery:
    """A test user-query pair as stored on disk (the harness turns it into a Query)."""

    qid: str
    user_id: str | None
    text: str


@dataclass
class Dataset:
    """A loaded, validated dataset. Use :meth:`training_data` and :meth:`test_queries` to hand
    data to systems: the raw attributes include test qrels."""

    path: Path
    card: dict
    stickers: tuple[Sticker, ...]
    users: dict[str, User]
    train_queries: tuple[TrainQuery, ...]
    test_pairs: tuple[TestQuery, ...]
    train_qrels: dict[str, dict[str, int]]
    test_qrels: dict[str, dict[str, int]]
    clicks: tuple[Click, ...]

    @property
    def name(self) -> str:
        return self.card["name"]

    @property
    def fingerprint(self) -> str:
        """A short hash of every data file's checksum: identifies the exact data."""
        return fingerprint(self.card)

    def training_data(self) -> TrainingData:
        """The training side: what a system's ``fit`` may see (no test queries or qrels)."""
        return TrainingData(
            name=self.name,
            fingerprint=self.fingerprint,
            stickers=self.stickers,
            users=dict(self.users),
            queries=self.train_queries,
            qrels={q: dict(d) for q, d in self.train_qrels.items()},
            clicks=self.clicks,
            images=images_for(self),
        )

    def test_queries(self) -> list[Query]:
        """The test user-query pairs as :class:`Query` objects, in qid order."""
        return [
            Query(qid=q.qid, user=self.users.get(q.user_id) if q.user_id else None, text=q.text)
            for q in sorted(self.test_pairs, key=lambda q: q.qid)
        ]


def fingerprint(card: Mapping[str, Any]) -> str:
    """Short sha256 over the card's file checksums."""
    joined = "\n".join(f"{k} {v}" for k, v in sorted(card["files"].items()))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- writing


def write_dataset(
    folder: Path,
    card: dict,
    stickers: Iterable[Sticker],
    users: Iterable[User],
    train_queries: Iterable[TrainQuery],
    test_pairs: Iterable[TestQuery],
    train_qrels: Mapping[str, Mapping[str, int]],
    test_qrels: Mapping[str, Mapping[str, int]],
    clicks: Iterable[Click] = (),
    extra_jsonl: Mapping[str, Iterable[dict]] | None = None,
) -> Path:
    """Write a dataset folder atomically (built beside ``folder``, then renamed into place).

    ``card`` gets ``files`` (sha256 of every file) and ``counts`` filled in. ``extra_jsonl``
    adds further JSON Lines files (e.g. ``sim/truth.jsonl``), also checksummed.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{folder.name}.", dir=folder.parent))
    stickers, users, clicks = list(stickers), list(users), list(clicks)
    train_queries, test_pairs = list(train_queries), list(test_pairs)
    write_jsonl(tmp / "stickers.jsonl", (_sticker_row(s) for s in stickers))
    write_jsonl(tmp / "users.jsonl", (_user_row(u) for u in users))
    write_jsonl(tmp / "queries/train.jsonl", (_train_query_row(q) for q in train_queries))
    write_jsonl(tmp / "queries/test.jsonl", ({"qid": q.qid, "user_id": q.user_id, "text": q.text} for q in test_pairs))
    write_text(tmp / "qrels/train.tsv", _qrels_text(train_qrels))
    write_text(tmp / "qrels/test.tsv", _qrels_text(test_qrels))
    if clicks:
        write_jsonl(tmp / "clicks.jsonl", (
            {"user_id": c.user_id, "query": c.query, "sticker_id": c.sticker_id, "position": c.position,
             "clicked": c.clicked} for c in clicks))
    for name, rows in (extra_jsonl or {}).items():
        write_jsonl(tmp / name, rows)
    card = dict(card)
    card["files"] = {
        str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()
    }
    card["counts"] = {
        "stickers": len(stickers),
        "users": len(users),
        "train_pairs": len(train_queries),
        "train_unique_queries": len({q.text for q in train_queries}),
        "train_triplets": sum(1 for d in train_qrels.values() for r in d.values() if r > 0),
        "test_pairs": len(test_pairs),
        "test_unique_queries": len({q.text for q in test_pairs}),
        "test_triplets": sum(1 for d in test_qrels.values() for r in d.values() if r > 0),
        "clicks": len(clicks),
    }
    write_json(tmp / CARD, card)
    replace_dir(tmp, folder)
    return folder


def _sticker_row(s: Sticker) -> dict:
    row = {"id": s.id, **{p: getattr(s, p) for p in PROPERTIES}}
    if s.image is not None:
        row["image"] = s.image
    return row


def _user_row(u: User) -> dict:
    return {"id": u.id, "age_group": u.age_group, "gender": u.gender, "history": list(u.history)}


def _train_query_row(q: TrainQuery) -> dict:
    row: dict[str, Any] = {"qid": q.qid, "user_id": q.user_id, "text": q.text}
    if q.intents:
        row["intents"] = list(q.intents)
    return row


def _qrels_text(qrels: Mapping[str, Mapping[str, int]]) -> str:
    return "".join(
        f"{qid} 0 {sid} {rel}\n" for qid in sorted(qrels) for sid, rel in sorted(qrels[qid].items())
    )


# --------------------------------------------------------------------------- loading


def load_dataset(folder: Path, verify_checksums: bool = True) -> Dataset:
    """Load and validate a dataset folder.

    Raises:
        DatasetError: one line naming the file and line of the first problem found.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(folder, None, "dataset folder not found")
    card = _load_card(folder)
    if verify_checksums:
        _verify_checksums(folder, card)
    stickers = _load_stickers(folder / "stickers.jsonl")
    sticker_ids = {s.id for s in stickers}
    users = _load_users(folder / "users.jsonl", sticker_ids)
    train_queries = _load_queries(folder / "queries/train.jsonl", users, "train", set())
    test_pairs = _load_queries(
        folder / "queries/test.jsonl", users, "test", {q.qid for q in train_queries}
    )
    train_qrels = _load_qrels(folder / "qrels/train.tsv", {q.qid for q in train_queries}, sticker_ids)
    test_qrels = _load_qrels(folder / "qrels/test.tsv", {q.qid for q in test_pairs}, sticker_ids)
    _require_relevant(folder / "queries/test.jsonl", test_pairs, test_qrels)
    clicks_path = folder / "clicks.jsonl"
    clicks = _load_clicks(clicks_path, users, sticker_ids) if clicks_path.exists() else ()
    return Dataset(
        path=folder,
        card=card,
        stickers=stickers,
        users=users,
        train_queries=tuple(train_queries),  # type: ignore[arg-type]
        test_pairs=tuple(test_pairs),  # type: ignore[arg-type]
        train_qrels=train_qrels,
        test_qrels=test_qrels,
        clicks=clicks,
    )


def _load_card(folder: Path) -> dict:
    path = folder / CARD
    card = read_json(path)
    if not isinstance(card, dict):
        raise DatasetError(path, 1, "the card must be a JSON object")
    for key, kind in (("name", str), ("files", dict)):
        if not isinstance(card.get(key), kind):
            raise DatasetError(path, None, f"missing or invalid field {key!r}")
    for name in DATA_FILES:
        if name not in card["files"]:
            raise DatasetError(path, None, f"the card lists no checksum for {name}")
    return card


def _verify_checksums(folder: Path, card: dict) -> None:
    for name, expected in sorted(card["files"].items()):
        path = folder / name
        if not path.is_file():
            raise DatasetError(path, None, "file listed in dataset.json is missing")
        actual = sha256_file(path)
        if actual != expected:
            raise DatasetError(
                path, None, f"checksum mismatch: dataset.json says {expected[:12]}…, file has "
                f"{actual[:12]}… (the file changed after the card was written)"
            )


def _field(path: Path, line: int, row: dict, key: str, kind: type | tuple, required: bool = True) -> Any:
    if key not in row:
        if required:
            raise DatasetError(path, line, f"missing field {key!r}")
        return None
    value = row[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise DatasetError(path, line, f"field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _check_keys(path: Path, line: int, row: dict, allowed: set[str]) -> None:
    unknown = sorted(set(row) - allowed)
    if unknown:
        raise DatasetError(path, line, f"unknown field(s) {', '.join(map(repr, unknown))}")


def _load_stickers(path: Path) -> tuple[Sticker, ...]:
    seen: dict[str, int] = {}
    out = []
    allowed = {"id", "image", *PROPERTIES}
    for line, row in read_jsonl(path):
        _check_keys(path, line, row, allowed)
        sid = _nonempty_id(path, line, row, "id")
        if sid in seen:
            raise DatasetError(path, line, f"duplicate sticker id {sid!r} (first on line {seen[sid]})")
        seen[sid] = line
        props = {p: _field(path, line, row, p, str, required=False) or "" for p in PROPERTIES}
        image = _field(path, line, row, "image", (str, type(None)), required=False)
        out.append(Sticker(id=sid, image=image, **props))
    if not out:
        raise DatasetError(path, None, "no stickers")
    return tuple(out)


def _nonempty_id(path: Path, line: int, row: dict, key: str) -> str:
    value = _field(path, line, row, key, str)
    if not value.strip() or any(c.isspace() for c in value):
        raise DatasetError(path, line, f"field {key!r} must be a non-empty id without spaces")
    return value


def _load_users(path: Path, sticker_ids: set[str]) -> dict[str, User]:
    users: dict[str, User] = {}
    lines: dict[str, int] = {}
    for line, row in read_jsonl(path):
        _check_keys(path, line, row, {"id", "age_group", "gender", "history"})
        uid = _nonempty_id(path, line, row, "id")
        if uid in users:
            raise DatasetError(path, line, f"duplicate user id {uid!r} (first on line {lines[uid]})")
        age = _field(path, line, row, "age_group", (str, type(None)), required=False)
        gender = _field(path, line, row, "gender", (str, type(None)), required=False)
        if age is not None and age not in AGE_GROUPS:
            raise DatasetError(path, line, f"age_group {age!r} is not one of {', '.join(AGE_GROUPS)} or null")
        if gender is not None and gender not in GENDERS:
            raise DatasetError(path, line, f"gender {gender!r} is not one of {', '.join(GENDERS)} or null")
        history = _field(path, line, row, "history", list, required=False) or []
        for sid in history:
            if not isinstance(sid, str):
                raise DatasetError(path, line, f"history entries must be sticker ids, got {type(sid).__name__}")
            if sid not in sticker_ids:
                raise DatasetError(path, line, f"history names unknown sticker {sid!r}")
        users[uid], lines[uid] = User(uid, age, gender, tuple(history)), line
    return users


def _load_queries(
    path: Path, users: Mapping[str, User], split: str, other_qids: set[str]
) -> list[TrainQuery] | list[TestQuery]:
    allowed = {"qid", "user_id", "text"} | ({"intents"} if split == "train" else set())
    seen: dict[str, int] = {}
    out: list = []
    for line, row in read_jsonl(path):
        _check_keys(path, line, row, allowed)
        qid = _nonempty_id(path, line, row, "qid")
        if qid in seen:
            raise DatasetError(path, line, f"duplicate qid {qid!r} (first on line {seen[qid]})")
        if qid in other_qids:
            raise DatasetError(path, line, f"qid {qid!r} is also a training qid")
        seen[qid] = line
        uid = _field(path, line, row, "user_id", (str, type(None)), required=False)
        if uid is not None and uid not in users:
            raise DatasetError(path, line, f"unknown user_id {uid!r}")
        text = _field(path, line, row, "text", str)
        if not text.strip():
            raise DatasetError(path, line, "empty query text")
        if split == "test":
            out.append(TestQuery(qid, uid, text))
            continue
        intents = _field(path, line, row, "intents", list, required=False) or []
        if any(p not in PROPERTIES for p in intents) or len(set(intents)) != len(intents):
            raise DatasetError(path, line, f"intents must be distinct names among {', '.join(PROPERTIES)}")
        out.append(TrainQuery(qid, uid, text, tuple(intents)))
    return out


def _load_qrels(path: Path, qids: set[str], sticker_ids: set[str]) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for line, text in read_lines(path):
        parts = text.split()
        if len(parts) != 4:
            raise DatasetError(path, line, f"expected 4 columns 'qid 0 sticker_id rel', got {len(parts)}")
        qid, _, sid, rel = parts
        if qid not in qids:
            raise DatasetError(path, line, f"unknown qid {qid!r}")
        if sid not in sticker_ids:
            raise DatasetError(path, line, f"unknown sticker id {sid!r}")
        try:
            value = int(rel)
        except ValueError:
            raise DatasetError(path, line, f"relevance {rel!r} is not an integer") from None
        if sid in qrels.get(qid, {}):
            raise DatasetError(path, line, f"duplicate judgement for ({qid}, {sid})")
        qrels.setdefault(qid, {})[sid] = value
    return qrels


def _require_relevant(path: Path, pairs: Iterable[TestQuery], qrels: Mapping) -> None:
    for q in pairs:
        if not any(r > 0 for r in qrels.get(q.qid, {}).values()):
            raise DatasetError(path, _line_of(path, q.qid), f"test qid {q.qid!r} has no relevant sticker in qrels/test.tsv")


def _line_of(path: Path, qid: str) -> int | None:
    """The line of ``qid`` in a queries file (only looked up to report an error)."""
    return next((line for line, row in read_jsonl(path) if row.get("qid") == qid), None)


def _load_clicks(path: Path, users: Mapping[str, User], sticker_ids: set[str]) -> tuple[Click, ...]:
    out = []
    for line, row in read_jsonl(path):
        _check_keys(path, line, row, {"user_id", "query", "sticker_id", "position", "clicked"})
        uid = _field(path, line, row, "user_id", str)
        if uid not in users:
            raise DatasetError(path, line, f"unknown user_id {uid!r}")
        sid = _field(path, line, row, "sticker_id", str)
        if sid not in sticker_ids:
            raise DatasetError(path, line, f"unknown sticker id {sid!r}")
        position = _field(path, line, row, "position", int)
        if position < 1:
            raise DatasetError(path, line, "position must be >= 1")
        clicked = _field(path, line, row, "clicked", bool)
        out.append(Click(uid, _field(path, line, row, "query", str), sid, position, clicked))
    return tuple(out)
