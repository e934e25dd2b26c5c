"""The report's plots, drawn by matplotlib and returned as inline SVG (no network, no files).

Each function takes plain numbers and returns one ``<svg>`` string; ``available()`` says whether
matplotlib is installed (extra ``report``), and the report says how to get plots when it is not.
Figures are built with ``matplotlib.figure.Figure`` (no pyplot state, safe in threads).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

BLUE, GREY, RED = "#3b6fc4", "#9aa3ad", "#c4473b"


def available() -> bool:
    """True when matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


# matplotlib is an optional extra, imported when a plot is drawn: its Figure stays untyped here.
def _figure(width: float = 5.0, height: float = 3.4) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig: Any) -> str:
    out = io.StringIO()
    # No metadata: no date (the same run gives the same page) and no RDF namespace URLs.
    fig.savefig(
        out, format="svg", metadata={k: None for k in ("Creator", "Date", "Format", "Type")}
    )
    text = out.getvalue()
    # Inline: drop the XML prologue and DOCTYPE, keep the <svg> element (with its own size).
    return text[text.index("<svg") :]


def accuracy_per_level(
    levels: Mapping[str, float], baseline: Mapping[str, float] | None, name: str, base_name: str
) -> str:
    """Grouped bars: accuracy per level of the run, and of the baseline beside it."""
    fig = _figure()
    ax = fig.add_subplot()
    keys = list(levels)
    width = 0.38 if baseline else 0.6
    xs = range(len(keys))
    bars = ax.bar(
        [x - (width / 2 if baseline else 0) for x in xs],
        [levels[k] for k in keys],
        width,
        label=name,
        color=BLUE,
    )
    ax.bar_label(bars, fmt="%.2f", fontsize=8)
    if baseline:
        base = ax.bar(
            [x + width / 2 for x in xs],
            [baseline.get(k, 0.0) for k in keys],
            width,
            label=base_name,
            color=GREY,
        )
        ax.bar_label(base, fmt="%.2f", fontsize=8)
    ax.set_xticks(list(xs), [k.replace("_", " ") for k in keys])
    # The band above 1.0 holds the legend, clear of the bars and their labels.
    ax.set_ylim(0, 1.3)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy per level")
    ax.legend(loc="upper center", ncols=2, fontsize=8, frameon=False)
    return _svg(fig)


def reliability(bins: Sequence[Mapping[str, float]]) -> str:
    """Accuracy per confidence bin against the diagonal; below it, the items per bin (the counts
    get their own axes so that they never sit on the bars or the diagonal)."""
    fig = _figure()
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], linestyle="--", color=GREY, label="perfect calibration")
    lefts = [b["low"] for b in bins]
    widths = [b["high"] - b["low"] for b in bins]
    top.bar(
        lefts,
        [b["accuracy"] for b in bins],
        widths,
        align="edge",
        color=BLUE,
        alpha=0.85,
        edgecolor="white",
        label="accuracy",
    )
    top.set_xlim(0, 1)
    top.set_ylim(0, 1.05)
    top.set_ylabel("accuracy")
    top.set_title("Reliability diagram")
    top.legend(loc="upper left", fontsize=8)
    counts = [b["count"] for b in bins]
    bars = bottom.bar(lefts, counts, widths, align="edge", color=GREY, edgecolor="white")
    bottom.bar_label(bars, labels=[f"{int(c)}" for c in counts], fontsize=7)
    bottom.set_ylim(0, max(counts, default=1) * 1.45)
    bottom.set_yticks([])
    bottom.set_ylabel("items", fontsize=8)
    bottom.set_xlabel("confidence")
    return _svg(fig)


def coverage(rows: Sequence[Mapping[str, float]], threshold: float) -> str:
    """Accuracy against coverage (most confident first), the review threshold marked; the
    threshold's note sits inside the axes, so the figure is the size of the others."""
    fig = _figure()
    ax = fig.add_subplot()
    xs = [r["coverage"] for r in rows]
    ax.plot(xs, [r["accuracy"] for r in rows], marker="o", color=BLUE)
    kept = [r for r in rows if r["threshold"] >= threshold]
    if kept:
        at = max(kept, key=lambda r: r["coverage"])
        ax.axvline(at["coverage"], color=RED, linestyle=":")
        ax.text(
            0.03,
            0.05,
            f"review threshold {threshold:.2f}: coverage {at['coverage']:.2f}, "
            f"accuracy {at['accuracy']:.2f}",
            transform=ax.transAxes,
            fontsize=8,
            color=RED,
        )
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("coverage (share answered without review)")
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy against coverage")
    return _svg(fig)


def confusion(labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> str:
    """The level-1 confusion matrix: gold rows, predicted columns, counts in the cells."""
    # Wide enough for the labels at full size, never wider than the page shows it (11.5 in).
    size = min(11.5, max(5.0, 0.42 * len(labels) + 3.0))
    fig = _figure(size, size * 0.8)
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    ticks = range(len(labels))
    short = [_short(label) for label in labels]
    ax.set_xticks(list(ticks), short, rotation=45, ha="right", fontsize=9)
    ax.set_yticks(list(ticks), short, fontsize=9)
    peak = max((max(row) for row in matrix), default=0) or 1
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            if count:
                ax.text(
                    j,
                    i,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if count > peak / 2 else "black",
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title("Level-1 confusion matrix")
    return _svg(fig)


def findings(
    counts: Mapping[str, int], title: str = "Findings of the model's copy, per kind"
) -> str:
    """Horizontal bars: copy findings per kind."""
    fig = _figure(5.0, 0.4 * max(len(counts), 3) + 1.2)
    ax = fig.add_subplot()
    kinds = sorted(counts, key=lambda k: counts[k])
    bars = ax.barh([k.replace("_", " ") for k in kinds], [counts[k] for k in kinds], color=BLUE)
    ax.bar_label(bars, fontsize=8)
    ax.set_xlabel("copies with the finding")
    ax.set_title(title)
    return _svg(fig)


def learning_curve(rows: Sequence[Mapping[str, str | float | None]], metric: str) -> str:
    """One line per strategy: ``metric`` against labelled examples per category."""
    fig = _figure()
    ax = fig.add_subplot()
    steps = list(dict.fromkeys(str(row["shots"]) for row in rows))
    by_name: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        value = row.get(metric)
        if value is not None:
            point = (steps.index(str(row["shots"])), float(value))
            by_name.setdefault(str(row["strategy"]), []).append(point)
    for name, points in by_name.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    ax.set_xticks(range(len(steps)), steps)
    ax.set_xlabel("labelled examples per category")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{metric.replace('_', ' ')} against examples")
    ax.legend(fontsize=7)
    return _svg(fig)


def _short(label: str, limit: int = 22) -> str:
    label = re.sub(r"\s+", " ", label)
    return label if len(label) <= limit else label[: limit - 1] + "…"
