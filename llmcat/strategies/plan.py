"""The plan of a ``Classifier``: every decision ``auto`` makes, made once, in one place, with
the reason for each.

- the **strategy** (``auto``: with examples and an embedder ``shortlist``; ``shortlist`` too when
  a fit measured for the model and embedder gives the model weight 0; else ``flat`` up to
  ``FLAT_AUTO_LIMIT`` leaves, else ``shortlist`` with an embedder, else ``hierarchical``);
- the **embedder** (the caller's, ``embedding_model``, the installed default, or the lexical one
  when no neural embedder is installed and a fit ships for the model over it);
- where the **trust** of fused experts comes from (``given``, ``neutral``, ``shipped``, or
  fitted on the ``examples`` at first use) and its weights;
- the **calibration**, and the **review threshold** (the caller's, the one measured with the
  trust fit in force, else ``DEFAULT_REVIEW_THRESHOLD``);
- whether the **LLM** is asked, and the budget of model calls spent fitting on examples;
- what the embedder reads for the **labels** (their names, or grounded in Google's taxonomy:
  ``auto`` grounds a flat list of at most ``FEW_LABELS`` without descriptions) and whether it
  **learns from the run** (``auto``: no; ``on`` where the catalogue covers its labels evenly),
  both measured in docs/benchmarks.md.

``decide`` is pure: it takes ``Facts`` (what the install, taxonomy, examples and model are) and a
lookup of shipped fits. ``Classifier.plan`` and ``llmcat classify --explain`` show the result;
results carry its one-line ``summary``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from llmcat.confidence.calibration import REVIEW_TARGET, TemperatureScaling
from llmcat.confidence.trust import NEUTRAL, TrustFit, neutral
from llmcat.config.options import ClassifyOptions

if TYPE_CHECKING:
    from pydantic import JsonValue

#: ``auto`` uses ``flat`` up to this many leaves.
FLAT_AUTO_LIMIT = 50
#: the experts the fused shortlist pools, and with examples
EXPERTS = ("llm", "embedding")
#: ``auto`` grounds a flat list of labels up to this many: the run's sample (256) then holds 4
#: products per label or more, as the runs the accuracy estimate of ``--transductive on`` was
#: checked on did; on Cdiscount's 237 and 593 labels grounding and learning were a wash or a loss
#: (chosen on OA-Mine and Cdiscount, reported on Flipkart: docs/benchmarks.md)
FEW_LABELS = 64
#: needs_review below this confidence when no threshold was measured for the plan
DEFAULT_REVIEW_THRESHOLD = 0.5
EXAMPLE_EXPERTS = ("llm", "embedding", "knn", "supervised", "top_level")

TrustSource = Literal["given", "neutral", "shipped", "examples", "none"]
#: (model, template version, embedder) -> a fit shipped for exactly them, or None
ShippedFits = Callable[[str, str, str], TrustFit | None]


@dataclass(frozen=True)
class Facts:
    """What the plan is decided from."""

    leaves: int
    examples: int
    #: the embedder strategies would use (its ``name``), None when none is installed or named
    embedder: str | None
    #: where that embedder comes from, for people (the caller's, a named model, the bundled one)
    embedder_origin: str
    #: the lexical embedder's name, used when a fit ships for the model over it
    lexical: str
    #: the backend's model; "" until a server names it (then the plan is provisional)
    model: str
    #: the version of the choice template (what shipped fits are keyed by)
    prompt_version: str
    #: the categories are a flat list of labels (no tree: every leaf a top-level category)
    flat: bool = False
    #: some category carries a description (``Category.description``)
    described: bool = False


@dataclass(frozen=True)
class Plan:
    """What a ``Classifier`` does, and why (``reasons``: one line per decision)."""

    strategy: str
    fused: bool
    #: the embedder's name; None when the strategy uses none
    embedder: str | None
    #: the ``embedding_model`` the context creates its embedder from
    embedding_model: str | None
    trust_source: TrustSource
    #: the weights in force; with ``examples`` the base the fit on examples starts from
    trust: TrustFit | None
    calibration: str
    #: whether the LLM is asked per product
    asks_llm: bool
    #: model calls at most spent fitting trust on the examples (0: none)
    fit_model_calls: int
    model: str
    reasons: dict[str, str] = field(default_factory=dict)
    #: needs_review below this confidence
    review_threshold: float = DEFAULT_REVIEW_THRESHOLD
    #: True until the model is known (a server that names it at the first call)
    provisional: bool = False
    #: what the embedder reads for each category: ``names`` or ``google`` (grounded)
    label_words: str = "names"
    #: whether the category vectors learn from a sample of the run before the first result
    transductive: bool = False

    @property
    def scales_to_run(self) -> bool:
        """Whether the embedding's weight follows the run: its estimated accuracy or its
        spread (a fit that measured what that needs, ``TrustFit.at_run``, ``at_spread``)."""
        return (
            self.fused
            and self.trust_source in ("shipped", "given")
            and self.trust is not None
            and (self.trust.estimates_accuracy or self.trust.spread is not None)
        )

    @property
    def observes_run(self) -> bool:
        """Whether a sample of the run's products is taken before the first result: for its
        estimated accuracy and spread, or for how many of them fall in a category with
        examples (``FusedShortlist``)."""
        return (
            self.scales_to_run
            or self.transductive
            or (self.fused and self.trust_source == "examples")
        )

    def summary(self) -> str:
        """One line: what results carry in ``plan``."""
        parts = [self.strategy + (" (fused)" if self.fused else "")]
        if self.embedder:
            parts.append(f"embedder {self.embedder}")
        if self.trust_source != "none":
            name = f" {self.trust.name}" if self.trust is not None and self.trust.name else ""
            parts.append(
                f"trust {self.trust_source}{name if self.trust_source != 'neutral' else ''}"
            )
        if self.calibration != "none":
            parts.append(f"calibration {self.calibration}")
        if self.label_words != "names":
            parts.append(f"labels grounded in {self.label_words}")
        if self.transductive:
            parts.append("learns from the run")
        parts.append("LLM asked" if self.asks_llm else "LLM not asked")
        return " · ".join(parts)

    def explain(self) -> str:
        """Several lines for people: each decision with its reason."""
        weights = (
            " ".join(f"{k}={v:.2f}" for k, v in sorted(self.trust.weights.items()))
            if self.trust is not None
            else ""
        )
        rows = [
            ("strategy", self.strategy + (" (fused experts)" if self.fused else "")),
            ("embedder", self.embedder or "none"),
            ("trust", self._trust_line(weights)),
            ("calibration", self.calibration),
            ("review", f"needs_review below confidence {self.review_threshold:.2f}"),
            ("model", self.model or "(named by the server at the first call)"),
            ("llm", "asked" if self.asks_llm else "not asked"),
        ]
        if self.embedder:
            rows.append(("labels", _LABEL_WORDS[self.label_words]))
            rows.append(("run", _RUN[self.transductive]))
        if self.fit_model_calls:
            rows.append(("budget", f"at most {self.fit_model_calls} model calls to fit trust"))
        lines = []
        for key, value in rows:
            lines.append(f"{key + ':':13}{value}")
            if key in self.reasons:
                lines.append(f"{'':13}why: {self.reasons[key]}")
        return "\n".join(lines)

    def _trust_line(self, weights: str) -> str:
        if self.trust_source == "none":
            return "none (no experts are fused)"
        name = self.trust.name if self.trust is not None else ""
        named = f" {name}" if name and name != NEUTRAL else ""
        if self.trust_source == "examples":
            return f"examples (fitted at first use; starting from{named or ' neutral'}: {weights})"
        return f"{self.trust_source}{named}: {weights}"

    def as_dict(self) -> dict[str, JsonValue]:
        """JSON-ready: for eval manifests and ``--explain --output``."""
        return {
            "strategy": self.strategy,
            "fused": self.fused,
            "embedder": self.embedder,
            "trust_source": self.trust_source,
            "trust": self.trust.describe() if self.trust is not None else None,
            "calibration": self.calibration,
            "review_threshold": self.review_threshold,
            "asks_llm": self.asks_llm,
            "fit_model_calls": self.fit_model_calls,
            "label_words": self.label_words,
            "transductive": self.transductive,
            "model": self.model,
            "reasons": dict(self.reasons),
            "summary": self.summary(),
        }


_LABEL_WORDS = {
    "names": "each category as written (its path, and its description if given)",
    "google": "each label beside the nodes of Google's taxonomy it names, and their children",
}
_RUN = {
    True: "learned from: the category vectors move toward a sample of its products before the "
    "first result (when the sample holds at least 50)",
    False: "not learned from: each product is judged alone",
}


def decide(
    name: str,
    options: ClassifyOptions,
    facts: Facts,
    shipped: ShippedFits,
    *,
    uses_model: Callable[[str], bool],
    uses_embedder: Callable[[str], bool],
) -> Plan:
    """The plan for ``strategy=name`` with these options and facts (see the module docstring)."""
    reasons: dict[str, str] = {}
    embedder, embedding_model = facts.embedder, options.embedding_model
    if (
        embedder is None
        and name == "auto"
        and facts.model
        and shipped(facts.model, facts.prompt_version, facts.lexical) is not None
    ):
        embedder, embedding_model = facts.lexical, "hashing"
        reasons["embedder"] = (
            "no neural embedder is installed, and a fit ships for this model over the lexical "
            "one: measured better than the hierarchical walk"
        )
    measured = (
        shipped(facts.model, facts.prompt_version, embedder)
        if embedder is not None and facts.model
        else None
    )
    muted = measured is not None and measured.weights.get("llm", 1.0) == 0.0
    strategy = _strategy(name, facts, embedder is not None, muted, reasons)
    if not uses_embedder(strategy):
        embedder = None
        reasons["embedder"] = f"{strategy} does not embed"
    elif "embedder" not in reasons:
        reasons["embedder"] = facts.embedder_origin
    fused = strategy == "shortlist" and options.fuse_embedding
    plan = Plan(
        strategy=strategy,
        fused=fused,
        embedder=embedder,
        embedding_model=embedding_model,
        trust_source="none",
        trust=None,
        calibration=_calibration(options.calibration),
        asks_llm=uses_model(strategy),
        fit_model_calls=0,
        model=facts.model,
        reasons=reasons,
        provisional=not facts.model,
    )
    if options.review_threshold is not None:
        plan = replace(plan, review_threshold=options.review_threshold)
        reasons["review"] = "chosen by the caller"
    else:
        reasons["review"] = "the default: no threshold was measured for this plan"
    if plan.asks_llm:
        reasons["llm"] = f"{strategy} asks the model for every product"
    else:
        reasons["llm"] = f"{strategy} never asks the model"
    if embedder is not None:
        plan = _learning(plan, options, facts)
    if fused:
        plan = _trust(plan, options, facts, shipped)
    return plan


def _learning(plan: Plan, options: ClassifyOptions, facts: Facts) -> Plan:
    """What the embedder reads for the labels, and whether it learns from the run."""
    reasons = dict(plan.reasons)
    few = facts.flat and facts.leaves <= FEW_LABELS
    words = options.label_words
    if words != "auto":
        reasons["labels"] = "chosen by the caller"
    elif few and not facts.described:
        words = "google"
        reasons["labels"] = (
            f"auto: a flat list of {facts.leaves} labels (at most {FEW_LABELS}) without "
            "descriptions, whose names alone carry few words (measured: docs/benchmarks.md)"
        )
    else:
        words = "names"
        reasons["labels"] = (
            "auto: a tree's paths carry their own words"
            if not facts.flat
            else "auto: the labels' own descriptions"
            if facts.described
            else f"auto: {facts.leaves} labels, more than {FEW_LABELS} (measured to lose there)"
        )
    run = options.transductive
    if run != "auto":
        learns = run == "on"
        reasons["run"] = "chosen by the caller"
    else:
        # Measured to help on catalogues that cover their labels evenly, and to lose 16 to 28
        # points on one that holds products of 2 of its 7 labels or is skewed toward 2: a run
        # cannot tell which it is, so learning from it waits for the caller (docs/benchmarks.md).
        learns = False
        reasons["run"] = (
            "auto: off (measured to lose on catalogues that cover their labels unevenly; "
            "--transductive on where they are even: docs/benchmarks.md)"
        )
    return replace(plan, label_words=words, transductive=learns, reasons=reasons)


def complete(plan: Plan, options: ClassifyOptions, facts: Facts, shipped: ShippedFits) -> Plan:
    """A provisional plan once the server has named the model: only the trust (and whether
    that mutes the LLM) can change; the strategy and embedder stay as decided."""
    done = replace(plan, model=facts.model, provisional=False)
    return _trust(done, options, facts, shipped) if plan.fused else done


def _strategy(
    name: str, facts: Facts, has_embedder: bool, muted: bool, reasons: dict[str, str]
) -> str:
    if name != "auto":
        reasons["strategy"] = "chosen by the caller"
        return name
    if facts.examples and has_embedder:
        reasons["strategy"] = f"auto: {facts.examples} examples and an embedder"
        return "shortlist"
    if muted:
        # Measured: this model's answer adds nothing to the embedding (its fit gives it weight
        # 0); asked to pick among few labels it did worse than chance (docs/benchmarks.md).
        reasons["strategy"] = (
            f"auto: {facts.leaves} leaves, and the fit measured for this model and embedder gives "
            "the model weight 0: the embedding decides"
        )
        return "shortlist"
    if facts.leaves <= FLAT_AUTO_LIMIT:
        reasons["strategy"] = f"auto: {facts.leaves} leaves, at most {FLAT_AUTO_LIMIT}"
        return "flat"
    if has_embedder:
        reasons["strategy"] = f"auto: {facts.leaves} leaves and an embedder"
        return "shortlist"
    reasons["strategy"] = (
        f"auto: {facts.leaves} leaves and no embedder (pip install 'llmcat[embed]')"
    )
    return "hierarchical"


def _calibration(calibration: object) -> str:
    if calibration is None:
        return "none"
    if calibration == "contextual":
        return "contextual (the label prior of a content-free input divided out)"
    if isinstance(calibration, TemperatureScaling):
        return f"temperature {calibration.temperature:.3g}"
    return str(calibration)


def _trust(plan: Plan, options: ClassifyOptions, facts: Facts, shipped: ShippedFits) -> Plan:
    """Where the fused experts' weights come from, and whether that mutes the LLM."""
    reasons = dict(plan.reasons)
    chosen = options.trust
    experts = EXAMPLE_EXPERTS if facts.examples else EXPERTS
    found = shipped(facts.model, facts.prompt_version, plan.embedder or "") if facts.model else None
    source: TrustSource
    if isinstance(chosen, TrustFit):
        source, fit = "given", chosen
        reasons["trust"] = f"given: {chosen.name or 'a TrustFit'}"
    elif chosen == NEUTRAL:
        source, fit = "neutral", neutral(experts)
        reasons["trust"] = "trust='neutral': every expert weighs 1"
    elif facts.examples:
        source = "examples"
        fit = found if found is not None else neutral(EXPERTS)
        if options.review_threshold is None:
            reasons["review"] = (
                "measured with the weights when they are fitted on the examples (cross-validated:"
                f" right {REVIEW_TARGET:.0%} of the time above it); the value above until then"
            )
        reasons["trust"] = (
            f"fitted on the {facts.examples} examples by cross-validation at first use, from "
            + (f"the shipped fit {found.name}" if found is not None else "neutral weights")
        )
    elif found is not None:
        source, fit = "shipped", found
        reasons["trust"] = (
            f"a fit ships for model {facts.model}, template {facts.prompt_version}, "
            f"embedder {plan.embedder}"
        )
    else:
        source, fit = "neutral", neutral(experts)
        reasons["trust"] = (
            f"no fit ships for model {facts.model or '(not known yet)'}, template "
            f"{facts.prompt_version}, embedder {plan.embedder}: experts weigh 1 "
            "(python -m evals fit)"
        )
    muted = fit.weights.get("llm", 1.0) == 0.0
    budget = 0
    if source == "examples" and not muted:
        budget = options.fit_model_calls
    asks = not muted
    if muted:
        reasons["llm"] = "the trust fit gives the model weight 0: its answer could not count"
    elif source != "examples":
        reasons["llm"] = (
            f"asked for every product; its answer weighs {fit.weights.get('llm', 1.0):.2f}"
        )
    elif source == "examples":
        reasons["llm"] = "asked per product unless the fit on the examples gives it weight 0" + (
            f"; at most {budget} examples asked while fitting" if budget else ""
        )
    threshold = plan.review_threshold
    measured = fit.review_threshold if source in ("shipped", "given") else None
    if options.review_threshold is None and measured is not None:
        threshold = measured
        reasons["review"] = (
            f"measured with the fit on {fit.fitted_on or 'its data'}: the items at or above "
            f"it were right {REVIEW_TARGET:.0%} of the time"
        )
    if source in ("shipped", "given") and fit.estimates_accuracy:
        reasons["trust"] += (
            "; the embedding's weight follows each run's accuracy, estimated from a sample "
            "of its products"
        )
    elif source in ("shipped", "given") and fit.spread is not None:
        reasons["trust"] += (
            f"; the embedding's weight follows each run's spread (fitted at {fit.spread:.2f})"
        )
    return replace(
        plan,
        review_threshold=threshold,
        trust_source=source,
        trust=fit,
        asks_llm=asks,
        fit_model_calls=budget,
        reasons=reasons,
    )


__all__ = [
    "DEFAULT_REVIEW_THRESHOLD",
    "EXAMPLE_EXPERTS",
    "EXPERTS",
    "FEW_LABELS",
    "FLAT_AUTO_LIMIT",
    "Facts",
    "Plan",
    "ShippedFits",
    "TrustSource",
    "complete",
    "decide",
]
