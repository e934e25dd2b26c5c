"""summary.md (fit for a CI job summary) and a self-contained report.html for one run, or the
diff of two runs (``python -m evals compare A B``: compare.html).

The summary and the page share their tables (``Section``). The page opens on headline numbers
with bootstrap intervals; its templates (``templates/``: the page frame, the table and plot
macros, ``report.html.j2``, ``compare.html.j2``) draw the plots (matplotlib as inline SVG,
``plots.py``; extra ``report``) and the sample explorers (``explorer.py``, ``explorer.js``).
The page loads nothing from the network.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import jinja2

from llmcat.evals import metrics as M
from llmcat.evals import plots
from llmcat.evals.explorer import (
    Column,
    Explorer,
    Filter,
    classification_explorer,
    description_explorer,
    path_text,
)
from llmcat.evals.gate import NO_BASELINE, Flip
from llmcat.evals.records import (
    ClassificationSample,
    DescriptionSample,
    RunSummary,
    Samples,
    classification_samples,
    description_samples,
)
from llmcat.evals.stats import Interval, bootstrap_intervals, paired_bootstrap_deltas

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


@dataclass
class Section:
    """One table of the summary: a title, notes above it, a header row and rows of text."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    copy: bool = False  # cells hold listing copy: keep line breaks


def trust_remark(trust: str) -> str:
    """What a reader should know about the weights: a muted model, or nothing fitted."""
    if trust.startswith("neutral"):
        return " - nothing was fitted for this model; `python -m evals fit` on this run fits it"
    if re.search(r"\bllm=0\.00\b", trust):
        return " - the LLM's fitted weight is 0: on the data it was fitted on it added nothing, so it was not asked"
    return ""


def _metric_rows(
    task: Literal["classify", "describe"],
    values: dict[str, Any],
    base: dict[str, Any] | None,
) -> list[list[str]]:
    rows = []
    for metric in M.metrics_for(task):
        if metric.name in values:
            row = [metric.label, metric.format(values[metric.name])]
            if base:
                row.append(metric.format(base.get(metric.name)))
            rows.append(row)
    return rows


def identity(run: RunSummary) -> str:
    """Backend, model, strategy, embedder, commit and duration of a run, in one line."""
    man = run.manifest
    commit = (man.git.commit or "?")[:10]
    dirty = " (dirty)" if man.git.dirty else ""
    planned = (man.plan or {}).get("embedder")
    embedder = man.embedding_model or (planned if isinstance(planned, str) else None)
    return (
        f"backend {man.backend}, model {man.model}, strategy {man.strategy}, "
        + (f"embedder {embedder}, " if embedder else "")
        + f"commit {commit}{dirty}, {man.duration_s:.0f} s"
    )


def summary_sections(run: RunSummary) -> list[Section]:
    """The metric tables of a run, each with its baseline's column (embedding, composed)."""
    m, baselines = run.metrics, run.baselines
    sections = []
    if "accuracy" in m:
        embedding = baselines.get("embedding")
        trust = str(m.get("trust") or "")
        notes = [f"Experts weighted: {trust}{trust_remark(trust)}"] if trust else []
        headers = ["metric", str(m.get("strategy", "llm"))] + (
            ["embedding baseline"] if embedding else []
        )
        sections.append(
            Section("Classification", headers, _metric_rows("classify", m, embedding), notes)
        )
    description = m.get("description")
    if isinstance(description, dict):
        composed = baselines.get("composed")
        headers = ["metric", "returned"] + (["composed baseline"] if composed else [])
        note = (
            "Returned copy is the model's, or composed from the product's fields where the "
            "model's copy kept findings; the composed baseline is composed copy for every case."
        )
        rows = _metric_rows("describe", description, composed)
        sections.append(Section("Descriptions", headers, rows, [note]))
    return sections


def summary_markdown(run: RunSummary, gate_lines: list[str] | None = None) -> str:
    out = [f"## llmcat eval: `{run.suite}`", "", identity(run), ""]
    if run.interrupted is not None:
        out += [
            f"**Partial run**: stopped by {run.interrupted}; the figures cover those items.",
            "",
        ]
    for section in summary_sections(run):
        out += [f"### {section.title}", ""]
        for note in section.notes:
            out += [note, ""]
        out.append("| " + " | ".join(section.headers) + " |")
        out.append("| --- |" + " ---: |" * (len(section.headers) - 1))
        out += ["| " + " | ".join(row) + " |" for row in section.rows]
        out.append("")
    if gate_lines:
        out += ["### Against the baseline", ""]
        out += [f"- {line}" for line in gate_lines]
        out.append("")
    return "\n".join(out)


# -- the page -----------------------------------------------------------------------------------


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


def render(template: str, **context: Any) -> str:
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
                    _label(task, name),
                    fmt(task, name, v.value),
                    f"{fmt(task, name, v.low)} to {fmt(task, name, v.high)}",
                ]
            )
    return rows


def _label(task: Literal["classify", "describe"], name: str) -> str:
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


def run_view(run: RunSummary, samples: Samples, heading: str) -> dict[str, Any]:
    """What the page shows of one run: headline, summary tables, plots, detail tables and the
    sample explorers."""
    top = headline(run, samples)
    view: dict[str, Any] = {
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


def figure(name: str, svg: str, caption: str, *, wide: bool = False) -> dict[str, Any]:
    """One plot of a page (``wide``: a row of its own, drawn at its own size)."""
    return {"name": name, "svg": svg, "caption": caption, "wide": wide}


def page_html(title: str, view: Mapping[str, Any]) -> str:
    """A page of one view (``run_view``'s keys) with no gate and no flips."""
    full = {"summary": [], "plots": [], "plots_missing": "", "tables": [], "explorers": []}
    return render(
        "report.html.j2",
        title=title,
        runs=[{**full, **view}],
        gate_lines=[],
        flips=[],
        explorer_js=_explorer_js(),
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
        explorer_js=_explorer_js(),
    )


def compare_html(
    a: tuple[str, RunSummary, Samples],
    b: tuple[str, RunSummary, Samples],
    flipped: list[Flip],
    gate_lines: list[str],
) -> str:
    """The diff of two runs (B against A) on their shared items: each metric's change with its
    paired interval, the items that flipped both ways with their titles, accuracy per level of
    both, and an explorer of the shared items with both answers."""
    (name_a, run_a, samples_a), (name_b, run_b, samples_b) = a, b
    view: dict[str, Any] = {
        "identities": [f"A: {name_a}: {identity(run_a)}", f"B: {name_b}: {identity(run_b)}"]
    }
    view["deltas"] = delta_sections(samples_a, samples_b)
    view["flips"] = flip_sections(flipped, samples_b, "A", "B")
    shared = _shared(samples_a, samples_b)
    view["plots"] = []
    if shared and plots.available():
        before = M.accuracy_per_level([x.outcome() for x, _ in shared])
        after = M.accuracy_per_level([y.outcome() for _, y in shared])
        view["plots"].append(
            figure(
                "accuracy-per-level",
                plots.accuracy_per_level(after, before, "B", "A"),
                f"Accuracy of the first N names of the path on the {len(shared)} shared items.",
            )
        )
    view["explorers"] = [compare_explorer(shared)] if shared else []
    return render(
        "compare.html.j2",
        title=f"llmcat eval: {name_b} (B) against {name_a} (A)",
        view=view,
        gate_lines=[line for line in gate_lines if line != NO_BASELINE],
        explorer_js=_explorer_js(),
    )


def _shared(
    samples_a: Samples, samples_b: Samples
) -> list[tuple[ClassificationSample, ClassificationSample]]:
    by_id = {s.id: s for s in classification_samples(samples_a)}
    return [(by_id[s.id], s) for s in classification_samples(samples_b) if s.id in by_id]


def delta_sections(samples_a: Samples, samples_b: Samples) -> list[Section]:
    """Per metric: A, B, B - A and the paired bootstrap 95% interval of the change."""
    sections = []
    shared = _shared(samples_a, samples_b)
    if shared:
        level = min(max(len(x.gold) for x, _ in shared), 3)
        found = paired_bootstrap_deltas(
            lambda items: M.classification_metrics(items, level),
            [x.outcome() for x, _ in shared],
            [y.outcome() for _, y in shared],
        )
        a_values = M.classification_metrics([x.outcome() for x, _ in shared], level)
        sections.append(
            _delta_section(
                "Classification", "classify", found, a_values, HEADLINE_CLASSIFY, len(shared)
            )
        )
    copy_a = {s.id: s for s in description_samples(samples_a)}
    pairs = [(copy_a[s.id], s) for s in description_samples(samples_b) if s.id in copy_a]
    if pairs:
        found = paired_bootstrap_deltas(
            lambda items: M.description_metrics(items),
            [x.scores for x, _ in pairs],
            [y.scores for _, y in pairs],
        )
        copy_values: Mapping[str, float | None] = M.description_metrics(
            [x.scores for x, _ in pairs]
        )
        sections.append(
            _delta_section("Copy", "describe", found, copy_values, HEADLINE_DESCRIBE, len(pairs))
        )
    return sections


def _delta_section(
    title: str,
    task: Literal["classify", "describe"],
    found: Mapping[str, Interval],
    a_values: Mapping[str, float | None],
    names: tuple[str, ...],
    shared: int,
) -> Section:
    rows = []
    for name in names:
        before = a_values.get(name)
        if name not in found or before is None:
            continue
        d = found[name]
        rows.append(
            [
                _label(task, name),
                M.format_metric(task, name, before),
                M.format_metric(task, name, before + d.value),
                f"{d.value:+.3f}",
                f"{d.low:+.3f} to {d.high:+.3f}",
            ]
        )
    note = (
        f"On the {shared} items both runs answered; the interval resamples those items "
        "(the same ones for A and B) 1,000 times. An interval that excludes 0 is a change "
        "beyond the noise of this set."
    )
    return Section(title, ["metric", "A", "B", "B - A", "95% interval of B - A"], rows, [note])


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


def compare_explorer(shared: list[tuple[ClassificationSample, ClassificationSample]]) -> Explorer:
    """The shared items with both answers; a row opens B's detail with A's answer on top."""
    explorer = classification_explorer([b for _, b in shared], name="shared")
    explorer.columns.insert(3, Column("answer_a", "A's answer", wide=True))
    explorer.columns[4].label = "B's answer"
    explorer.columns.insert(6, Column("result_a", "A"))
    explorer.columns[7].label = "B"
    explorer.filters = [
        Filter("result_a", "A", ["right", "wrong"]),
        Filter("result", "B", ["right", "wrong"]),
        Filter("change", "change", ["fixed", "broken", "same"]),
        *explorer.filters[1:],
    ]
    for row, (a, b) in zip(explorer.rows, shared, strict=True):
        right_a, right_b = a.outcome().correct, b.outcome().correct
        row["cells"]["answer_a"] = path_text(a.output.path)
        row["cells"]["result_a"] = "right" if right_a else "wrong"
        row["cells"]["change"] = (
            "same" if right_a == right_b else ("fixed" if right_b else "broken")
        )
        row["detail"].insert(
            0,
            {
                "title": "A's answer",
                "kind": "pairs",
                "rows": [
                    ["answer", path_text(a.output.path)],
                    ["confidence", _confidence(a.output.confidence)],
                ],
            },
        )
    explorer.title = "Shared items, B's detail (click a row to open it)"
    return explorer


def _confidence(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@lru_cache(maxsize=1)
def _explorer_js() -> str:
    return (TEMPLATES / "explorer.js").read_text(encoding="utf-8")
