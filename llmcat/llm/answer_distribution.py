"""A model's answer as a probability distribution over the choices it was offered. Pure.

``choice_distribution`` reads two sources, best first:

1. ``Completion.choice_logprobs``: the exact log-likelihood of each whole choice (the local
   engine scores every candidate). Normalised with a softmax over the candidates.
2. Token logprobs of the generated label (any server with ``logprobs``): the chosen label gets
   the probability of its whole token sequence; the other labels share the first-token
   alternatives that begin them. Only candidates are counted, then everything is renormalised,
   so tokens that a constrained decoder would never emit drop out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from llmcat.confidence.distributions import softmax
from llmcat.llm.completions import Completion, TokenLogprob


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
