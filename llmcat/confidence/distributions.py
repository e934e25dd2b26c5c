"""Probability distributions over candidate categories, and every way llmcat builds or combines
them. Pure functions.

- From a model's answer: ``llmcat.llm.answer_distribution`` (it reads completions, so it
  lives with them) builds one with ``softmax``.
- From embedding similarities: ``similarity_distribution`` (a softmax at a temperature).
- How sure the embedding is: ``spread`` (how far apart the nearest categories' log-probabilities
  lie; a catalogue the embedder reads badly has them bunched together).
- Combining and correcting: ``product_of_experts``, ``contextual_calibrate``; temperature scaling
  fitted on labelled data lives in ``llmcat.confidence.calibration``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

#: Temperature that turns cosine similarities into a distribution (embedding and shortlist).
EMBEDDING_TEMPERATURE = 0.05
#: The likeliest candidates ``spread`` is measured over (the shortlist's default size).
SPREAD_K = 10


def softmax(logprobs: Mapping[str, float]) -> dict[str, float]:
    """Normalise log-scores into probabilities that sum to 1."""
    if not logprobs:
        return {}
    top = max(logprobs.values())
    exps = {k: math.exp(v - top) for k, v in logprobs.items()}
    total = sum(exps.values())
    return {k: v / total for k, v in exps.items()}


def similarity_distribution(
    nearest: Sequence[tuple[str, float]], temperature: float = EMBEDDING_TEMPERATURE
) -> dict[str, float]:
    """Cosine similarities ``[(id, similarity), ...]`` as a distribution: softmax at
    ``temperature``."""
    return softmax({cid: sim / temperature for cid, sim in nearest})


def spread(distribution: Mapping[str, float], k: int = SPREAD_K) -> float | None:
    """The standard deviation of the log-probabilities of the ``k`` likeliest candidates: for an
    embedding's distribution, its similarities' spread over its temperature. None with fewer
    than ``k`` candidates (a spread over 3 labels says nothing about one over 10)."""
    top = sorted(distribution.values(), reverse=True)[:k]
    if len(top) < k:
        return None
    logs = [math.log(max(p, 1e-300)) for p in top]
    mean = sum(logs) / k
    return math.sqrt(sum((x - mean) ** 2 for x in logs) / k)


def product_of_experts(*distributions: Mapping[str, float]) -> dict[str, float]:
    """The normalised product of distributions over the same candidates."""
    keys = set(distributions[0]).intersection(*distributions[1:])
    scores = {k: math.prod(d[k] for d in distributions) for k in keys}
    total = sum(scores.values())
    if total <= 0:
        return dict(distributions[0])
    return {k: v / total for k, v in scores.items()}


def log_linear_pool(
    experts: Mapping[str, Mapping[str, float]],
    weights: Mapping[str, float],
    floor: float = 1e-6,
) -> dict[str, float]:
    """``p(c) ∝ exp(Σ_e w_e · log p_e(c))`` over every candidate any expert names; a candidate
    an expert gives no mass gets ``floor`` from it (so no expert can veto alone). Experts without
    a weight are left out; all weights 1 is the plain product of experts."""
    names = [n for n in experts if weights.get(n, 0.0) > 0.0]
    candidates = candidates_of(experts)
    if not names:
        return {c: 1.0 / len(candidates) for c in candidates}
    scores = {
        c: sum(weights[n] * math.log(max(experts[n].get(c, 0.0), floor)) for n in names)
        for c in candidates
    }
    return softmax(scores)


def candidates_of(experts: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Every candidate any expert names, in the order they are first named."""
    return list(dict.fromkeys(c for distribution in experts.values() for c in distribution))


def contextual_calibrate(
    distribution: Mapping[str, float], prior: Mapping[str, float]
) -> dict[str, float]:
    """Divide out the label prior measured on a content-free input, then renormalise
    (Zhao et al. 2021, "Calibrate Before Use")."""
    scores = {k: p / max(prior.get(k, 0.0), 1e-9) for k, p in distribution.items()}
    total = sum(scores.values()) or 1.0
    return {k: v / total for k, v in scores.items()}
