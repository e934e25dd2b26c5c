"""report.html: a self-contained page of one run (``compare_report``: the diff of two runs,
compare.html; ``summary``: summary.md, whose tables the page shows too).

The page opens on headline numbers with bootstrap intervals; its templates (``templates/``: the
page frame, the table and plot macros, ``report.html.j2``, ``compare.html.j2``) draw the plots
(matplotlib as inline SVG, ``plots.py``; extra ``report``) and the sample explorers
(``explorer.py``, ``explorer.js``). The page loads nothing from the network.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypedDict

import jinja2

from llmcat.evals import metrics as M
from llmcat.evals import plots
from llmcat.evals.explorer import (
    Explorer,
    classification_explorer,
    description_explorer,
    path_text,
)
from llmcat.evals.gate import NO_BASELINE, Flip
from llmcat.evals.records import (
    DescriptionSample,
    RunSummary,
    Samples,
    classification_samples,
    description_samples,
)
from llmcat.evals.stats import Interval, bootstrap_intervals
from llmcat.evals.summary import Section, identity, summary_sections

TEMPLATES = Path(__file__).parent / "templates"
#: a cell the page right-aligns: a number, a signed change, an interval, n/a
NUMERIC_CELL = re.compile(r"(n/a|[-+]?[\d,.]+(%| to [-+]?[\d,.]+%?)?)")
#: classes with less gold support than this share one row of the per-class table
FOLD_BELOW = 3
#: the metrics the page opens with, each with its 95% bootstrap interval
HEADLINE_CLASSIFY = (
    "accuracy",
    "accuracy_level_1",
    "accuracy_level_2",
    "accuracy_level_3",
    "hierarchical_f1",
    "macro_f1",
    "ece",
    "review_rate",
    "unflagged_accuracy",
)
HEADLINE_DESCRIBE = (
    "model_copy_rate",
    "schema_valid_rate",
    "length_compliance",
    "attribute_coverage",
    "invented_number_rate",
    "language_match",
)


class Figure(TypedDict):
    """One plot of a page (``wide``: a row of its own, drawn at its own size)."""

    name: str
    svg: str
    caption: str
    wide: bool


class PageView(TypedDict, total=False):
    """What report.html.j2 shows of one run (``page_html`` fills in what a view leaves out)."""

    heading: str
    identity: str
    summary: list[Section]
    plots: list[Figure]
    plots_missing: str
    tables: list[Section]
    explorers: list[Explorer]


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.tests["numeric"] = lambda cell: bool(NUMERIC_CELL.fullmatch(str(cell)))
    return env


def render(template: str, **context: object) -> str:
    """A template of ``templates/`` rendered with ``context`` (autoescaped)."""
    return _environment().get_template(template).render(**context)


def headline(run: RunSummary, samples: Samples) -> Section | None:
    """The numbers the page opens with, each with its 95% bootstrap interval over items."""
    cls = classification_samples(samples)
    copy = description_samples(samples)
    rows: list[list[str]] = []
    if cls:
        level = max(len(s.gold) for s in cls)
        found = bootstrap_intervals(
            lambda items: M.classification_metrics(items, min(level, 3)),
            [s.outcome() for s in cls],
        )
        rows += _interval_rows("classify", found, HEADLINE_CLASSIFY)
    if copy:
        found = bootstrap_intervals(
            lambda items: M.description_metrics(items), [s.scores for s in copy]
        )
        rows += _interval_rows("describe", found, HEADLINE_DESCRIBE)
    if not rows:
        return None
    items = f"{len(cls)} classified items" if cls else ""
    cases = f"{len(copy)} copy cases" if copy else ""
    note = (
        f"{' and '.join(x for x in (items, cases) if x)}; the interval is the 2.5th to 97.5th "
        "percentile over 1,000 bootstrap resamples of the items."
    )
    return Section("Headline", ["metric", "value", "95% interval"], rows, [note])


def _interval_rows(
    task: Literal["classify", "describe"], found: Mapping[str, Interval], names: tuple[str, ...]
) -> list[list[str]]:
    rows = []
    for name in names:
        if name in found:
            v = found[name]
            fmt = M.format_metric
            rows.append(
                [
                    metric_label(task, name),
                    fmt(task, name, v.value),
                    f"{fmt(task, name, v.low)} to {fmt(task, name, v.high)}",
                ]
            )
    return rows


def metric_label(task: Literal["classify", "describe"], name: str) -> str:
    return next((m.label for m in M.metrics_for(task) if m.name == name), name)


def per_class_section(outcomes: list[M.Outcome]) -> Section:
    """Precision, recall and F1 per class by support; classes below ``FOLD_BELOW`` share a row."""
    table = M.per_class(outcomes)
    ranked = sorted(table.items(), key=lambda kv: (-kv[1]["support"], kv[0]))
    kept = [(k, v) for k, v in ranked if v["support"] >= FOLD_BELOW]
    folded = [v for _, v in ranked if v["support"] < FOLD_BELOW]
    rows = [
        [k, f"{v['support']:.0f}", f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}"]
        for k, v in kept
    ]
    if folded:
        n = len(folded)
        rows.append(
            [
                f"{n} classes with support below {FOLD_BELOW} (their mean)",
                f"{sum(v['support'] for v in folded):.0f}",
                *(
                    f"{sum(v[key] for v in folded) / n:.3f}"
                    for key in ("precision", "recall", "f1")
                ),
            ]
        )
    return Section(
        f"Per class ({len(kept)} with support {FOLD_BELOW} or more)",
        ["class", "support", "precision", "recall", "F1"],
        rows,
    )


def run_view(run: RunSummary, samples: Samples, heading: str) -> PageView:
    """What the page shows of one run: headline, summary tables, plots, detail tables and the
    sample explorers."""
    top = headline(run, samples)
    view: PageView = {
        "heading": heading,
        "identity": identity(run),
        "summary": ([top] if top else []) + summary_sections(run),
        "plots": [],
        "plots_missing": "",
        "tables": [],
        "explorers": [],
    }
    cls = classification_samples(samples)
    base = classification_samples(samples, baseline=True)
    copy = description_samples(samples)
    outcomes = [s.outcome() for s in cls]
    if cls:
        view["tables"].append(per_class_section(outcomes))
        view["tables"].append(
            Section(
                "Top confusions",
                ["gold", "predicted", "count"],
                [[g, p, str(c)] for g, p, c in M.top_confusions(outcomes)],
            )
        )
        view["explorers"].append(classification_explorer(cls))
    if copy:
        view["tables"].append(_side_by_side(samples))
        composed = {s.id: s for s in description_samples(samples, baseline=True)}
        view["explorers"].append(description_explorer(copy, composed))
    if not plots.available():
        view["plots_missing"] = "No plots: pip install 'llmcat[report]' (matplotlib) to draw them."
        return view
    if cls:
        levels = M.accuracy_per_level(outcomes)
        baseline_levels = M.accuracy_per_level([s.outcome() for s in base]) if base else None
        strategy = str(run.metrics.get("strategy", "run"))
        view["plots"].append(
            figure(
                "accuracy-per-level",
                plots.accuracy_per_level(levels, baseline_levels, strategy, "embedding baseline"),
                "Accuracy of the first N names of the path, the embedding baseline beside it.",
            )
        )
        bins = M.reliability(outcomes)
        if bins:
            view["plots"].append(
                figure(
                    "reliability",
                    plots.reliability(bins),
                    "Top: accuracy per confidence bin. Bottom: items per bin.",
                )
            )
            threshold = review_threshold_of(run)
            view["plots"].append(
                figure(
                    "coverage",
                    plots.coverage(M.accuracy_vs_coverage(outcomes), threshold),
                    "Keeping the most confident share: the red line is the review threshold.",
                )
            )
        labels, matrix = _confusion(outcomes)
        view["plots"].append(
            figure(
                "confusion",
                plots.confusion(labels, matrix),
                "Level 1: gold rows, predicted columns.",
                wide=True,
            )
        )
    if copy:
        kinds: Counter[str] = Counter()
        for s in copy:
            found = s.scores.get("model_findings")
            kinds.update({k: 1 for k in found} if isinstance(found, dict) else {})
        if kinds:
            view["plots"].append(
                figure(
                    "copy-findings",
                    plots.findings(dict(kinds)),
                    "Copies of the model whose check found each kind.",
                )
            )
    return view


def review_threshold_of(run: RunSummary) -> float:
    """The run's review threshold: its plan's (older runs: 0.5, the default then)."""
    plan = run.manifest.plan or {}
    value = plan.get("review_threshold")
    return float(value) if isinstance(value, (int, float)) else 0.5


def figure(name: str, svg: str, caption: str, *, wide: bool = False) -> Figure:
    """One plot of a page (``wide``: a row of its own, drawn at its own size)."""
    return Figure(name=name, svg=svg, caption=caption, wide=wide)


def page_html(title: str, view: PageView) -> str:
    """A page of one view (``run_view``'s keys) with no gate and no flips."""
    full = {"summary": [], "plots": [], "plots_missing": "", "tables": [], "explorers": []}
    return render(
        "report.html.j2",
        title=title,
        runs=[{**full, **view}],
        gate_lines=[],
        flips=[],
        explorer_js=explorer_js(),
    )


def _confusion(outcomes: list[M.Outcome]) -> tuple[list[str], list[list[int]]]:
    pairs = Counter(
        (o.gold[0], o.pred[0] if o.pred else M.NO_PREDICTION) for o in outcomes if o.gold
    )
    labels = sorted({g for g, _ in pairs} | {p for _, p in pairs})
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for (g, p), count in pairs.items():
        matrix[index[g]][index[p]] += count
    return labels, matrix


# Untyped values: the copy as model_dump gives it, or a rejected copy as the model wrote it.
def _copy_text(copy: Mapping[str, Any], findings: list[dict[str, Any]]) -> str:
    bullets = "".join(f"\n• {b}" for b in copy["bullets"])
    found = "".join(f"\n! {f['kind']}: {f['text']}" for f in findings)
    return f"{copy['title']}{bullets}\n\n{copy['body']}{found}"


def _side_by_side(samples: Samples, count: int = 12) -> Section:
    """Model copy (with its findings) beside composed copy for the first ``count`` cases."""
    model: dict[str, DescriptionSample] = {s.id: s for s in description_samples(samples)}
    composed = {s.id: s for s in description_samples(samples, baseline=True)}
    rows = []
    for i in list(model)[:count]:
        out = model[i].output.model_dump(mode="json")
        if out.get("source", "model") == "model":
            shown = _copy_text(out, out["findings"])
        elif out.get("rejected_copy"):
            shown = _copy_text(out["rejected_copy"], out["rejected_findings"])
        else:
            shown = "(no usable answer)"
        rows.append(
            [
                f"{i} ({model[i].language or out.get('language', '')})",
                out.get("source", "model"),
                shown,
                _copy_text(composed[i].output.model_dump(mode="json"), []) if i in composed else "",
            ]
        )
    return Section(
        f"Model vs composed copy (first {len(rows)} cases)",
        ["case", "returned", "model copy (its findings)", "composed copy"],
        rows,
        copy=True,
    )


def report_html(
    run: RunSummary,
    samples: Samples,
    flipped: list[Flip] | None = None,
    gate_lines: list[str] | None = None,
) -> str:
    """The page of one run."""
    lines = [line for line in gate_lines or [] if line != NO_BASELINE]
    return render(
        "report.html.j2",
        title=f"llmcat eval: {run.suite}",
        runs=[run_view(run, samples, run.suite)],
        gate_lines=lines,
        flips=flip_sections(flipped or [], samples, "baseline", "this run"),
        explorer_js=explorer_js(),
    )


def flip_sections(flipped: list[Flip], samples: Samples, before: str, after: str) -> list[Section]:
    """The items one run got right and the other wrong, both ways, with their titles."""
    titles = {s.id: str(s.input.get("title") or "") for s in classification_samples(samples)}
    out = []
    for now_correct, title in (
        (False, f"Right in {before}, wrong in {after}"),
        (True, f"Wrong in {before}, right in {after}"),
    ):
        rows = [
            [f.id, titles.get(f.id, ""), path_text(f.gold), path_text(f.baseline), path_text(f.run)]
            for f in flipped
            if f.now_correct == now_correct
        ]
        out.append(
            Section(f"{title} ({len(rows)})", ["id", "product", "gold", before, after], rows)
        )
    return out if any(section.rows for section in out) else []


@lru_cache(maxsize=1)
def explorer_js() -> str:
    """The script that draws the sample explorers of a page."""
    return (TEMPLATES / "explorer.js").read_text(encoding="utf-8")
