"""How a product is put into a taxonomy: one module per strategy, found by name.

- ``flat``: every leaf path in one constrained choice. For small label sets.
- ``hierarchical``: top-down, one constrained choice per level, with a beam.
- ``shortlist``: the nearest leaves by embedding, then one constrained choice among them.
- ``embedding``: the nearest leaf by embedding alone, no LLM: the baseline every report shows.
- ``knn``, ``supervised``: learn from labelled examples, no LLM (``experts.py`` holds the experts
  that learn from examples, and the cross-validation that fits their trust).
- ``auto`` is not a strategy but a rule, decided with every other choice in one place:
  ``plan.decide`` (the strategy, the embedder, the trust of fused experts, the calibration,
  whether the LLM is asked; ``Classifier.plan`` shows it, with the reasons).

A new strategy is one module here with a ``Strategy`` subclass decorated by ``@register``: every
module of this package is imported when the registry is first read, so the class is then a
``strategy=`` value of ``Classifier``, ``llmcat classify --strategy`` and ``python -m evals``.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import TypeVar

from llmcat.errors import ConfigError

S = TypeVar("S", bound="type[Strategy]")

_REGISTRY: dict[str, type[Strategy]] = {}
_discovered = False


def register(cls: S) -> S:
    """Class decorator: make ``cls`` the strategy named ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def _discover() -> None:
    global _discovered
    if not _discovered:
        _discovered = True
        for module in pkgutil.iter_modules(__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{__name__}.{module.name}")


def names() -> list[str]:
    """Every registered strategy name, sorted (``auto`` is not one of them)."""
    _discover()
    return sorted(_REGISTRY)


def get(name: str) -> type[Strategy]:
    """The strategy class registered as ``name``; ConfigError for an unknown name."""
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, ["auto", *names()], n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            f"unknown strategy {name!r}; {hint}use auto or one of {', '.join(names())}"
        ) from None


from llmcat.strategies.base import Outcome, Strategy, StrategyContext, settle  # noqa: E402 - after register
from llmcat.strategies.choice import Choice, ChoiceStrategy, ConstrainedChoice  # noqa: E402
from llmcat.strategies.plan import FLAT_AUTO_LIMIT, Facts, Plan, decide  # noqa: E402

__all__ = [
    "FLAT_AUTO_LIMIT",
    "Choice",
    "ChoiceStrategy",
    "ConstrainedChoice",
    "Facts",
    "Outcome",
    "Plan",
    "Strategy",
    "StrategyContext",
    "decide",
    "get",
    "names",
    "register",
    "settle",
]
