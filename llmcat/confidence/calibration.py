"""Temperature scaling: make confidences mean what they say, fitted on a labelled set. Pure.

A raw confidence ``c`` (the model's probability of its answer) becomes
``sigmoid(logit(c) / T)``; alternatives' probabilities ``p_i`` become ``p_i ** (1/T)``,
renormalised. ``T > 1`` softens an over-confident model, ``T < 1`` sharpens a timid one; the
ranking of answers never changes. ``T`` is the value that minimises the negative log-likelihood
of "the answer was right" over a labelled run (``python -m evals calibrate RUN``), and it is saved
as JSON together with the strategy, model and template version it was fitted for.

A fit shipped for one catalogue meets others with no labels: ``run_weight_scale`` estimates a
run's accuracy from its own distributions (``entropy_threshold``, ``estimated_accuracy``) and
scales the embedding's weight so that the run is on average as sure as it is estimated right
(``matched_weight``). The review threshold (``review_threshold``, ``coverage``) is read on the
fit's data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from llmcat.confidence.distributions import softmax
from llmcat.errors import ConfigError

_EPS = 1e-6
#: the search range of log(T): T from about 0.05 to 20
_LOG_T_RANGE = (-3.0, 3.0)


def scale_confidence(confidence: float, temperature: float) -> float:
    """``sigmoid(logit(c) / T)``, with c kept away from 0 and 1."""
    c = min(max(confidence, _EPS), 1.0 - _EPS)
    logit = math.log(c / (1.0 - c)) / temperature
    return 1.0 / (1.0 + math.exp(-logit))


def scale_distribution(distribution: Mapping[str, float], temperature: float) -> dict[str, float]:
    """``p_i ** (1/T)``, renormalised (computed in log space)."""
    return softmax({k: math.log(max(p, 1e-300)) / temperature for k, p in distribution.items()})


def negative_log_likelihood(
    confidences: Sequence[float], correct: Sequence[bool], temperature: float
) -> float:
    """Mean NLL of the outcomes under the scaled confidences."""
    total = 0.0
    for c, right in zip(confidences, correct, strict=True):
        q = min(max(scale_confidence(c, temperature), _EPS), 1.0 - _EPS)
        total -= math.log(q if right else 1.0 - q)
    return total / max(len(confidences), 1)


def fit_temperature(confidences: Sequence[float], correct: Sequence[bool]) -> float:
    """The T that minimises the NLL (golden-section search over log T; the NLL is unimodal)."""
    if not confidences:
        raise ConfigError("cannot fit a temperature on zero items with a confidence")
    if len(confidences) != len(correct):
        raise ConfigError("confidences and outcomes differ in length")
    lo, hi = _LOG_T_RANGE
    ratio = (math.sqrt(5) - 1) / 2

    def loss(log_t: float) -> float:
        return negative_log_likelihood(confidences, correct, math.exp(log_t))

    a, b = lo + (1 - ratio) * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(60):
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = lo + (1 - ratio) * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return math.exp((lo + hi) / 2)


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> float:
    """|accuracy - confidence| per equal-width bin, weighted by the bin's share of items."""
    if not confidences:
        return 0.0
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [
            (c, r)
            for c, r in zip(confidences, correct, strict=True)
            if lo < c <= hi or (b == 0 and c == 0.0)
        ]
        if members:
            accuracy = sum(r for _, r in members) / len(members)
            mean = sum(c for c, _ in members) / len(members)
            total += len(members) / len(confidences) * abs(accuracy - mean)
    return total


#: Fewer sampled products than this leave a run's estimated accuracy to chance (the standard
#: error of a share of 30 is up to 0.09); the weight then follows the spread instead.
ACCURACY_SAMPLE_MIN = 30
#: The search range of a matched weight: wide enough for a uniform-looking or a one-hot run,
#: and above 0, where every candidate would tie and the answer could change.
_WEIGHT_RANGE = (1e-3, 50.0)


def powered(distribution: Sequence[float], weight: float) -> list[float]:
    """``p_i ** weight``, renormalised (in log space)."""
    logs = [weight * math.log(max(p, 1e-300)) for p in distribution]
    top = max(logs)
    exps = [math.exp(x - top) for x in logs]
    total = sum(exps)
    return [x / total for x in exps]


def negative_entropy(distribution: Sequence[float]) -> float:
    """``sum p log p``: 0 for a certain answer, ``-log n`` for n candidates alike."""
    return sum(p * math.log(p) for p in distribution if p > 0)


def entropy_threshold(
    distributions: Sequence[Sequence[float]], correct: Sequence[bool]
) -> float | None:
    """Average thresholded confidence (Garg et al., ICLR 2022): the negative entropy above which
    the share of ``distributions`` equals the share whose answer was right. On another run, the
    share above it estimates that run's accuracy without a label (``estimated_accuracy``)."""
    if not distributions or len(distributions) != len(correct):
        return None
    scores = sorted(negative_entropy(d) for d in distributions)
    above = round(sum(correct))  # this many scores lie above the threshold
    if above <= 0:
        return scores[-1]
    if above >= len(scores):
        return scores[0] - 1e-9
    return (scores[-above - 1] + scores[-above]) / 2


def estimated_accuracy(distributions: Sequence[Sequence[float]], threshold: float) -> float:
    """The share of ``distributions`` whose negative entropy lies above ``threshold``."""
    if not distributions:
        return 0.0
    return sum(negative_entropy(d) > threshold for d in distributions) / len(distributions)


def matched_weight(distributions: Sequence[Sequence[float]], accuracy: float) -> float:
    """The weight ``w`` at which the distributions raised to ``w`` (renormalised) are on average
    as sure of their answer as ``accuracy``: mean top probability = accuracy (bisection in log
    w; the mean rises with w). Clamped to ``_WEIGHT_RANGE``."""
    if not distributions:
        raise ConfigError("cannot match a weight on zero distributions")

    def mean_top(weight: float) -> float:
        return sum(max(powered(d, weight)) for d in distributions) / len(distributions)

    lo, hi = (math.log(w) for w in _WEIGHT_RANGE)
    for _ in range(50):
        mid = (lo + hi) / 2
        if mean_top(math.exp(mid)) < accuracy:
            lo = mid
        else:
            hi = mid
    return math.exp((lo + hi) / 2)


def run_weight_scale(
    sample: Sequence[Sequence[float]], weight: float, threshold: float, fit_matched: float
) -> tuple[float, float]:
    """How much to scale an embedding weight fitted elsewhere for the run ``sample`` comes from:
    the run's accuracy is estimated from its distributions at ``weight`` (``threshold``, from
    ``entropy_threshold`` on the fit's items), and the scale is the weight matched to that
    accuracy on the run over the one matched to the fit's own (``fit_matched``). Returns
    (scale, estimated accuracy). On the fit's own items the scale is 1."""
    estimate = estimated_accuracy([powered(d, weight) for d in sample], threshold)
    return matched_weight(sample, estimate) / fit_matched, estimate


#: The share of right answers the items above the default review threshold should reach.
REVIEW_TARGET = 0.9


def review_threshold(
    confidences: Sequence[float], correct: Sequence[bool], target: float = REVIEW_TARGET
) -> float | None:
    """The lowest confidence ``t`` such that the items at or above ``t`` are right at least
    ``target`` of the time (None when no such ``t`` keeps an item)."""
    pairs = sorted(zip(confidences, correct, strict=True), reverse=True)
    best: float | None = None
    right = 0
    for n, (confidence, ok) in enumerate(pairs, 1):
        right += ok
        last_of_tie = n == len(pairs) or pairs[n][0] < confidence
        if last_of_tie and right / n >= target:
            best = confidence
    return best


def coverage(
    confidences: Sequence[float], correct: Sequence[bool], threshold: float
) -> tuple[float, float | None]:
    """At a review threshold: the share of items flagged (below it), and the accuracy of the
    rest (None when every item is flagged)."""
    kept = [ok for c, ok in zip(confidences, correct, strict=True) if c >= threshold]
    flagged = 1.0 - len(kept) / len(confidences) if confidences else 0.0
    return flagged, (sum(kept) / len(kept) if kept else None)


class TemperatureScaling(BaseModel):
    """A fitted temperature and what it was fitted for; pass it as ``Classifier(calibration=)``."""

    temperature: float = Field(gt=0, description="T: confidences become sigmoid(logit(c) / T).")
    strategy: str | None = Field(default=None, description="The strategy it was fitted for.")
    model: str | None = Field(default=None, description="The model it was fitted for.")
    prompt_version: str | None = Field(default=None, description="The template version.")
    fitted_on: int = Field(default=0, description="Labelled items used for the fit.")
    ece_before: float | None = Field(default=None, description="ECE of the raw confidences.")
    ece_after: float | None = Field(default=None, description="ECE after scaling (in sample).")

    @classmethod
    def fit(
        cls, confidences: Sequence[float], correct: Sequence[bool], **meta: object
    ) -> TemperatureScaling:
        """Fit T on outcomes and record the in-sample ECE before and after."""
        temperature = fit_temperature(confidences, correct)
        scaled = [scale_confidence(c, temperature) for c in confidences]
        return cls.model_validate(
            {
                "temperature": temperature,
                "fitted_on": len(confidences),
                "ece_before": expected_calibration_error(confidences, correct),
                "ece_after": expected_calibration_error(scaled, correct),
                **meta,
            }
        )

    def confidence(self, value: float) -> float:
        """A calibrated confidence."""
        return scale_confidence(value, self.temperature)

    def distribution(self, values: Mapping[str, float]) -> dict[str, float]:
        """Calibrated probabilities of the alternatives."""
        return scale_distribution(values, self.temperature)

    def save(self, path: str | Path) -> None:
        """Write as JSON."""
        Path(path).write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> TemperatureScaling:
        """Read a file written by ``save`` (or ``python -m evals calibrate``)."""
        try:
            return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read calibration file {path}: {exc}") from None
        except ValidationError as exc:
            raise ConfigError(f"{path} is not a temperature-scaling file: {exc}") from None


__all__ = [
    "ACCURACY_SAMPLE_MIN",
    "REVIEW_TARGET",
    "TemperatureScaling",
    "coverage",
    "entropy_threshold",
    "estimated_accuracy",
    "expected_calibration_error",
    "fit_temperature",
    "matched_weight",
    "negative_entropy",
    "powered",
    "review_threshold",
    "run_weight_scale",
    "scale_confidence",
    "scale_distribution",
]
