"""Classification and description metrics. Pure functions over per-item outcomes.

Conventions: a path is a list of names from the root; an item that failed (error record) or whose
prediction is not a node of the taxonomy counts as wrong everywhere and predicts nothing.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

NO_PREDICTION = "<none>"


@dataclass(frozen=True)
class Outcome:
    """One classification item as the metrics see it."""

    gold: tuple[str, ...]
    pred: tuple[str, ...] | None  # None: error or invalid label
    confidence: float | None = None
    error: bool = False
    invalid: bool = False

    @property
    def correct(self) -> bool:
        return self.pred is not None and self.pred == self.gold


def _key(path: tuple[str, ...] | None) -> str:
    return " > ".join(path) if path else NO_PREDICTION


def accuracy(items: Sequence[Outcome]) -> float:
    """Share of items whose predicted path equals the gold path."""
    return sum(o.correct for o in items) / len(items) if items else 0.0


def per_class(items: Sequence[Outcome]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per class (full path), over gold and predicted classes."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for o in items:
        g, p = _key(o.gold), _key(o.pred)
        if g == p:
            tp[g] += 1
        else:
            fp[p] += 1
            fn[g] += 1
    table = {}
    for label in set(tp) | set(fp) | set(fn):
        precision = tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else 0.0
        recall = tp[label] / (tp[label] + fn[label]) if tp[label] + fn[label] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        table[label] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": float(tp[label] + fn[label]),
        }
    return table


def macro_f1(items: Sequence[Outcome]) -> float:
    """Unweighted mean F1 over every class seen in gold or predictions (as scikit-learn)."""
    table = per_class(items)
    return sum(row["f1"] for row in table.values()) / len(table) if table else 0.0


def weighted_f1(items: Sequence[Outcome]) -> float:
    """F1 per class weighted by gold support."""
    table = per_class(items)
    total = sum(row["support"] for row in table.values())
    return sum(row["f1"] * row["support"] for row in table.values()) / total if total else 0.0


def _ancestor_set(path: tuple[str, ...] | None) -> set[tuple[str, ...]]:
    return {path[:i] for i in range(1, len(path) + 1)} if path else set()


def hierarchical_prf(items: Sequence[Outcome]) -> tuple[float, float, float]:
    """Micro-averaged hierarchical precision, recall and F1 over ancestor-augmented sets
    (Kiritchenko et al. 2005); the root is not counted."""
    overlap = predicted = gold = 0
    for o in items:
        g, p = _ancestor_set(o.gold), _ancestor_set(o.pred)
        overlap += len(g & p)
        predicted += len(p)
        gold += len(g)
    hp = overlap / predicted if predicted else 0.0
    hr = overlap / gold if gold else 0.0
    hf = 2 * hp * hr / (hp + hr) if hp + hr else 0.0
    return hp, hr, hf


def accuracy_per_level(items: Sequence[Outcome], max_level: int = 3) -> dict[str, float]:
    """Accuracy of the first ``level`` names, among items whose gold path is at least that deep."""
    out = {}
    for level in range(1, max_level + 1):
        deep = [o for o in items if len(o.gold) >= level]
        if deep:
            hits = sum(o.pred is not None and o.pred[:level] == o.gold[:level] for o in deep)
            out[f"level_{level}"] = hits / len(deep)
    return out


def expected_calibration_error(items: Sequence[Outcome], bins: int = 10) -> float | None:
    """ECE over items with a confidence: equal-width bins, |accuracy - confidence| weighted."""
    scored = [o for o in items if o.confidence is not None]
    if not scored:
        return None
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        in_bin = [o for o in scored if lo < o.confidence <= hi or (b == 0 and o.confidence == 0.0)]  # type: ignore[operator]
        if in_bin:
            acc = sum(o.correct for o in in_bin) / len(in_bin)
            conf = sum(o.confidence for o in in_bin) / len(in_bin)  # type: ignore[misc]
            total += len(in_bin) / len(scored) * abs(acc - conf)
    return total


def reliability(items: Sequence[Outcome], bins: int = 10) -> list[dict[str, float]]:
    """Per bin: mean confidence, accuracy and count, for the calibration plot."""
    rows = []
    scored = [o for o in items if o.confidence is not None]
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        in_bin = [o for o in scored if lo < o.confidence <= hi or (b == 0 and o.confidence == 0.0)]  # type: ignore[operator]
        if in_bin:
            rows.append(
                {
                    "low": lo,
                    "high": hi,
                    "confidence": sum(o.confidence for o in in_bin) / len(in_bin),  # type: ignore[misc]
                    "accuracy": sum(o.correct for o in in_bin) / len(in_bin),
                    "count": float(len(in_bin)),
                }
            )
    return rows


def accuracy_vs_coverage(items: Sequence[Outcome], steps: int = 10) -> list[dict[str, float]]:
    """Selective prediction: keep the most confident share of items; accuracy and the confidence
    threshold at each coverage. Use it to choose the ``needs_review`` threshold."""
    scored = sorted(
        (o for o in items if o.confidence is not None), key=lambda o: -(o.confidence or 0.0)
    )
    rows = []
    for step in range(1, steps + 1):
        coverage = step / steps
        n = max(1, math.ceil(coverage * len(scored))) if scored else 0
        kept = scored[:n]
        if kept:
            rows.append(
                {
                    "coverage": coverage,
                    "accuracy": sum(o.correct for o in kept) / len(kept),
                    "threshold": kept[-1].confidence or 0.0,
                }
            )
    return rows


def top_confusions(items: Sequence[Outcome], n: int = 15) -> list[tuple[str, str, int]]:
    """The most frequent (gold, predicted) pairs among wrong answers."""
    pairs = Counter((_key(o.gold), _key(o.pred)) for o in items if not o.correct)
    return [(g, p, c) for (g, p), c in pairs.most_common(n)]


def classification_metrics(items: Sequence[Outcome], max_level: int = 3) -> dict[str, float | None]:
    """Every headline classification metric in one flat dict."""
    hp, hr, hf = hierarchical_prf(items)
    n = len(items) or 1
    metrics: dict[str, float | None] = {
        "items": float(len(items)),
        "accuracy": accuracy(items),
        "macro_f1": macro_f1(items),
        "weighted_f1": weighted_f1(items),
        "hierarchical_precision": hp,
        "hierarchical_recall": hr,
        "hierarchical_f1": hf,
        "invalid_rate": sum(o.invalid for o in items) / n,
        "error_rate": sum(o.error for o in items) / n,
        "ece": expected_calibration_error(items),
    }
    metrics.update({f"accuracy_{k}": v for k, v in accuracy_per_level(items, max_level).items()})
    return metrics
