"""compare.html: the diff of two runs (``python -m evals compare A B``), B against A on their
shared items, drawn with the page templates of ``report``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, TypedDict

from llmcat.evals import metrics as M
from llmcat.evals import plots
from llmcat.evals.explorer import Column, Explorer, Filter, classification_explorer, path_text
from llmcat.evals.gate import NO_BASELINE, Flip
from llmcat.evals.records import (
    ClassificationSample,
    RunSummary,
    Samples,
    classification_samples,
    description_samples,
)
from llmcat.evals.report import (
    HEADLINE_CLASSIFY,
    HEADLINE_DESCRIBE,
    Figure,
    explorer_js,
    figure,
    flip_sections,
    metric_label,
    render,
)
from llmcat.evals.stats import Interval, paired_bootstrap_deltas
from llmcat.evals.summary import Section, identity


class CompareView(TypedDict):
    """What compare.html.j2 shows of two runs."""

    identities: list[str]
    deltas: list[Section]
    flips: list[Section]
    plots: list[Figure]
    explorers: list[Explorer]


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
    shared = _shared(samples_a, samples_b)
    figures = []
    if shared and plots.available():
        before = M.accuracy_per_level([x.outcome() for x, _ in shared])
        after = M.accuracy_per_level([y.outcome() for _, y in shared])
        figures.append(
            figure(
                "accuracy-per-level",
                plots.accuracy_per_level(after, before, "B", "A"),
                f"Accuracy of the first N names of the path on the {len(shared)} shared items.",
            )
        )
    view = CompareView(
        identities=[f"A: {name_a}: {identity(run_a)}", f"B: {name_b}: {identity(run_b)}"],
        deltas=delta_sections(samples_a, samples_b),
        flips=flip_sections(flipped, samples_b, "A", "B"),
        plots=figures,
        explorers=[compare_explorer(shared)] if shared else [],
    )
    return render(
        "compare.html.j2",
        title=f"llmcat eval: {name_b} (B) against {name_a} (A)",
        view=view,
        gate_lines=[line for line in gate_lines if line != NO_BASELINE],
        explorer_js=explorer_js(),
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
                metric_label(task, name),
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
