"""Small file helpers: atomic writes, hashing, JSON Lines with line-numbered errors."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator


class DatasetError(Exception):
    """A dataset file is malformed. ``str(err)`` is one line: ``path:line: message``."""

    def __init__(self, path: Path | str, line: int | None, message: str):
        self.path, self.line, self.message = Path(path), line, message
        where = f"{self.path}:{line}" if line else f"{self.path}"
        super().__init__(f"{where}: {message}")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def stable_hash(obj: Any, length: int = 12) -> str:
    """Short sha256 of an object's canonical JSON (sorted keys): the cache key of configs."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "w", durable: bool = True) -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success fsync and rename it over ``path``.

    An exception (or a kill) leaves ``path`` untouched: it holds either the old or the new
    content, never a torn write. ``durable=False`` skips the fsync (for cache files that can be
    rebuilt, where a power loss may lose the file but never tears it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8", "newline": "\n"})) as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: Path, text: str) -> None:
    """Atomically write a text file."""
    with atomic_open(path) as f:
        f.write(text)


def write_json(path: Path, obj: Any) -> None:
    """Atomically write pretty, key-sorted JSON (stable bytes for the same object)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    """Atomically write one compact JSON object per line."""
    with atomic_open(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")


def read_json(path: Path) -> Any:
    """Read a JSON file, raising :class:`DatasetError` with the line of a syntax error."""
    try:
        return json.loads("\n".join(_decoded_lines(path)))
    except json.JSONDecodeError as e:
        raise DatasetError(path, e.lineno, f"invalid JSON: {e.msg}") from None


def read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines of a UTF-8 text file as ``(line_number, text)``.

    Raises:
        DatasetError: the file is missing or a line is not valid UTF-8.
    """
    return [(number, line) for number, line in enumerate(_decoded_lines(path), start=1) if line.strip()]


def _decoded_lines(path: Path) -> list[str]:
    """Every line of a UTF-8 file (line endings stripped); errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(path, None, "file not found")
    lines = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                lines.append(raw.decode("utf-8").rstrip("\r\n"))
            except UnicodeDecodeError as e:
                raise DatasetError(path, number, f"invalid UTF-8 at byte {e.start}") from None
    return lines


def read_jsonl(path: Path) -> list[tuple[int, dict]]:
    """JSON objects of a JSON Lines file with their line numbers."""
    rows = []
    for number, line in read_lines(path):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DatasetError(path, number, f"invalid JSON: {e.msg}") from None
        if not isinstance(obj, dict):
            raise DatasetError(path, number, "expected a JSON object")
        rows.append((number, obj))
    return rows


def replace_dir(tmp: Path, final: Path) -> None:
    """Move a finished directory into place, replacing an older one."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
