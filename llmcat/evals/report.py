"""summary.md (fit for a CI job summary) and a self-contained report.html for one run, or for two
runs side by side (``python -m evals compare A B``).

Both are built from the same sections (``summary_sections``): Markdown for the summary, the
Jinja2 template ``templates/report.html.j2`` for the page, with plots drawn by matplotlib as
inline SVG (``plots.py``; extra ``report``). The page loads nothing from the network.
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

from . import metrics as M
from . import plots
from .gate import Flip
from .records import (
    DescriptionSample,
    RunSummary,
    Samples,
    classification_samples,
    description_samples,
)

TEMPLATES = Path(__file__).parent / "templates"


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
    """Backend, model, strategy, commit and duration of a run, in one line."""
    man = run.manifest
    commit = (man.git.commit or "?")[:10]
    dirty = " (dirty)" if man.git.dirty else ""
    return (
        f"backend {man.backend}, model {man.model}, strategy {man.strategy}, "
        f"commit {commit}{dirty}, {man.duration_s:.0f} s"
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
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context: Any) -> str:
    """A template of ``templates/`` rendered with ``context`` (autoescaped)."""
    return _environment().get_template(template).render(**context)


def run_view(run: RunSummary, samples: Samples, heading: str) -> dict[str, Any]:
    """What the page shows of one run: summary tables, plots and detail tables."""
    view: dict[str, Any] = {
        "heading": heading,
        "identity": identity(run),
        "summary": summary_sections(run),
        "plots": [],
        "plots_missing": "",
        "tables": [],
    }
    cls = classification_samples(samples)
    base = classification_samples(samples, baseline=True)
    copy = description_samples(samples)
    outcomes = [s.outcome() for s in cls]
    if cls:
        rows = sorted(M.per_class(outcomes).items(), key=lambda kv: -kv[1]["support"])[:60]
        view["tables"].append(
            Section(
                "Per class (top 60 by support)",
                ["class", "support", "precision", "recall", "F1"],
                [
                    [
                        k,
                        f"{v['support']:.0f}",
                        f"{v['precision']:.3f}",
                        f"{v['recall']:.3f}",
                        f"{v['f1']:.3f}",
                    ]
                    for k, v in rows
                ],
            )
        )
        view["tables"].append(
            Section(
                "Top confusions",
                ["gold", "predicted", "count"],
                [[g, p, str(c)] for g, p, c in M.top_confusions(outcomes)],
            )
        )
    if copy:
        view["tables"].append(_side_by_side(samples))
    if not plots.available():
        view["plots_missing"] = "No plots: pip install 'llmcat[report]' (matplotlib) to draw them."
        return view
    if cls:
        levels = M.accuracy_per_level(outcomes)
        baseline_levels = M.accuracy_per_level([s.outcome() for s in base]) if base else None
        strategy = str(run.metrics.get("strategy", "run"))
        view["plots"].append(
            _plot(
                "accuracy-per-level",
                plots.accuracy_per_level(levels, baseline_levels, strategy, "embedding baseline"),
                "Accuracy of the first N names of the path, the embedding baseline beside it.",
            )
        )
        bins = M.reliability(outcomes)
        if bins:
            view["plots"].append(
                _plot(
                    "reliability",
                    plots.reliability(bins),
                    "Bars: accuracy per confidence bin (n: items).",
                )
            )
            threshold = review_threshold_of(run)
            view["plots"].append(
                _plot(
                    "coverage",
                    plots.coverage(M.accuracy_vs_coverage(outcomes), threshold),
                    "Keeping the most confident share: the red line is the review threshold.",
                )
            )
        labels, matrix = _confusion(outcomes)
        view["plots"].append(
            _plot(
                "confusion",
                plots.confusion(labels, matrix),
                "Level 1: gold rows, predicted columns.",
            )
        )
    if copy:
        kinds: Counter[str] = Counter()
        for s in copy:
            found = s.scores.get("model_findings")
            kinds.update({k: 1 for k in found} if isinstance(found, dict) else {})
        if kinds:
            view["plots"].append(
                _plot(
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


def _plot(name: str, svg: str, caption: str) -> dict[str, str]:
    return {"name": name, "svg": svg, "caption": caption}


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
    return render(
        "report.html.j2",
        title=f"llmcat eval: {run.suite}",
        runs=[run_view(run, samples, run.suite)],
        gate_lines=gate_lines or [],
        flipped=flipped or [],
    )


def compare_html(
    a: tuple[str, RunSummary, Samples],
    b: tuple[str, RunSummary, Samples],
    flipped: list[Flip],
    gate_lines: list[str],
) -> str:
    """The page of two runs side by side (B against A), with the gate's lines and flips."""
    return render(
        "report.html.j2",
        title=f"llmcat eval: {a[0]} (A) vs {b[0]} (B)",
        runs=[
            run_view(run, samples, f"{label}: {name}")
            for label, (name, run, samples) in (("A", a), ("B", b))
        ],
        gate_lines=gate_lines,
        flipped=flipped,
    )
