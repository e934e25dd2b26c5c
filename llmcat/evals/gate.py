"""The gate: a run's exit code, against a stored baseline when one is given.

Four checks, in this order: the baseline is comparable (same dataset, taxonomy and templates:
exit 4 otherwise), the error rate is below ``max_error_rate`` (exit 3: infrastructure, not a
verdict on quality), no paired accuracy dropped significantly (McNemar's exact test on the items
both runs share, per level), and no F1 dropped significantly (paired bootstrap). A description
check is a paired test like accuracy. A run stopped early (``RunSummary.interrupted``) is not
checked at all: exit 3, no verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from llmcat.evals import metrics as M
from llmcat.evals.records import (
    Baseline,
    ClassificationSample,
    DescriptionSample,
    RunSummary,
    Scores,
)
from llmcat.evals.stats import mcnemar_exact, paired_bootstrap

EXIT_PASS, EXIT_REGRESSION, EXIT_USAGE, EXIT_INFRA, EXIT_NOT_COMPARABLE = 0, 1, 2, 3, 4


@dataclass
class Flip:
    """An item right in one run and wrong in the other."""

    id: str
    gold: list[str]
    baseline: list[str]
    run: list[str]
    now_correct: bool


@dataclass
class GateResult:
    exit_code: int
    lines: list[str]
    flipped: list[Flip] = field(default_factory=list)


#: the gate's one line when a run had no baseline (the report leaves it out)
NO_BASELINE = "no baseline given: nothing to compare"


def partial_line(interrupted: str) -> str:
    """The gate's one line for a run that was stopped early: it is never a verdict."""
    return f"partial run (stopped by {interrupted}): no verdict"


@dataclass(frozen=True)
class Thresholds:
    """What counts as a regression: a drop above ``max_drop`` with p below ``alpha``."""

    max_drop: float = 0.01
    alpha: float = 0.05


def paired_line(
    name: str, before: Sequence[bool], after: Sequence[bool], limits: Thresholds
) -> tuple[str, bool]:
    """McNemar's exact test of paired right/wrong: one line, and whether it is a regression."""
    lost = sum(a and not b for a, b in zip(before, after, strict=True))
    gained = sum(b and not a for a, b in zip(before, after, strict=True))
    n = max(len(before), 1)
    rate_a, rate_b = sum(before) / n, sum(after) / n
    p = mcnemar_exact(lost, gained)
    worse = rate_a - rate_b > limits.max_drop and p < limits.alpha
    line = (
        f"{name} {rate_a:.3f} -> {rate_b:.3f} (McNemar exact p={p:.4f}, {lost} lost / "
        f"{gained} gained){' REGRESSION' if worse else ''}"
    )
    return line, worse


def not_comparable(run: RunSummary, baseline: Baseline, allow_template_change: bool) -> list[str]:
    """Why the run cannot be compared with the baseline (nothing when it can)."""
    mine, theirs = run.manifest, baseline.manifest
    problems = []
    if mine.dataset_sha256 != theirs.dataset_sha256:
        problems.append("the dataset differs (sha256)")
    if mine.taxonomy_version != theirs.taxonomy_version:
        problems.append("the taxonomy differs")
    if not allow_template_change:
        for task, version in mine.templates.items():
            theirs_version = theirs.templates.get(task)
            if theirs_version is not None and theirs_version != version:
                problems.append(
                    f"the {task} template differs ({theirs_version} -> {version}; pass "
                    "--allow-template-change to compare anyway)"
                )
    return problems


def error_rate(run: RunSummary) -> float:
    """The larger error rate of classification and description."""
    description = run.metrics.get("description")
    rates = [
        run.metrics.get("error_rate", 0.0),
        description.get("error_rate", 0.0) if isinstance(description, dict) else 0.0,
    ]
    return max(float(r) if isinstance(r, (int, float)) else 0.0 for r in rates)


def classification_checks(
    before: Sequence[M.Outcome], after: Sequence[M.Outcome], ids: Sequence[str], limits: Thresholds
) -> tuple[list[str], bool, list[Flip]]:
    """Paired accuracy per level and F1 (bootstrap) on the shared items, and the flips."""
    lines, regression = [], False
    deepest = max(len(o.gold) for o in before)
    for level in [None, *range(1, min(deepest, 3) + 1)]:
        pairs = [
            (x, y)
            for x, y in zip(before, after, strict=True)
            if level is None or len(x.gold) >= level
        ]
        line, worse = paired_line(
            "accuracy" if level is None else f"accuracy level {level}",
            [_right(x, level) for x, _ in pairs],
            [_right(y, level) for _, y in pairs],
            limits,
        )
        regression |= worse
        lines.append(line)
    f1s: tuple[tuple[str, Callable[[Sequence[M.Outcome]], float]], ...] = (
        ("macro_f1", M.macro_f1),
        ("hierarchical_f1", lambda o: M.hierarchical_prf(o)[2]),
    )
    for name, fn in f1s:
        boot = paired_bootstrap(fn, before, after, alpha=limits.alpha, seed=0)
        worse = -boot.difference > limits.max_drop and boot.p_drop < limits.alpha
        regression |= worse
        lines.append(
            f"{name} {fn(before):.3f} -> {fn(after):.3f} (paired bootstrap 95% CI of change "
            f"[{boot.low:+.3f}, {boot.high:+.3f}], p={boot.p_drop:.4f})"
            f"{' REGRESSION' if worse else ''}"
        )
    flipped = [
        Flip(i, list(x.gold), list(x.pred or ()), list(y.pred or ()), y.correct)
        for i, x, y in zip(ids, before, after, strict=True)
        if x.correct != y.correct
    ]
    return lines, regression, flipped


def description_checks(
    before: dict[str, Scores], after: dict[str, Scores], limits: Thresholds
) -> tuple[list[str], bool]:
    """Schema validity and copy without findings, paired on the shared copy cases."""
    ids = sorted(set(before) & set(after))
    if not ids:
        return [], False
    checks: list[tuple[str, Callable[[Scores], bool]]] = [
        ("description schema validity", lambda s: bool(s.get("schema_valid"))),
    ]
    if all("findings" in before[i] for i in ids):  # baselines from before the copy checks
        checks.append(("copy without findings", lambda s: not s["findings"] and not s["error"]))
    lines, regression = [], False
    for name, good in checks:
        line, worse = paired_line(
            name, [good(before[i]) for i in ids], [good(after[i]) for i in ids], limits
        )
        regression |= worse
        lines.append(line)
    return lines, regression


def gate(
    run: RunSummary,
    samples: list[ClassificationSample | DescriptionSample],
    baseline: Baseline | None,
    *,
    max_drop: float = 0.01,
    alpha: float = 0.05,
    max_error_rate: float = 0.05,
    allow_template_change: bool = False,
) -> GateResult:
    """Decide the exit code of a run, against a baseline when one is given."""
    if run.interrupted is not None:
        return GateResult(EXIT_INFRA, [partial_line(run.interrupted)])
    if baseline is not None:
        problems = not_comparable(run, baseline, allow_template_change)
        if problems:
            return GateResult(
                EXIT_NOT_COMPARABLE, [f"baseline not comparable: {p}" for p in problems]
            )
    errors = error_rate(run)
    if errors > max_error_rate:
        return GateResult(
            EXIT_INFRA,
            [
                f"error rate {errors:.1%} is above --max-error-rate {max_error_rate:.1%}: "
                "infrastructure problem, not a quality verdict"
            ],
        )
    if baseline is None:
        return GateResult(EXIT_PASS, [NO_BASELINE])
    limits = Thresholds(max_drop, alpha)
    current = Baseline.of_run(run, samples)
    ids = sorted(set(current.items) & set(baseline.items))
    lines: list[str] = []
    regression, flipped = False, list[Flip]()
    if ids:
        before = [baseline.items[i].outcome() for i in ids]
        after = [current.items[i].outcome() for i in ids]
        lines, regression, flipped = classification_checks(before, after, ids, limits)
    copy_lines, copy_worse = description_checks(
        baseline.description_items, current.description_items, limits
    )
    lines += copy_lines
    regression |= copy_worse
    verdict = "significant regression" if regression else "no significant regression"
    return GateResult(
        EXIT_REGRESSION if regression else EXIT_PASS,
        [f"{verdict} against the baseline", *lines],
        flipped,
    )


def _right(outcome: M.Outcome, level: int | None) -> bool:
    """Correct on the full path (``level`` None) or on its first ``level`` names."""
    if level is None:
        return outcome.correct
    return outcome.pred is not None and outcome.pred[:level] == outcome.gold[:level]


__all__ = [
    "EXIT_INFRA",
    "EXIT_NOT_COMPARABLE",
    "EXIT_PASS",
    "EXIT_REGRESSION",
    "EXIT_USAGE",
    "NO_BASELINE",
    "Flip",
    "GateResult",
    "Thresholds",
    "gate",
    "paired_line",
    "partial_line",
]
