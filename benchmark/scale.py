"""The scale profile: what the corpus-sized parts of the systems cost as wechat-sim grows from
10k stickers to the paper's 1,092,122 (``bench profile scale``).

Each size is wechat-sim's ``paper`` profile with ``n_stickers`` set and its IP and entity
vocabularies scaled in proportion (17,906 IPs and 38,895 entities at full size, as in the
paper's Appendix A). The click log is cut to 10,000 sessions: none of the measured parts reads
it, and at 200,000 sessions it dominates generation.

The components are the structures whose size grows with the corpus:

* ``bm25``: the Lucene index of the BM25 system (its ``fit`` and ``search``);
* ``dense-flat`` and ``dense-ivfpq``: faiss indexes over the text encoder's sticker vectors,
  exact and IVF-PQ compressed; the encoding itself is timed separately (it is the step that
  needs a GPU at full size) and cached in chunks, so an interrupted profile resumes;
* ``pearl-identifiers``: PEARL's property identifiers (Eq. 3: PQ codes of every distinct
  property value) with one prefix trie per property (PEARL holds them as one trie under the
  property tokens ``w_p``: the same nodes, plus one per property);
* ``minder-ngrams``: MINDER's n-gram index (sorted suffix table) over the sticker bodies;
* ``dsi-trie``: DSI's docid trie over the naive (digit string) docids.

Each component is built and queried in a fresh spawned process at a fixed thread count; the
record holds its build seconds, the memory it holds once built (resident MiB above the
process's baseline after loading the data) and the peak during the build, and batch-1 query
latency over the test queries after a warm-up.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from benchmark import catalog, simulator
from benchmark.dataset import Dataset
from benchmark.io import atomic_open, stable_hash, write_json
from benchmark.paths import cache_dir

SIZES = (10_000, 100_000, 1_092_122)
PAPER = simulator.PROFILES["paper"]
SCALE_CLICK_SESSIONS = 10_000
ENCODE_CHUNK = 50_000


def scale_config(n_stickers: int) -> simulator.SimConfig:
    """wechat-sim's paper profile at ``n_stickers``, vocabularies in the paper's proportions."""
    ratio = n_stickers / PAPER.n_stickers
    return dataclasses.replace(
        PAPER, n_stickers=n_stickers, n_ips=max(10, round(PAPER.n_ips * ratio)),
        n_entities=max(10, round(PAPER.n_entities * ratio)), click_sessions=SCALE_CLICK_SESSIONS,
    )


def scale_dataset(n_stickers: int) -> Dataset:
    """The wechat-sim dataset of one scale point (generated on first use)."""
    cfg = scale_config(n_stickers)
    overrides = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)
                 if getattr(cfg, f.name) != getattr(PAPER, f.name)}
    return catalog.resolve("wechat-sim", "paper", overrides=overrides, progress=True)


def chunked_encode(model, model_key: str, texts: Sequence[str], folder_key: str,
                   chunk: int = ENCODE_CHUNK, progress: bool = True) -> tuple[np.ndarray, dict]:
    """Encode ``texts`` chunk by chunk, each chunk cached on disk with the seconds it took, so
    that a long encoding resumes where it stopped.

    Returns:
        (the vectors, a timing record: texts, seconds summed over chunks, texts per second,
        and the load average at the end of each chunk).
    """
    from systems.encoders import encode

    folder = cache_dir() / "scale-encode" / f"{folder_key}-{stable_hash([model_key, len(texts)], 8)}"
    folder.mkdir(parents=True, exist_ok=True)
    parts, seconds, loads = [], 0.0, []
    starts = range(0, len(texts), chunk)
    for start in tqdm(starts, desc=f"encode {len(texts):,} texts", disable=not progress, unit="chunk"):
        batch = list(texts[start: start + chunk])
        digest = stable_hash(batch, 16)
        vectors_path, record_path = folder / f"{start:08d}-{digest}.npy", folder / f"{start:08d}-{digest}.json"
        if not (vectors_path.exists() and record_path.exists()):
            began = time.perf_counter()
            vectors = encode(model, batch, batch_size=64)
            record = {"n": len(batch), "seconds": time.perf_counter() - began,
                      "load_average": round(os.getloadavg()[0], 2)}
            with atomic_open(vectors_path, "wb") as f:
                np.save(f, vectors)
            write_json(record_path, record)
        record = json.loads(record_path.read_text())
        parts.append(np.load(vectors_path))
        seconds += record["seconds"]
        loads.append(record["load_average"])
    vectors = np.concatenate(parts) if parts else np.zeros((0, model.get_embedding_dimension()), np.float32)
    return vectors, {"texts": len(texts), "encode_s": round(seconds, 1),
                     "texts_per_s": round(len(texts) / seconds, 1) if seconds else None,
                     "chunk_load_average": loads}


# --------------------------------------------------------------------------- encodings


def dense_model(encoder: str, device: str = "cpu"):
    """The un-fine-tuned ``encoder`` set up as DPR and ANCE encode with it (their token limit,
    unnormalized vectors)."""
    from systems.dense import DPRConfig
    from systems.encoders import load_encoder

    return load_encoder(encoder, DPRConfig().max_seq_length, normalize=False, device=device)


def dense_vectors(dataset: Dataset, model, encoder: str, progress: bool = True) -> tuple[list[str], np.ndarray, dict]:
    """The sticker ids and their vectors as DPR and ANCE index them (labelled sticker texts),
    encoded by ``model`` (:func:`dense_model` of ``encoder``), with the encoding's timing."""
    docs = dataset.training_data().sticker_documents(labelled=True)
    ids = sorted(docs)
    vectors, timing = chunked_encode(model, f"dense:{encoder}", [docs[s] for s in ids],
                                     f"{dataset.name}-{dataset.fingerprint[:8]}-dense", progress=progress)
    return ids, vectors, timing


def property_vectors(dataset: Dataset, encoder: str, progress: bool = True) -> tuple[dict, dict, dict]:
    """PEARL's property texts, the encoder's vector of every distinct property value (as PEARL
    encodes them: normalized, the encoder's own length) and the encoding's timing."""
    from systems.encoders import load_encoder
    from systems.pearl import property_texts

    texts, _ = property_texts(dataset.training_data())
    values = sorted({(p, v) for t in texts.values() for p, v in t.items()})
    model = load_encoder(encoder)
    vectors, timing = chunked_encode(model, f"pearl:{encoder}", [v for _, v in values],
                                     f"{dataset.name}-{dataset.fingerprint[:8]}-properties", progress=progress)
    return texts, dict(zip(values, vectors)), timing


def encode_throughput(n_stickers: int, encoder: str, device: str, batch_size: int = 256) -> dict:
    """Wall time of encoding every sticker text of one scale point at once on ``device``
    (``cuda`` on a GPU machine), after a warm-up batch: the step that needs a GPU at full size."""
    import torch

    from systems.encoders import encode

    docs = scale_dataset(n_stickers).training_data().sticker_documents(labelled=True)
    texts = [docs[s] for s in sorted(docs)]
    model = dense_model(encoder, device)
    encode(model, texts[:batch_size], batch_size=batch_size)
    start = time.perf_counter()
    encode(model, texts, batch_size=batch_size)
    seconds = time.perf_counter() - start
    name = torch.cuda.get_device_name() if device.startswith("cuda") else f"{torch.get_num_threads()} CPU threads"
    return {"texts": len(texts), "device": name, "batch_size": batch_size, "encode_s": round(seconds, 1),
            "texts_per_s": round(len(texts) / seconds, 1), "encoder": encoder}


def prepare(sizes: Sequence[int], encoder: str) -> None:
    """Generate every scale point and encode what the components index (the long part)."""
    for n in sizes:
        dataset = scale_dataset(n)
        dense_vectors(dataset, dense_model(encoder), encoder)
        property_vectors(dataset, encoder)


# --------------------------------------------------------------------------- components
#
# A component is (inputs, build, query): ``inputs(dataset, encoder)`` loads what the structure
# is built from (untimed; encodings come from the chunked cache with their own timing),
# ``build(inputs, folder)`` makes the structure (timed, its memory measured), and
# ``query(structure, inputs, i)`` does the structure's share of answering test query ``i``.

BEAMS = 10
"""Hypotheses per constrained decoding (PEARL's beam; the walks of the trie components)."""


def _walk(constraint, identifiers: Sequence[Sequence[int]], rng: np.random.Generator,
          beams: int = BEAMS) -> np.ndarray:
    """The constrained decoder's index work for one beam: the allowed tokens after every prefix
    of ``beams`` identifiers drawn from ``identifiers``; returns the rows drawn."""
    rows = rng.choice(len(identifiers), size=min(beams, len(identifiers)), replace=False)
    for row in rows:
        seq = identifiers[row]
        for n in range(len(seq) + 1):
            constraint.allowed_after(seq[:n])
    return rows


def _bm25_inputs(dataset: Dataset, encoder: str) -> dict:
    return {"data": dataset.training_data(), "queries": dataset.test_queries()}


def _bm25_build(inputs: dict, folder: Path):
    from systems.lexical import BM25

    system = BM25(BM25.Config(), 0)
    system.fit(inputs["data"], folder)
    system.load(folder)
    return system


def _bm25_query(system, inputs: dict, i: int) -> None:
    queries = inputs["queries"]
    system.search([queries[i % len(queries)]], 20)


def _dense_inputs(dataset: Dataset, encoder: str) -> dict:
    from systems.encoders import encode

    model = dense_model(encoder)  # loaded once: the sticker vectors and the queries
    ids, vectors, timing = dense_vectors(dataset, model, encoder, progress=False)
    queries = encode(model, [q.text for q in dataset.test_queries()])
    return {"ids": ids, "vectors": vectors, "queries": queries, "encoding": timing}


def _dense_build(kind: str):
    def build(inputs: dict, folder: Path):
        from systems.dense import DenseIndex

        n = len(inputs["ids"])
        nlist = int(4 * np.sqrt(n))  # faiss's rule of thumb for inverted lists
        index = DenseIndex.build(inputs["vectors"], inputs["ids"], kind=kind, nlist=nlist)
        index.save(folder)
        return index
    return build


def _dense_query(index, inputs: dict, i: int) -> None:
    queries = inputs["queries"]
    index.search(queries[i % len(queries)][None, :], 20)


def _pearl_inputs(dataset: Dataset, encoder: str) -> dict:
    texts, vectors, timing = property_vectors(dataset, encoder, progress=False)
    return {"texts": texts, "vectors": vectors, "encoding": timing}


def _pearl_build(inputs: dict, folder: Path) -> dict:
    """Eq. 3's identifiers (m=8, k=256, PEARL's defaults), one trie per property over their
    code tokens, and each value's stickers (what the funnel maps decoded identifiers to)."""
    from systems.constrained import PrefixTrie
    from systems.pearl import PEARLConfig, property_identifiers

    cfg, vectors = PEARLConfig(), inputs["vectors"]
    identifiers, _ = property_identifiers(
        inputs["texts"], lambda p, values: np.stack([vectors[p, v] for v in values]), cfg.pq_m, cfg.pq_bits)
    out = {}
    for p, codes in identifiers.items():
        values = sorted(codes)
        tokens = [[FIRST_TOKEN + j * 2 ** cfg.pq_bits + c for j, c in enumerate(codes[v])] for v in values]
        owners: dict[str, list[str]] = {}
        for sid, t in inputs["texts"].items():
            if p in t:
                owners.setdefault(t[p], []).append(sid)
        out[p] = {"trie": PrefixTrie(tokens, EOS), "tokens": tokens, "owners": [owners[v] for v in values]}
    return out


def _pearl_query(structure: dict, inputs: dict, i: int) -> None:
    """A beam on every property's trie, then the stickers of the identifiers it ends on."""
    rng = np.random.default_rng(i)
    found: set[str] = set()
    for p in sorted(structure):
        part = structure[p]
        for row in _walk(part["trie"], part["tokens"], rng):
            for item in part["trie"].items(part["tokens"][row]):
                found.update(part["owners"][item])


def _minder_inputs(dataset: Dataset, encoder: str) -> dict:
    """Sticker bodies (every text part after the title), tokenized by MINDER's backbone
    tokenizer trained on them."""
    from systems.generative import MINDERConfig, text_parts
    from systems.seq2seq import Seq2Seq

    parts = text_parts(dataset.training_data())
    ids = sorted(parts)
    bodies = [" ".join(parts[s][1:]) for s in ids]
    model = Seq2Seq.create(MINDERConfig(), [*(parts[s][0] for s in ids), *bodies])
    return {"bodies": [model.token_ids(b) for b in bodies], "eos": model.eos,
            "queries": [model.token_ids(q.text) for q in dataset.test_queries()]}


def _minder_build(inputs: dict, folder: Path):
    from systems.generative import MINDERConfig
    from systems.ngrams import NgramIndex

    bodies = inputs["bodies"]
    return NgramIndex(bodies, list(range(len(bodies))), inputs["eos"], max_length=MINDERConfig().body_ngram)


def _minder_query(index, inputs: dict, i: int) -> None:
    """SEAL's index work for one query: a beam of body n-grams walked token by token, then
    each key's count and the stickers it occurs in (keys from the query's own n-grams)."""
    tokens = inputs["queries"][i % len(inputs["queries"])]
    keys = [tokens[a: b] for a in range(len(tokens)) for b in range(a + 1, min(len(tokens), a + index.max_length) + 1)]
    _walk(index, keys, np.random.default_rng(i))
    for key in keys:
        if index.count(key):
            index.locate(key)


def _dsi_inputs(dataset: Dataset, encoder: str) -> dict:
    from systems.generative import docids

    tokens = docids([s.id for s in dataset.training_data().stickers], "naive")
    digit = {f"[D{c}]": FIRST_TOKEN + c for c in range(10)}
    return {"docids": [[digit[t] for t in tokens[s]] for s in sorted(tokens)]}


def _dsi_build(inputs: dict, folder: Path):
    from systems.constrained import PrefixTrie

    return PrefixTrie(inputs["docids"], EOS)


def _dsi_query(trie, inputs: dict, i: int) -> None:
    """A beam of 20 (DSI's, k) docids walked digit by digit, then their stickers."""
    for row in _walk(trie, inputs["docids"], np.random.default_rng(i), beams=20):
        trie.items(inputs["docids"][row])


EOS, FIRST_TOKEN = 2, 10
"""Token ids of the tries built here (no model: any ids outside the identifiers' range do)."""

COMPONENTS: dict[str, tuple] = {
    "bm25": (_bm25_inputs, _bm25_build, _bm25_query),
    "dense-flat": (_dense_inputs, _dense_build("flat"), _dense_query),
    "dense-ivfpq": (_dense_inputs, _dense_build("ivfpq"), _dense_query),
    "pearl-identifiers": (_pearl_inputs, _pearl_build, _pearl_query),
    "minder-ngrams": (_minder_inputs, _minder_build, _minder_query),
    "dsi-trie": (_dsi_inputs, _dsi_build, _dsi_query),
}


# --------------------------------------------------------------------------- measuring


def _reset_peak() -> None:
    """Start this process's ``VmHWM`` afresh from its current resident memory (Linux)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def deep_size(obj) -> int:
    """Bytes of a Python structure: numpy arrays and torch tensors by their buffers, containers
    and objects by ``sys.getsizeof`` plus what they hold, each object counted once. Objects
    that keep their memory elsewhere (a faiss index, a JVM) count only their Python shell."""
    import sys

    import torch

    seen: set[int] = set()
    total, stack = 0, [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, np.ndarray):
            total += item.nbytes if item.base is None else 0  # a view owns no buffer
            if item.dtype == object:
                stack.extend(item.ravel().tolist())
            continue
        if isinstance(item, torch.Tensor):
            total += item.element_size() * item.nelement()
            continue
        total += sys.getsizeof(item)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            stack.extend(vars(item).values())
    return total


def _measure(component: str, n_stickers: int, encoder: str, threads: int, n_queries: int) -> dict:
    """In a fresh process: build one component at one size and time its queries."""
    import tempfile

    from benchmark.profile import disk_bytes, latency_ms, peak_rss_mb, pin_threads, rss_mb

    pin_threads(threads)
    import faiss

    faiss.omp_set_num_threads(threads)
    make_inputs, build, query = COMPONENTS[component]
    dataset = scale_dataset(n_stickers)
    inputs = make_inputs(dataset, encoder)
    gc.collect()  # garbage of the inputs' making would otherwise be freed during the build
    baseline = rss_mb()
    _reset_peak()
    with tempfile.TemporaryDirectory(prefix=f"scale-{component}-") as tmp:
        start = time.perf_counter()
        structure = build(inputs, Path(tmp))
        build_s = time.perf_counter() - start
        peak, held, disk = peak_rss_mb() - baseline, rss_mb() - baseline, disk_bytes(Path(tmp))
        size = None if disk else deep_size(structure)  # an index on disk lives outside Python
        stats = latency_ms(lambda i: query(structure, inputs, i), n_queries, warmup=5)
    return {"component": component, "stickers": len(dataset.training_data().stickers),
            "dataset": dataset.name, "fingerprint": dataset.fingerprint, "threads": threads,
            "encoder": encoder, "build_s": round(build_s, 3), "baseline_rss_mb": round(baseline, 1),
            "held_mb": round(held, 1), "build_peak_mb": round(peak, 1), "disk_mb": round(disk / 2**20, 2),
            "size_mb": None if size is None else round(size / 2**20, 2),
            "latency_ms": {k: round(v, 4) if isinstance(v, float) else v for k, v in stats.items()},
            "encoding": inputs.get("encoding")}


def profile_scale(sizes: Sequence[int], components: Sequence[str], encoder: str, out_dir: Path,
                  threads: int, n_queries: int = 200, force: bool = False,
                  report=lambda name, outcome: None) -> list[dict]:
    """Measure every component at every size into ``out_dir/<component>-<size>.json`` (each in
    a fresh spawned process); a record for the same dataset, encoder, threads and query count
    is kept unless ``force``, so an interrupted profile resumes.

    Returns:
        The records, measured or kept.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from benchmark.io import read_json
    from benchmark.provenance import git_commit, machine, versions

    unknown = sorted(set(components) - set(COMPONENTS))
    if unknown:
        raise ValueError(f"unknown scale component(s) {', '.join(unknown)} (choose from {', '.join(COMPONENTS)})")
    records = []
    for n in sizes:
        dataset = scale_dataset(n)
        for component in components:
            name = f"{component}-{n}"
            path = out_dir / f"{name}.json"
            old = read_json(path) if path.exists() else None
            if not force and old is not None and (old["fingerprint"], old["encoder"], old["threads"],
                                                  old["latency_ms"]["n"]) == (dataset.fingerprint, encoder, threads, n_queries):
                records.append(old)
                report(name, "kept")
                continue
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
                record = pool.submit(_measure, component, n, encoder, threads, n_queries).result()
            record.update({"generator": dataset.card["generator"], "machine": machine(),
                           "commit": git_commit(), "versions": versions()})
            write_json(path, record)
            records.append(record)
            report(name, record)
    return records


# --------------------------------------------------------------------------- report

COLUMNS = ("Component", "Stickers", "Encode (s)", "Build (s)", "Size (MB)", "Held (MB)", "Build peak (MB)",
           "Disk (MB)", "p50 (ms)", "p95 (ms)")


def scale_records(out_dir: Path) -> list[dict]:
    """The saved records, by component (in :data:`COMPONENTS` order) and size."""
    records = [json.loads(p.read_text()) for p in sorted(out_dir.glob("*.json"))] if out_dir.is_dir() else []
    order = {c: i for i, c in enumerate(COMPONENTS)}
    return sorted(records, key=lambda r: (order.get(r["component"], len(order)), r["stickers"]))


def _cells(r: dict) -> list[str]:
    encoding = r.get("encoding")
    encode = f"{encoding['encode_s']:,.0f}" if encoding else "—"
    size = "—" if r["size_mb"] is None else f"{r['size_mb']:,.1f}"
    return [r["component"], f"{r['stickers']:,}", encode, f"{r['build_s']:,.1f}", size, f"{r['held_mb']:,.0f}",
            f"{r['build_peak_mb']:,.0f}", f"{r['disk_mb']:,.1f}" if r["disk_mb"] else "—",
            f"{r['latency_ms']['p50_ms']:.3f}", f"{r['latency_ms']['p95_ms']:.3f}"]


def scale_markdown(records: Sequence[dict]) -> str:
    threads = "/".join(map(str, sorted({r["threads"] for r in records})))
    lines = ["**Scale profile: cost of the corpus-sized structures against the number of stickers**", "",
             "| " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * (len(COLUMNS) - 1)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in records]
    encoders = sorted({r["encoder"] for r in records})
    lines += ["", f"Measured at {threads} thread(s), each component and size in a fresh process. Encode: the "
              f"text encoder ({', '.join(encoders)}) over the sticker texts (dense) or the distinct property values "
              "(PEARL), cached and timed chunk by chunk. Build: the structure from its inputs. Size: the "
              "structure's Python objects and arrays (—: it lives outside Python, in Lucene's JVM or faiss; "
              "see Disk). Held: resident memory the process gained while building (Python may reuse memory "
              "it freed earlier, so it can fall short of Size); build peak: the peak above the same "
              "baseline. Disk: the saved index (BM25, faiss). Latency: the structure's share of one query at batch 1 (BM25: the "
              "whole search; dense: the faiss search of an encoded query; tries and n-grams: the constrained "
              "decoder's lookups along a beam, then the stickers found), without the model's forward passes."]
    return "\n".join(lines) + "\n"


def scale_csv(records: Sequence[dict]) -> str:
    import pandas as pd

    rows = [{"component": r["component"], "stickers": r["stickers"], "threads": r["threads"],
             "encode_s": (r.get("encoding") or {}).get("encode_s"),
             "encoded_texts": (r.get("encoding") or {}).get("texts"), "build_s": r["build_s"],
             "size_mb": r["size_mb"], "held_mb": r["held_mb"], "build_peak_mb": r["build_peak_mb"],
             "disk_mb": r["disk_mb"],
             "p50_ms": r["latency_ms"]["p50_ms"], "p95_ms": r["latency_ms"]["p95_ms"],
             "latency_queries": r["latency_ms"]["n"]} for r in records]
    return pd.DataFrame(rows).to_csv(index=False, lineterminator="\n")


def scale_plot(records: Sequence[dict], path: Path) -> None:
    """Build time, held memory and p50 latency against stickers, log-log, one line per component."""
    from benchmark.report import pyplot, save_png

    plt = pyplot()
    panels = (("build_s", "build (s)"), ("memory_mb", "size in memory or on disk (MB)"),
              ("p50_ms", "latency p50 (ms)"))
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, (key, title) in zip(axes, panels):
        for component in dict.fromkeys(r["component"] for r in records):
            points = [(r["stickers"], _plotted(r, key)) for r in records if r["component"] == component]
            xs, ys = zip(*points)
            ax.plot(xs, [max(y, 1e-3) for y in ys], marker="o", label=component)
        ax.set(xscale="log", yscale="log", xlabel="stickers", title=title)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)


def _plotted(r: dict, key: str) -> float:
    if key == "p50_ms":
        return r["latency_ms"]["p50_ms"]
    if key == "memory_mb":  # the structure's own bytes, or its index on disk when it lives outside Python
        return r["disk_mb"] or r["size_mb"]
    return r[key]


def write_scale_report(out_dir: Path) -> list[Path]:
    """``scale.csv``, ``scale.md`` and ``scale.png`` beside the records; none without records."""
    from benchmark.io import write_text

    records = scale_records(out_dir)
    if not records:
        return []
    write_text(out_dir / "scale.csv", scale_csv(records))
    write_text(out_dir / "scale.md", scale_markdown(records))
    scale_plot(records, out_dir / "scale.png")
    return [out_dir / name for name in ("scale.csv", "scale.md", "scale.png")]
