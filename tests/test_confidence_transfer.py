"""Confidence that transfers: the embedding's weight follows a catalogue's spread, and the review
threshold comes from the fit in force."""

from __future__ import annotations

import asyncio
import math

import pytest

from llmcat import Classifier, HashingEmbedder, Taxonomy
from llmcat.backends.fake import FakeBackend
from llmcat.calibration import coverage, review_threshold
from llmcat.distributions import SPREAD_K, spread
from llmcat.trust import TrustFit

TAX = Taxonomy.from_paths([f"Dept {d} > Aisle {a}" for d in range(4) for a in range(5)])
COMMON = {"embedder": HashingEmbedder(), "shortlist_k": SPREAD_K, "cache": False}


def test_spread_is_the_deviation_of_the_top_log_probabilities() -> None:
    probs = [math.exp(-x) for x in range(SPREAD_K)]
    logs = [math.log(p) for p in probs]
    mean = sum(logs) / SPREAD_K
    expected = math.sqrt(sum((x - mean) ** 2 for x in logs) / SPREAD_K)
    distribution = {f"c{i}": p for i, p in enumerate(probs)} | {"tail": 1e-9}
    assert spread(distribution) == pytest.approx(expected)
    assert spread({"a": 0.5, "b": 0.5}) is None  # fewer candidates than the spread is taken over
    flat = {f"c{i}": 0.1 for i in range(SPREAD_K)}
    assert spread(flat) == pytest.approx(0.0)


def test_a_fit_scales_the_embedding_weight_by_the_runs_spread() -> None:
    fit = TrustFit(weights={"embedding": 2.0, "llm": 0.5}, spread=4.0, name="f")
    half = fit.at_spread(2.0)
    assert half.weights == {"embedding": 1.0, "llm": 0.5}
    assert (
        half.describe() == "fitted:f embedding=1.00 llm=0.50 (at the run's spread, 0.50x the fit's)"
    )
    assert fit.at_spread(None) is fit
    unmeasured = TrustFit(weights={"embedding": 2.0}, name="old")
    assert unmeasured.at_spread(1.0) is unmeasured


def test_review_threshold_is_the_lowest_that_keeps_the_target_accuracy() -> None:
    confidences = [0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    correct = [True, True, True, True, False, True, False]
    # at 0.5: 5 of 6 right (0.83); at 0.7: 4 of 4
    assert review_threshold(confidences, correct, target=0.8) == 0.5
    assert review_threshold(confidences, correct, target=0.9) == 0.7
    assert review_threshold([0.9, 0.8], [False, False], target=0.5) is None
    # ties are kept or flagged together
    assert review_threshold([0.9, 0.9, 0.9], [True, True, False], target=0.9) is None
    assert coverage(confidences, correct, 0.7) == (pytest.approx(3 / 7), 1.0)
    assert coverage(confidences, correct, 0.99) == (1.0, None)


def test_a_bunched_catalogue_gets_lower_confidence_than_a_spread_one() -> None:
    """The same products, one fit: classified as part of a catalogue whose nearest categories
    lie closer together than the fit's, their confidence is lower; the answers are the same."""
    products = [f"Dept {i % 4} Aisle {i % 5} item" for i in range(12)]
    measured = Classifier(TAX, backend=FakeBackend(), strategy="embedding", **COMMON)
    spreads = [s for s in asyncio.run(_spreads(measured, products)) if s is not None]
    assert len(spreads) == len(products)
    typical = sum(spreads) / len(spreads)
    fit = {"weights": {"embedding": 1.0, "llm": 0.0}, "name": "f"}
    as_fitted = Classifier(
        TAX, backend=FakeBackend(), strategy="shortlist", trust=TrustFit(**fit), **COMMON
    ).classify_many(products)
    easier = TrustFit(**fit, spread=typical * 2)  # fitted where products stood out twice as much
    scaled = Classifier(TAX, backend=FakeBackend(), strategy="shortlist", trust=easier, **COMMON)
    results = scaled.classify_many(products)
    assert [r.path for r in results] == [r.path for r in as_fitted]
    assert scaled.context.run_spread == pytest.approx(typical)
    assert all(r.trust.endswith("(at the run's spread, 0.50x the fit's)") for r in results)
    pairs = [(s.confidence, f.confidence) for s, f in zip(results, as_fitted, strict=True)]
    unsure = [(s, f) for s, f in pairs if s is not None and f is not None and f < 0.999]
    assert len(unsure) >= len(products) // 2
    assert all(s < f for s, f in unsure)


def test_the_run_spread_is_estimated_once_and_single_calls_use_their_own() -> None:
    products = [f"Dept {i % 4} Aisle {i % 5} item" for i in range(12)]
    fit = TrustFit(weights={"embedding": 1.0, "llm": 0.0}, spread=1.0, name="f")
    clf = Classifier(TAX, backend=FakeBackend(), strategy="shortlist", trust=fit, **COMMON)
    alone = clf.classify(products[0])
    assert clf.context.run_spread is None and "at the run's spread" in alone.trust
    clf.classify_many(products[:6])
    first = clf.context.run_spread
    clf.classify_many(products[6:])
    assert first is not None and clf.context.run_spread == first
    streamed = Classifier(TAX, backend=FakeBackend(), strategy="shortlist", trust=fit, **COMMON)
    from_generator = streamed.classify_many(p for p in products[:6])
    assert streamed.context.run_spread == pytest.approx(first)
    assert len(from_generator) == 6  # the sample taken from a generator is not lost


def test_the_review_threshold_comes_from_the_fit_unless_the_caller_sets_one() -> None:
    fit = TrustFit(weights={"embedding": 1.0, "llm": 0.0}, review_threshold=0.73, name="f")
    clf = Classifier(TAX, backend=FakeBackend(), strategy="shortlist", trust=fit, **COMMON)
    assert clf.plan.review_threshold == 0.73
    assert "right 90% of the time" in clf.plan.reasons["review"]
    result = clf.classify("Dept 1 Aisle 2 item")
    assert result.confidence is not None
    assert result.needs_review == (result.confidence < 0.73)
    chosen = Classifier(
        TAX, backend=FakeBackend(), strategy="shortlist", trust=fit, review_threshold=0.2, **COMMON
    )
    assert chosen.plan.review_threshold == 0.2 and chosen.plan.reasons["review"] == (
        "chosen by the caller"
    )
    plain = Classifier(TAX, backend=FakeBackend(), strategy="embedding", **COMMON)
    assert plain.plan.review_threshold == 0.5


async def _spreads(clf: Classifier, products: list[str]) -> list[float | None]:
    from llmcat import Product

    return [await clf.context.spread_of(Product(title=p)) for p in products]
