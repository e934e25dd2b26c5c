"""summary.md: a run's metric tables as Markdown, fit for a CI job summary. Its tables
(``Section``) are those report.html shows too (``report``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import JsonValue

from llmcat.evals import metrics as M
from llmcat.evals.records import RunSummary


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
    values: Mapping[str, JsonValue],
    base: Mapping[str, JsonValue] | None,
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
