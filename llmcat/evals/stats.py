"""Paired significance tests for comparing a run with a baseline on the same items. Pure."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


def mcnemar_exact(only_a_right: int, only_b_right: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs (a binomial test at 1/2)."""
    n = only_a_right + only_b_right
    if n == 0:
        return 1.0
    k = min(only_a_right, only_b_right)
    # Integer arithmetic: 2**n overflows a float beyond 1,023 discordant pairs.
    tail: float = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class BootstrapResult:
    """Observed difference (b - a), its percentile interval and the one-sided p of ``b >= a``."""

    difference: float
    low: float
    high: float
    p_drop: float  # share of resamples where b - a >= 0: small means b is reliably worse


def paired_bootstrap(
    metric: Callable[[Sequence[T]], float],
    a: Sequence[T],
    b: Sequence[T],
    *,
    resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> BootstrapResult:
    """Resample item indices with replacement, the same indices for both runs."""
    if len(a) != len(b):
        raise ValueError("paired bootstrap needs the same items in both runs")
    rng = random.Random(seed)
    n = len(a)
    observed = metric(b) - metric(a)
    diffs = []
    for _ in range(resamples):
        idx = [rng.randrange(n) for _ in range(n)]
        diffs.append(metric([b[i] for i in idx]) - metric([a[i] for i in idx]))
    diffs.sort()
    low = diffs[math.floor(alpha / 2 * resamples)]
    high = diffs[min(resamples - 1, math.ceil((1 - alpha / 2) * resamples) - 1)]
    p_drop = (sum(d >= 0 for d in diffs) + 1) / (resamples + 1)
    return BootstrapResult(observed, low, high, p_drop)


@dataclass(frozen=True)
class Interval:
    """A value and its bootstrap percentile interval."""

    value: float
    low: float
    high: float


#: metrics of a list of items, by name (None: undefined on these items)
Compute = Callable[[Sequence[T]], Mapping[str, float | None]]


def _percentile_intervals(
    observed: Mapping[str, float | None], draws: Sequence[Mapping[str, float | None]], alpha: float
) -> dict[str, Interval]:
    out = {}
    for name, value in observed.items():
        if value is None:
            continue
        values = sorted(v for d in draws if (v := d.get(name)) is not None)
        if not values:
            continue
        low = values[math.floor(alpha / 2 * len(values))]
        high = values[min(len(values) - 1, math.ceil((1 - alpha / 2) * len(values)) - 1)]
        out[name] = Interval(value, low, high)
    return out


def bootstrap_intervals(
    compute: Compute[T],
    items: Sequence[T],
    *,
    resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Interval]:
    """Every metric of ``compute`` on ``items`` with its percentile interval over item
    resamples (with replacement)."""
    if not items:
        return {}
    rng = random.Random(seed)
    n = len(items)
    draws = [compute([items[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples)]
    return _percentile_intervals(compute(items), draws, alpha)


def paired_bootstrap_deltas(
    compute: Compute[T],
    a: Sequence[T],
    b: Sequence[T],
    *,
    resamples: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Interval]:
    """Every metric's change ``b - a`` on paired items, with its interval (the same resampled
    indices for both runs)."""
    if len(a) != len(b):
        raise ValueError("paired bootstrap needs the same items in both runs")
    if not a:
        return {}
    rng = random.Random(seed)
    n = len(a)

    def delta(
        x: Mapping[str, float | None], y: Mapping[str, float | None]
    ) -> dict[str, float | None]:
        return {
            k: (y[k] - v if v is not None and y.get(k) is not None else None)  # type: ignore[operator]
            for k, v in x.items()
        }

    draws = []
    for _ in range(resamples):
        idx = [rng.randrange(n) for _ in range(n)]
        draws.append(delta(compute([a[i] for i in idx]), compute([b[i] for i in idx])))
    return _percentile_intervals(delta(compute(a), compute(b)), draws, alpha)
