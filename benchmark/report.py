"""Plots of the tables and a Markdown report that shows them (``report.md`` beside the tables).

* ``table1.png``: Table 1's MRR@10 and Recall@10 as bars, with error bars of one standard
  deviation over the seeds (none for a system run on one seed).
* ``quality_latency.png``: MRR@10 (Table 1) against batch-1 p50 latency (Table 3).
* ``report.md``: Tables 1-4 and the per-group table as written, with the plots, the per-group
  heatmap and, when ``bench profile scale`` has run, the scale plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from benchmark.io import atomic_open, write_text
from benchmark.tables import SystemScores, metric_label

BAR_METRICS = ("mrr@10", "recall@10")
SECTIONS = (("table1.md", None), ("table1.png", "Table 1 as bars"), ("table2.md", None), ("table3.md", None),
            ("quality_latency.png", "Quality against latency"), ("table4.md", None), ("groups.md", None),
            ("groups.png", "MRR@10 by user group"))


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: Path) -> None:
    """Write ``fig`` as a PNG atomically, without the matplotlib version in its metadata (same
    figure, same bytes)."""
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, metadata={"Software": None})


def table1_bars(systems: Sequence[SystemScores], path: Path) -> None:
    """Each metric of :data:`BAR_METRICS` per system, mean over seeds ± one standard deviation."""
    plt = pyplot()
    scored = [s for s in systems if not s.not_applicable]
    fig, axes = plt.subplots(1, len(BAR_METRICS), figsize=(6 * len(BAR_METRICS), 4.2))
    several = any(len(s.seeds) > 1 for s in scored)
    for ax, metric in zip(axes, BAR_METRICS):
        means = [s.means[metric] for s in scored]
        spread = [s.seed_means[metric].std(ddof=1) if len(s.seeds) > 1 else 0.0 for s in scored]
        ax.bar(range(len(scored)), means, yerr=spread if several else None, capsize=3, color="tab:blue")
        ax.set_xticks(range(len(scored)), [s.row_label for s in scored], rotation=60, ha="right")
        ax.set_ylabel(metric_label(metric))
        ax.grid(True, axis="y", alpha=0.3)
    seeds = "/".join(map(str, sorted({len(s.seeds) for s in scored})))
    fig.suptitle(f"Table 1 (seeds per system: {seeds}; " + ("error bars: sd over seeds)" if several else
                                                          "one seed: no error bars; bench run --seeds N adds them)"))
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)


def quality_latency(systems: Sequence[SystemScores], records: Sequence[dict], path: Path) -> bool:
    """MRR@10 against p50 latency for the systems in both tables; False (no plot) without any."""
    p50 = {r["system"]: r["latency_ms"]["p50_ms"] for r in records}
    points = [(s, p50[s.name]) for s in systems if not s.not_applicable and s.name in p50]
    if not points:
        return False
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s, latency in points:
        x = max(latency, 1e-3)
        ax.scatter(x, s.means["mrr@10"], color="tab:orange")
        ax.annotate(s.row_label, (x, s.means["mrr@10"]), textcoords="offset points", xytext=(4, 3), fontsize=8)
    threads = "/".join(map(str, sorted({r["threads"] for r in records})))
    ax.set(xscale="log", xlabel=f"batch-1 latency p50 (ms, {threads} threads)", ylabel="MRR@10",
           title="Quality against latency (Tables 1 and 3)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)
    return True


def write_report(out_dir: Path, systems: Sequence[SystemScores], records: Sequence[dict]) -> list[Path]:
    """Write the two plots and ``report.md`` (which embeds every table and plot present)."""
    written = []
    if systems:
        table1_bars(systems, out_dir / "table1.png")
        written.append(out_dir / "table1.png")
    if quality_latency(systems, records, out_dir / "quality_latency.png"):
        written.append(out_dir / "quality_latency.png")
    parts = ["# StickerBench report", ""]
    for name, title in SECTIONS:
        path = out_dir / name
        if not path.exists():
            continue
        parts += [path.read_text().rstrip(), ""] if title is None else [f"**{title}**", "", f"![{title}]({name})", ""]
    scale = out_dir.parent / "scale" / "scale.png"
    if scale.exists():
        parts += ["**Scale profile** (`bench profile scale`)", "", "![Scale profile](../scale/scale.png)", ""]
    write_text(out_dir / "report.md", "\n".join(parts))
    return [*written, out_dir / "report.md"]
