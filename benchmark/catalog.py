"""The dataset catalog, in the spirit of ir_datasets: a name resolves to a validated folder.

* ``wechat-sim`` (default) with a profile (``tiny``, ``default``, ``paper``) and optional knob
  overrides: generated into ``datasets/`` on first use, reused afterwards.
* ``sticker-queries`` with ``data_path`` (the CSV or its folder): converted on first use, and
  again whenever the CSV's checksum changes.
* any other value is a path to a dataset folder in the StickerBench format.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from benchmark import simulator, sticker_queries
from benchmark.dataset import Dataset, load_dataset
from benchmark.io import DatasetError, sha256_file, stable_hash
from benchmark.paths import datasets_dir

DATASETS = ("wechat-sim", "sticker-queries")


def wechat_sim_folder(cfg: simulator.SimConfig) -> Path:
    """Folder of a wechat-sim config: the profile name, plus a hash when knobs differ."""
    base = simulator.PROFILES[cfg.profile]
    suffix = "" if cfg == base else "-" + stable_hash(dataclasses.asdict(cfg), 8)
    return datasets_dir() / f"{cfg.name}{suffix}"


def _card(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / "dataset.json").read_text())
    except (OSError, ValueError):
        return None


def resolve(
    dataset: str = "wechat-sim",
    profile: str = "default",
    data_path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = False,
) -> Dataset:
    """Resolve a dataset name to a loaded, validated :class:`Dataset` (building it if needed).

    Raises:
        DatasetError: the data is missing or malformed (one line, with file and line).
        ValueError: an unknown profile or knob.
    """
    if dataset == "wechat-sim":
        cfg = simulator.profile_config(profile, **(overrides or {}))
        folder = wechat_sim_folder(cfg)
        card = _card(folder)
        if card is None or card.get("generator", {}).get("config") != dataclasses.asdict(cfg) \
                or card.get("version") != simulator.GENERATOR_VERSION:
            simulator.generate(cfg, folder, progress=progress)
        return load_dataset(folder)
    if dataset == "sticker-queries":
        if data_path is None:
            raise DatasetError(Path("sticker-queries"), None, "needs --data-path (the CSV or its folder)")
        csv_path = Path(data_path)
        if csv_path.is_dir():
            csv_path = csv_path / sticker_queries.CSV_NAME
        if not csv_path.is_file():
            raise DatasetError(csv_path, None, "file not found")
        folder = datasets_dir() / sticker_queries.NAME
        card = _card(folder)
        if card is None or card.get("source_sha256") != sha256_file(csv_path) \
                or card.get("version") != sticker_queries.CONVERTER_VERSION:
            sticker_queries.convert(csv_path, folder)
        return load_dataset(folder)
    return load_dataset(Path(dataset))
