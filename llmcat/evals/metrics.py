"""Every metric of the harness: per-item scoring, the aggregate metrics, and ``METRICS``, the one
registry (name, label, format, which task) that the summary, the report and ``table`` read.
Pure functions over per-item outcomes.

Conventions: a path is a list of names from the root; an item that failed (error record) or whose
prediction is not a node of the taxonomy counts as wrong everywhere and predicts nothing.

A new metric: compute it in ``classification_metrics``, ``description_metrics`` or
``usage_metrics`` below and add one ``Metric`` line to ``METRICS``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Literal, Protocol, get_args

import numpy as np
from pydantic import JsonValue

from llmcat.confidence.calibration import expected_calibration_error
from llmcat.confidence.distributions import candidates_of
from llmcat.config.options import CopyLimits
from llmcat.errors import ConfigError
from llmcat.listing.degenerate import language_problem
from llmcat.listing.grounding import check_copy, input_text
from llmcat.listing.schema import copy_fields, count_words
from llmcat.taxonomy.tree import Taxonomy
from llmcat.types import Classification, Description, FindingKind, Product

NO_PREDICTION = "<none>"
#: Finding kinds counted per run (``llmcat.types.Finding``).
FINDING_KINDS: tuple[str, ...] = get_args(FindingKind)
Task = Literal["classify", "describe", "usage"]


@dataclass(frozen=True)
class Metric:
    """One aggregate metric as reports show it."""

    name: str
    label: str
    task: Task
    kind: Literal["rate", "count", "number", "seconds"] = "rate"
    summary: bool = True  # a row of summary.md and the report
    table: bool = False  # a column of ``python -m evals table``

    def format(self, value: object) -> str:
        """The value as reports print it: n/a for None, counts without decimals."""
        if value is None:
            return "n/a"
        if not isinstance(value, (int, float)):
            return str(value)
        if self.kind == "count" or abs(value) >= 1000:
            return f"{value:,.0f}"
        if self.kind == "seconds":
            return f"{value:.2f}"
        return f"{value:.3f}"


METRICS: tuple[Metric, ...] = (
    Metric("items", "items", "classify", "count", summary=False),
    Metric("accuracy", "accuracy (full path)", "classify"),
    Metric("accuracy_level_1", "accuracy level 1", "classify", table=True),
    Metric("accuracy_level_2", "accuracy level 2", "classify", table=True),
    Metric("accuracy_level_3", "accuracy level 3", "classify", table=True),
    Metric("macro_f1", "macro F1", "classify"),
    Metric("weighted_f1", "weighted F1", "classify"),
    Metric("hierarchical_precision", "hierarchical precision", "classify", summary=False),
    Metric("hierarchical_recall", "hierarchical recall", "classify", summary=False),
    Metric("hierarchical_f1", "hierarchical F1", "classify", table=True),
    Metric("shortlist_recall", "shortlist recall (gold among the candidates)", "classify"),
    Metric("shortlist_size", "shortlist size (mean candidates)", "classify", "number"),
    Metric("invalid_rate", "invalid answers", "classify", table=True),
    Metric("error_rate", "error records", "classify", table=True),
    Metric("ece", "expected calibration error", "classify"),
    Metric("review_rate", "flagged for review (needs_review)", "classify"),
    Metric("unflagged_accuracy", "accuracy of the items not flagged", "classify"),
    Metric("items", "items", "describe", "count", summary=False),
    Metric("schema_valid_rate", "schema valid", "describe"),
    Metric("length_compliance", "within length limits", "describe"),
    Metric("attribute_coverage", "must-mention coverage", "describe"),
    Metric("invented_number_rate", "invented numbers", "describe"),
    Metric("unflagged_number_rate", "unflagged new numbers (naive)", "describe", summary=False),
    Metric("forbidden_rate", "forbidden terms", "describe"),
    Metric("language_match", "language match", "describe"),
    Metric("flagged_rate", "flagged", "describe"),
    Metric("findings_rate", "returned copy with findings", "describe"),
    Metric("model_copy_rate", "model copy without findings (pass rate)", "describe"),
    Metric("model_copy_rate_en", "  pass rate, English", "describe"),
    Metric("model_copy_rate_zh", "  pass rate, Chinese", "describe"),
    Metric("composed_rate", "composed copy returned", "describe"),
    *(
        Metric(f"model_{kind}_rate", f"model copy with {kind.replace('_', ' ')}", "describe")
        for kind in FINDING_KINDS
    ),
    Metric("error_rate", "error records", "describe"),
    Metric("prompt_tokens_per_item", "prompt tokens / item", "usage", "count", table=True),
    Metric("completion_tokens_per_item", "completion tokens / item", "usage", "count", False),
    Metric("latency_mean_s", "latency mean (s)", "usage", "seconds", summary=False),
    Metric("latency_p95_s", "latency p95 (s)", "usage", "seconds", summary=False),
    Metric("items_per_s", "items / s", "usage", "number", table=True),
    Metric("cache_hit_rate", "cache hits", "usage", summary=False),
)


def metrics_for(task: Literal["classify", "describe"], *, where: str = "summary") -> list[Metric]:
    """The metrics of a task's block (its own, then usage) shown in ``where``: summary or table."""
    return [m for m in METRICS if m.task in (task, "usage") and getattr(m, where)]


def format_metric(task: Literal["classify", "describe"], name: str, value: object) -> str:
    """``value`` formatted as the registry says for ``name`` (3 decimals when unregistered)."""
    for m in METRICS:
        if m.name == name and m.task in (task, "usage"):
            return m.format(value)
    return Metric(name, name, task).format(value)


@dataclass(frozen=True)
class Outcome:
    """One classification item as the metrics see it."""

    gold: tuple[str, ...]
    pred: tuple[str, ...] | None  # None: error or invalid label
    confidence: float | None = None
    error: bool = False
    invalid: bool = False
    in_shortlist: bool | None = None  # None: the strategy offered no shortlist
    shortlist_size: int | None = None
    needs_review: bool | None = None  # None: not recorded (older baselines)

    @property
    def correct(self) -> bool:
        return self.pred is not None and self.pred == self.gold


def _key(path: tuple[str, ...] | None) -> str:
    return " > ".join(path) if path else NO_PREDICTION


def accuracy(items: Sequence[Outcome]) -> float:
    """Share of items whose predicted path equals the gold path."""
    return sum(o.correct for o in items) / len(items) if items else 0.0


def per_class(items: Sequence[Outcome]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support per class (full path), over gold and predicted classes
    (scikit-learn's ``precision_recall_fscore_support``; a class never predicted or never gold
    scores 0, not a warning)."""
    if not items:
        return {}
    metrics = _sklearn_metrics()
    gold = [_key(o.gold) for o in items]
    pred = [_key(o.pred) for o in items]
    labels = sorted(set(gold) | set(pred))
    # Integer codes: the same result as the strings, 8x faster (the report's bootstrap calls
    # this 1,000 times).
    code = {label: i for i, label in enumerate(labels)}
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        np.array([code[g] for g in gold]),
        np.array([code[p] for p in pred]),
        labels=np.arange(len(labels)),
        zero_division=0.0,
    )
    return {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": float(support[i]),
        }
        for i, label in enumerate(labels)
    }


def require_sklearn() -> None:
    """ConfigError naming the extra when scikit-learn is missing: a run checks before its work."""
    _sklearn_metrics()


def _sklearn_metrics() -> ModuleType:
    try:
        import sklearn.metrics
    except ImportError:
        raise ConfigError(
            "the eval harness's per-class metrics need scikit-learn: pip install 'llmcat[evals]'"
        ) from None
    module: ModuleType = sklearn.metrics  # untyped: its functions are read as they are called
    return module


def macro_f1(items: Sequence[Outcome]) -> float:
    """Unweighted mean F1 over every class seen in gold or predictions (as scikit-learn)."""
    return _macro(per_class(items))


def weighted_f1(items: Sequence[Outcome]) -> float:
    """F1 per class weighted by gold support."""
    return _weighted(per_class(items))


def _macro(table: Mapping[str, Mapping[str, float]]) -> float:
    return sum(row["f1"] for row in table.values()) / len(table) if table else 0.0


def _weighted(table: Mapping[str, Mapping[str, float]]) -> float:
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


def ece_of(items: Sequence[Outcome], bins: int = 10) -> float | None:
    """ECE (``llmcat.confidence.calibration.expected_calibration_error``) over the items with a
    confidence; None when none has one."""
    scored = [(o.confidence, o.correct) for o in items if o.confidence is not None]
    if not scored:
        return None
    return expected_calibration_error([c for c, _ in scored], [r for _, r in scored], bins)


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
    table = per_class(items)
    metrics: dict[str, float | None] = {
        "items": float(len(items)),
        "accuracy": accuracy(items),
        "macro_f1": _macro(table),
        "weighted_f1": _weighted(table),
        "hierarchical_precision": hp,
        "hierarchical_recall": hr,
        "hierarchical_f1": hf,
        "invalid_rate": sum(o.invalid for o in items) / n,
        "error_rate": sum(o.error for o in items) / n,
        "ece": ece_of(items),
        **shortlist_recall(items),
        **review_coverage(items),
    }
    metrics.update({f"accuracy_{k}": v for k, v in accuracy_per_level(items, max_level).items()})
    return metrics


def review_coverage(items: Sequence[Outcome]) -> dict[str, float | None]:
    """The share of items flagged ``needs_review``, and the accuracy of the rest (None when
    nothing recorded the flag, or every item was flagged)."""
    known = [o for o in items if o.needs_review is not None]
    if not known:
        return {"review_rate": None, "unflagged_accuracy": None}
    kept = [o for o in known if not o.needs_review]
    return {
        "review_rate": 1.0 - len(kept) / len(known),
        "unflagged_accuracy": accuracy(kept) if kept else None,
    }


def shortlist_recall(items: Sequence[Outcome]) -> dict[str, float | None]:
    """Share of items whose gold category was among the fused candidates (recall@k: an answer
    outside them cannot be right), and the mean number of candidates; None without shortlists."""
    offered = [o for o in items if o.in_shortlist is not None]
    if not offered:
        return {"shortlist_recall": None, "shortlist_size": None}
    return {
        "shortlist_recall": sum(bool(o.in_shortlist) for o in offered) / len(offered),
        "shortlist_size": sum(o.shortlist_size or 0 for o in offered) / len(offered),
    }


# -- per-item scoring ---------------------------------------------------------------------------

_CJK = re.compile(r"[\u3400-\u9fff]")
_DIGITS = re.compile(r"\d+(?:\.\d+)?")


def score_classification(
    gold_path: Sequence[str], result: Classification, taxonomy: Taxonomy, max_level: int
) -> dict[str, JsonValue]:
    """Per-item scores; a prediction that is not a node of the taxonomy is ``invalid``."""
    gold = tuple(gold_path)
    invalid = False
    pred: tuple[str, ...] | None = None
    if result.error is None:
        node = taxonomy.find_path(result.path)
        if node is None or node.id != result.category_id:
            invalid = True
        else:
            pred = tuple(result.path)
    scores: dict[str, JsonValue] = {
        "correct": pred == gold,
        "invalid": invalid,
        "error": result.error is not None,
    }
    for level in range(1, max_level + 1):
        if len(gold) >= level:
            scores[f"level_{level}"] = pred is not None and pred[:level] == gold[:level]
    if result.experts:  # a fused strategy: its candidates are what any expert names
        candidates = candidates_of(result.experts)
        node = taxonomy.find_path(list(gold))
        scores["in_shortlist"] = node is not None and node.id in candidates
        scores["shortlist_size"] = len(candidates)
    return scores


def detect_language(text: str) -> str:
    """'zh' when a tenth or more of the letters are CJK, else 'en' (enough for en/zh checks)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "unknown"
    return "zh" if len(_CJK.findall(text)) / len(letters) >= 0.1 else "en"


def score_description(
    product: Product,
    result: Description,
    limits: CopyLimits,
    *,
    must_mention: Sequence[str] = (),
    forbidden: Sequence[str] = (),
    language: str = "en",
) -> dict[str, JsonValue]:
    """Schema validity, limits, coverage, invented numbers, forbidden terms, language."""
    if result.error is not None:
        return {
            "error": True,
            "schema_valid": False,
            "length_ok": False,
            "coverage": 0.0,
            "invented_numbers": 0,
            "unflagged_numbers": 0,
            "forbidden_hits": 0,
            "language_ok": False,
            "flagged": False,
            "source": "",
            "findings": {},
            "model_findings": {},
            "model_pass": False,
        }
    copy = {"title": result.title, "bullets": result.bullets, "body": result.body}
    # The model's copy: the returned one, or the one the composed copy replaced.
    of_model = result.findings if result.source == "model" else result.rejected_findings
    schema_valid = (
        bool(result.title)
        and bool(result.body)
        and len(result.bullets) == limits.bullets
        and all(isinstance(b, str) and b for b in result.bullets)
    )
    length_ok = (
        count_words(result.title) <= limits.title_words
        and count_words(result.body) <= limits.body_words
        and all(count_words(b) <= limits.bullet_words for b in result.bullets)
    )
    text = " ".join(copy_fields(copy).values()).lower()
    found = [m for m in must_mention if m.lower() in text]
    source = input_text(
        {"title": product.title, "brand": product.brand, "description": product.description},
        product.attributes,
    )
    invented = [f for f in check_copy(copy_fields(copy), source) if f.kind == "unsupported_number"]
    # An independent, deliberately naive second opinion: digit strings in the copy that the input
    # never contains. Counted only when the result is not flagged (a unit rewrite such as
    # 750 ml -> 0.75 L shows up here too, so this over-counts).
    naive = set(_DIGITS.findall(" ".join(copy_fields(copy).values()))) - set(
        _DIGITS.findall(source)
    )
    return {
        "error": False,
        "schema_valid": schema_valid,
        "length_ok": length_ok,
        "coverage": len(found) / len(must_mention) if must_mention else 1.0,
        "invented_numbers": len(invented),
        "unflagged_numbers": 0 if result.flagged else len(naive),
        "forbidden_hits": sum(term.lower() in text for term in forbidden),
        # The copy checker's rule: the words the copy adds to the product data are in the
        # language (values kept as given, such as "Nike" in Chinese copy, do not count).
        "language_ok": language_problem(" ".join(copy_fields(copy).values()), source, language)
        is None,
        "flagged": result.flagged,
        "source": result.source,
        "findings": dict(Counter(f.kind for f in result.findings)),
        "model_findings": dict(Counter(f.kind for f in of_model)),
        "model_pass": result.source == "model" and not result.findings,
    }


def description_metrics(
    scores: Sequence[Mapping[str, JsonValue]], languages: Sequence[str] = ()
) -> dict[str, float]:
    """The description block from per-item scores (``score_description``); ``languages``, one
    per score, adds the model-copy pass rate per language."""
    n = len(scores) or 1
    s = scores
    per_language: dict[str, list[bool]] = {}
    for score, language in zip(s, languages, strict=False):
        per_language.setdefault(language, []).append(bool(score.get("model_pass")))
    model_kinds = {
        f"model_{kind}_rate": sum(_found(x.get("model_findings", {}), kind) for x in s) / n
        for kind in FINDING_KINDS
    }
    return {
        "findings_rate": sum(bool(x.get("findings")) for x in s) / n,
        "model_copy_rate": sum(bool(x.get("model_pass")) for x in s) / n,
        **{f"model_copy_rate_{lang}": sum(v) / len(v) for lang, v in sorted(per_language.items())},
        "composed_rate": sum(x.get("source") == "composed" for x in s) / n,
        **model_kinds,
        "items": float(len(scores)),
        "schema_valid_rate": sum(_number(x["schema_valid"]) for x in s) / n,
        "length_compliance": sum(_number(x["length_ok"]) for x in s) / n,
        "attribute_coverage": sum(_number(x["coverage"]) for x in s) / n,
        "invented_number_rate": sum(_number(x["invented_numbers"]) > 0 for x in s) / n,
        "unflagged_number_rate": sum(_number(x.get("unflagged_numbers", 0)) > 0 for x in s) / n,
        "forbidden_rate": sum(_number(x["forbidden_hits"]) > 0 for x in s) / n,
        "language_match": sum(_number(x["language_ok"]) for x in s) / n,
        "flagged_rate": sum(_number(x["flagged"]) for x in s) / n,
        "error_rate": sum(_number(x["error"]) for x in s) / n,
    }


def _number(score: JsonValue) -> float:
    """A score that is a number or a flag, as a number (a score of another type is an error)."""
    if isinstance(score, (int, float)):
        return score
    raise TypeError(f"a score must be a number or a flag, not {score!r}")


def _found(findings: JsonValue, kind: str) -> bool:
    """Whether a scores' findings (kind -> count) hold ``kind``."""
    if not isinstance(findings, dict):
        raise TypeError(f"findings must be a mapping, not {findings!r}")
    return bool(findings.get(kind))


class Timed(Protocol):
    """A sample as the usage metrics see it (``records.ClassificationSample`` and friends)."""

    latency_s: float
    prompt_tokens: int
    completion_tokens: int
    cached: bool


def usage_metrics(samples: Sequence[Timed], wall_seconds: float) -> dict[str, float]:
    """Tokens, latency, speed and cache hits of a block of samples."""
    n = len(samples) or 1
    latencies = sorted(x.latency_s for x in samples) or [0.0]
    return {
        "prompt_tokens_per_item": sum(x.prompt_tokens for x in samples) / n,
        "completion_tokens_per_item": sum(x.completion_tokens for x in samples) / n,
        "latency_mean_s": sum(latencies) / len(latencies),
        "latency_p95_s": latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
        "items_per_s": len(samples) / wall_seconds if wall_seconds > 0 else 0.0,
        "cache_hit_rate": sum(x.cached for x in samples) / n,
    }
