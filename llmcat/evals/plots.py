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
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy per level")
    ax.legend(loc="lower left", fontsize=8)
    return _svg(fig)


def reliability(bins: Sequence[Mapping[str, float]]) -> str:
    """Accuracy per confidence bin against the diagonal, with each bin's count on its bar."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color=GREY, label="perfect calibration")
    lefts = [b["low"] for b in bins]
    widths = [b["high"] - b["low"] for b in bins]
    bars = ax.bar(
        lefts,
        [b["accuracy"] for b in bins],
        widths,
        align="edge",
        color=BLUE,
        alpha=0.85,
        edgecolor="white",
        label="accuracy",
    )
    ax.bar_label(bars, labels=[f"n={int(b['count'])}" for b in bins], fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability diagram")
    ax.legend(loc="upper left", fontsize=8)
    return _svg(fig)


def coverage(rows: Sequence[Mapping[str, float]], threshold: float) -> str:
    """Accuracy against coverage (most confident first), the review threshold marked."""
    fig = _figure()
    ax = fig.add_subplot()
    xs = [r["coverage"] for r in rows]
    ax.plot(xs, [r["accuracy"] for r in rows], marker="o", color=BLUE)
    kept = [r for r in rows if r["threshold"] >= threshold]
    if kept:
        at = max(kept, key=lambda r: r["coverage"])
        ax.axvline(at["coverage"], color=RED, linestyle=":")
        ax.annotate(
            f"review threshold {threshold:g}\ncoverage {at['coverage']:.2f}, accuracy {at['accuracy']:.2f}",
            (at["coverage"], at["accuracy"]),
            textcoords="offset points",
            xytext=(6, -28),
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
    size = max(4.0, 0.55 * len(labels) + 2.5)
    fig = _figure(size, size * 0.85)
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    ticks = range(len(labels))
    short = [_short(label) for label in labels]
    ax.set_xticks(list(ticks), short, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(list(ticks), short, fontsize=8)
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
                    fontsize=7,
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


def learning_curve(rows: Sequence[Mapping[str, Any]], metric: str) -> str:
    """One line per strategy: ``metric`` against labelled examples per category."""
    fig = _figure()
    ax = fig.add_subplot()
    steps = list(dict.fromkeys(str(row["shots"]) for row in rows))
    by_name: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        if row.get(metric) is not None:
            point = (steps.index(str(row["shots"])), float(row[metric]))
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
