"""Probability distributions over candidate categories, and every way llmcat builds or combines
them. Pure functions.

- From a completion (``choice_distribution``), two sources, best first:

  1. ``Completion.choice_logprobs``: the exact log-likelihood of each whole choice (the local
     engine scores every candidate). Normalised with a softmax over the candidates.
  2. Token logprobs of the generated label (any server with ``logprobs``): the chosen label gets
     the probability of its whole token sequence; the other labels share the first-token
     alternatives that begin them. Only candidates are counted, then everything is renormalised,
     so tokens that a constrained decoder would never emit drop out.
- From embedding similarities: ``similarity_distribution`` (a softmax at a temperature).
- How sure the embedding is: ``spread`` (how far apart the nearest categories' log-probabilities
  lie; a catalogue the embedder reads badly has them bunched together).
- Combining and correcting: ``product_of_experts``, ``contextual_calibrate``; temperature scaling
  fitted on labelled data lives in ``llmcat.confidence.calibration``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from llmcat.llm.completions import Completion, TokenLogprob

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


def distribution_from_tokens(
    chosen: str, tokens: Sequence[TokenLogprob], choices: Sequence[str]
) -> dict[str, float] | None:
    """Probabilities over ``choices`` from the token logprobs of the generated ``chosen`` label."""
    if not tokens or chosen not in choices:
        return None
    mass: dict[str, float] = {}
    chosen_seq = math.exp(sum(t.logprob for t in tokens))
    first = tokens[0]
    first_alternatives = dict(first.top)
    first_alternatives.setdefault(first.token, first.logprob)
    for token, logprob in first_alternatives.items():
        group = [c for c in choices if _starts_with_token(c, token)]
        if not group:
            continue
        token_mass = math.exp(logprob)
        if chosen in group:
            mass[chosen] = mass.get(chosen, 0.0) + min(chosen_seq, token_mass)
            others = [c for c in group if c != chosen]
            rest = max(token_mass - chosen_seq, 0.0)
        else:
            others, rest = group, token_mass
        for c in others:
            mass[c] = mass.get(c, 0.0) + rest / len(others)
    mass.setdefault(chosen, chosen_seq)
    total = sum(mass.values())
    if total <= 0:
        return None
    return {c: m / total for c, m in mass.items()}


def choice_distribution(completion: Completion, choices: Sequence[str]) -> dict[str, float] | None:
    """The best available distribution over ``choices`` for this completion, or None."""
    if completion.choice_logprobs:
        scores = {
            c: completion.choice_logprobs[c] for c in choices if c in completion.choice_logprobs
        }
        return softmax(scores) if scores else None
    if completion.logprobs:
        return distribution_from_tokens(completion.text, completion.logprobs, choices)
    return None


def _starts_with_token(label: str, token: str) -> bool:
    if not token:
        return False
    if label.startswith(token):
        return True
    stripped = token.lstrip()
    return bool(stripped) and label.startswith(stripped) and stripped != token
