"""Paired significance tests for comparing a run with a baseline on the same items. Pure."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
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
