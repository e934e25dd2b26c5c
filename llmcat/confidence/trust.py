"""Fitted trust: how much each expert's distribution counts when strategies fuse them.

The fused distribution over the candidates is a weighted log-linear pool,
``p(c) ∝ exp(Σ_e w_e · log p_e(c))`` (``distributions.log_linear_pool``). With every weight 1 it is
the plain product of experts; a weight near 0 mutes an expert; the sum of the weights acts as an
inverse temperature. The weights are fitted on labelled data by minimising the negative
log-likelihood of the gold category (``fit_weights``: projected gradient descent, the loss is
convex), from the per-expert distributions an eval run records (``python -m evals fit RUN``).

A ``TrustFit`` is saved as JSON with the model, template version and embedder it was fitted for
and the data it was fitted on. ``Classifier`` uses, in this order: the ``trust`` option (a fit or
a file), a fit shipped in ``llmcat/fits/`` for the same model, template and embedder, or neutral
weights (all 1: a model nobody measured is not muted). Results say which (``trust``).

A fit's embedding weight acts as an inverse temperature that suits the data it was fitted on;
on a catalogue the embedder reads worse it would be overconfident. So a run scales it: by the
run's accuracy estimated from a sample of its own products (``at_run``), or, for a fit that did
not measure what that needs or a product classified alone, by the run's spread (``at_spread``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from llmcat.confidence.calibration import ACCURACY_SAMPLE_MIN, run_weight_scale
from llmcat.confidence.calibration import matched_weight as weight_matched_to
from llmcat.confidence.distributions import candidates_of, log_linear_pool
from llmcat.errors import ConfigError

FITS_DIR = Path(__file__).resolve().parents[1] / "fits"
#: the weights used when nothing was fitted for this model, template and embedder
NEUTRAL = "neutral"

#: One labelled item for a fit: each expert's distribution over the candidates, and the gold id.
FitItem = tuple[Mapping[str, Mapping[str, float]], str]


class TrustFit(BaseModel):
    """Weights of the experts, and what they were fitted for and on."""

    weights: dict[str, float] = Field(description="Expert name -> weight in the log-linear pool.")
    model: str = Field(default="", description="The LLM the weights were fitted for.")
    prompt_version: str = Field(default="", description="Its template version.")
    embedder: str = Field(default="", description="The embedder of the embedding expert.")
    fitted_on: str = Field(default="", description="The labelled data (suite, run).")
    taxonomy: str = Field(default="", description="The taxonomy it was fitted on.")
    items: int = Field(default=0, description="Labelled items used (gold among the candidates).")
    nll_neutral: float | None = Field(default=None, description="Mean NLL with weights of 1.")
    nll_fitted: float | None = Field(default=None, description="Mean NLL with these weights.")
    name: str = Field(default="", description="Where the fit came from (file or shipped).")
    spread: float | None = Field(
        default=None,
        gt=0,
        description="Mean spread (``distributions.spread``) of the embedding expert on the items "
        "it was fitted on. A run's embedding weight is scaled by the run's spread over this one.",
    )
    review_threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="The lowest confidence at which the items it was fitted on were right at "
        "least ``calibration.REVIEW_TARGET`` of the time: the default review threshold with this fit.",
    )
    entropy_threshold: float | None = Field(
        default=None,
        description="The negative entropy of the embedding's distribution (at this weight, over "
        "its ``SPREAD_K`` nearest categories) above which as many of the fit's items lie as its "
        "embedding answered right: estimates a run's accuracy from the run alone "
        "(``calibration.entropy_threshold``).",
    )
    matched_weight: float | None = Field(
        default=None,
        gt=0,
        description="The weight at which the embedding's distributions on the fit's items are on "
        "average as sure as they were right. A run's embedding weight is scaled by the weight "
        "matched to its estimated accuracy over this one (``calibration.run_weight_scale``).",
    )
    run_spread: float | None = Field(
        default=None, description="The run's spread the weights were scaled to (None: as fitted)."
    )
    run_accuracy: float | None = Field(
        default=None, description="The run's estimated accuracy the weights were scaled to."
    )
    run_scale: float | None = Field(
        default=None, description="The factor the embedding's weight was scaled by for the run."
    )

    def fuse(self, experts: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
        """The experts' distributions pooled with these weights."""
        return log_linear_pool(experts, self.weights)

    def at_spread(self, run_spread: float | None) -> TrustFit:
        """These weights for a run whose embedding spread is ``run_spread``: the embedding's
        weight times ``run_spread / spread``. A catalogue the embedder reads worse than the fit's
        bunches its nearest categories together; a fixed weight would then be overconfident
        there (docs/benchmarks.md, "Confidence"). Unchanged without a fitted spread or a run's."""
        if self.spread is None or run_spread is None or "embedding" not in self.weights:
            return self
        return self._scaled(run_spread / self.spread, run_spread=run_spread)

    @property
    def estimates_accuracy(self) -> bool:
        """Whether ``at_run`` can estimate a run's accuracy (the fit measured what it needs)."""
        return (
            self.entropy_threshold is not None
            and self.matched_weight is not None
            and "embedding" in self.weights
        )

    def at_run(self, sample: Sequence[Sequence[float]]) -> TrustFit:
        """These weights for the run ``sample`` comes from (each item: the embedding's
        distribution over a sampled product's ``SPREAD_K`` nearest categories): the embedding's
        weight scaled so that the run is on average as sure as its accuracy, estimated from the
        sample, says it should be (``calibration.run_weight_scale``). Unchanged when the fit did
        not measure what that needs or the sample is smaller than ``ACCURACY_SAMPLE_MIN``."""
        if not self.estimates_accuracy or len(sample) < ACCURACY_SAMPLE_MIN:
            return self
        assert self.entropy_threshold is not None and self.matched_weight is not None
        scale, estimate = run_weight_scale(
            sample, self.weights["embedding"], self.entropy_threshold, self.matched_weight
        )
        return self._scaled(scale, run_accuracy=estimate)

    def at_accuracy(self, accuracy: float, sample: Sequence[Sequence[float]]) -> TrustFit:
        """These weights with the embedding's set so that the run ``sample`` comes from (each
        item: the embedding's distribution for a sampled product, at weight 1) is on average as
        sure as ``accuracy``, an estimate made from the run another way (how its answers agree
        with their neighbours'). Unchanged for a sample smaller than ``ACCURACY_SAMPLE_MIN``."""
        if "embedding" not in self.weights or len(sample) < ACCURACY_SAMPLE_MIN:
            return self
        weight = weight_matched_to(sample, accuracy)
        return self._scaled(weight / self.weights["embedding"], run_accuracy=accuracy)

    def _scaled(self, scale: float, **why: float) -> TrustFit:
        weights = {**self.weights, "embedding": self.weights["embedding"] * scale}
        return self.model_copy(update={"weights": weights, "run_scale": scale, **why})

    def describe(self) -> str:
        """One line for results: ``fitted:<name> embedding=1.31 llm=0.02``, or ``neutral ...``
        with how to fit when nothing was; ``at spread 0.52x`` when scaled to a run."""
        weights = " ".join(f"{k}={_weight(v)}" for k, v in sorted(self.weights.items()))
        if self.name == NEUTRAL:
            return f"neutral {weights} (nothing fitted for this model: python -m evals fit)"
        scaled = ""
        if self.run_accuracy is not None and self.run_scale is not None:
            scaled = (
                f" (the run's accuracy estimated at {self.run_accuracy:.2f}: embedding "
                f"{_weight(self.run_scale)}x the fit's)"
            )
        elif self.run_spread is not None and self.spread is not None:
            scaled = f" (at the run's spread, {self.run_spread / self.spread:.2f}x the fit's)"
        return f"fitted:{self.name or 'unnamed'} {weights}{scaled}"

    def save(self, path: str | Path) -> None:
        """Write as JSON."""
        text = self.model_dump_json(indent=2, exclude={"run_spread", "run_accuracy", "run_scale"})
        Path(path).write_text(text + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> TrustFit:
        """Read a file written by ``save`` or ``python -m evals fit``."""
        try:
            fit = cls.model_validate_json(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read trust file {path}: {exc.strerror or exc}") from None
        except ValidationError as exc:
            raise ConfigError(f"{path} is not a trust file: {exc.errors()[0]['msg']}") from None
        return fit.model_copy(update={"name": fit.name or Path(path).stem})


def _weight(value: float) -> str:
    """A weight for people: two decimals, or two digits where those would read as a muted 0."""
    return f"{value:.2f}" if value == 0 or value >= 0.005 else f"{value:.1e}"


def neutral(experts: Sequence[str]) -> TrustFit:
    """Weights of 1 for every expert: the plain product of experts."""
    return TrustFit(weights=dict.fromkeys(experts, 1.0), name=NEUTRAL)


@lru_cache(maxsize=1)
def shipped_fits() -> tuple[TrustFit, ...]:
    """The fits shipped with llmcat (``llmcat/fits/*.json``)."""
    if not FITS_DIR.is_dir():
        return ()
    return tuple(TrustFit.load(f) for f in sorted(FITS_DIR.glob("*.json")))


def shipped_fit(model: str, prompt_version: str, embedder: str) -> TrustFit | None:
    """A shipped fit for exactly this model, template version and embedder, if there is one."""
    for fit in shipped_fits():
        if (fit.model, fit.prompt_version, fit.embedder) == (model, prompt_version, embedder):
            return fit
    return None


def mean_nll(items: Sequence[FitItem], weights: Mapping[str, float]) -> float:
    """Mean negative log-likelihood of the gold ids under the pooled distributions."""
    total = 0.0
    for experts, gold in items:
        pooled = log_linear_pool(experts, weights)
        total -= math.log(max(pooled.get(gold, 0.0), 1e-12))
    return total / max(len(items), 1)


def fit_weights(
    items: Sequence[FitItem], experts: Sequence[str], *, steps: int = 400, rate: float = 0.5
) -> dict[str, float]:
    """The non-negative weights that minimise ``mean_nll`` (projected gradient descent from all
    ones; the gradient of one item is E_pool[log p_e] - log p_e(gold))."""
    # The candidates are every expert's (as in ``log_linear_pool``); an expert that gives one
    # no mass (a model's vote without logprobs) contributes the floor, as when fusing.
    usable = [(e, g) for e, g in items if g in candidates_of(e)]
    if not usable:
        raise ConfigError(
            "nothing to fit on: no labelled item has its gold category among the candidates"
        )
    weights = dict.fromkeys(experts, 1.0)
    features = [
        (
            {
                c: {n: math.log(max(e[n].get(c, 0.0), 1e-6)) for n in experts}
                for c in candidates_of(e)
            },
            g,
        )
        for e, g in usable
    ]
    for step in range(steps):
        grad = dict.fromkeys(experts, 0.0)
        for by_candidate, gold in features:
            scores = {c: sum(weights[n] * f[n] for n in experts) for c, f in by_candidate.items()}
            top = max(scores.values())
            exps = {c: math.exp(s - top) for c, s in scores.items()}
            z = sum(exps.values())
            for n in experts:
                expected = sum(exps[c] * by_candidate[c][n] for c in by_candidate) / z
                grad[n] += expected - by_candidate[gold][n]
        size = rate / (1 + step / 50)
        weights = {n: max(0.0, weights[n] - size * grad[n] / len(features)) for n in experts}
    return weights


__all__ = [
    "NEUTRAL",
    "TrustFit",
    "fit_weights",
    "mean_nll",
    "neutral",
    "shipped_fit",
    "shipped_fits",
]
