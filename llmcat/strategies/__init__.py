"""How a product is put into a taxonomy: one module per strategy, found by name.

- ``flat``: every leaf path in one constrained choice. For small label sets.
- ``hierarchical``: top-down, one constrained choice per level, with a beam.
- ``shortlist``: the nearest leaves by embedding, then one constrained choice among them.
- ``embedding``: the nearest leaf by embedding alone, no LLM: the baseline every report shows.
- ``knn``, ``supervised``: learn from labelled examples, no LLM (``experts.py`` holds the experts
  that learn from examples, and the cross-validation that fits their trust).
- ``auto`` is not a strategy but a rule (``resolve``): with examples and an embedder,
  ``shortlist`` (every expert fused, the weights measured on the examples by cross-validation);
  else ``flat`` up to ``FLAT_AUTO_LIMIT`` leaves, else ``shortlist`` when an embedder is
  available, else ``hierarchical``. (``Classifier`` makes the lexical embedder available when a
  fit ships for the model over it: measured better than its hierarchical walk.)

A new strategy is one module here with a ``Strategy`` subclass decorated by ``@register``: every
module of this package is imported when the registry is first read, so the class is then a
``strategy=`` value of ``Classifier``, ``llmcat classify --strategy`` and ``python -m evals``.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TypeVar

from ..errors import ConfigError
from ..options import ClassifyOptions
from ..taxonomy import Taxonomy

S = TypeVar("S", bound="type[Strategy]")

#: ``auto`` uses ``flat`` up to this many leaves.
FLAT_AUTO_LIMIT = 50

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
        raise ConfigError(
            f"unknown strategy {name!r}; use auto or one of {', '.join(names())}"
        ) from None


def resolve(
    name: str,
    taxonomy: Taxonomy,
    options: ClassifyOptions,
    *,
    embedder_available: bool,
    has_examples: bool = False,
) -> type[Strategy]:
    """The strategy class for ``name`` (``auto`` decided by the rule above), checked against
    the taxonomy and options."""
    if name == "auto":
        if has_examples and embedder_available:
            name = "shortlist"
        elif len(taxonomy.leaves()) <= FLAT_AUTO_LIMIT:
            name = "flat"
        else:
            name = "shortlist" if embedder_available else "hierarchical"
    cls = get(name)
    cls.check(taxonomy, options)
    return cls


from .base import Outcome, Strategy, StrategyContext, settle  # noqa: E402 - after register
from .choice import Choice, ChoiceStrategy, ConstrainedChoice  # noqa: E402

__all__ = [
    "FLAT_AUTO_LIMIT",
    "Choice",
    "ChoiceStrategy",
    "ConstrainedChoice",
    "Outcome",
    "Strategy",
    "StrategyContext",
    "get",
    "names",
    "register",
    "resolve",
    "settle",
]
