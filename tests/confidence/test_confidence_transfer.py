"""Confidence that transfers: the embedding's weight follows a catalogue's estimated accuracy (or
its spread), and the review threshold comes from the fit in force."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from llmcat import Classifier, HashingEmbedder, Taxonomy
from llmcat.backends.fake import FakeBackend
from llmcat.confidence.calibration import (
    ACCURACY_SAMPLE_MIN,
    coverage,
    entropy_threshold,
    estimated_accuracy,
    matched_weight,
    negative_entropy,
    review_threshold,
    run_weight_scale,
)
from llmcat.confidence.distributions import SPREAD_K, spread
from llmcat.confidence.trust import TrustFit

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


def _peaked(top: float, n: int = SPREAD_K) -> list[float]:
    """A distribution over ``n`` candidates with ``top`` on the first, the rest shared."""
    return [top] + [(1 - top) / (n - 1)] * (n - 1)


def test_entropy_threshold_counts_as_many_distributions_as_were_right() -> None:
    sure, unsure = _peaked(0.9), _peaked(0.3)
    assert negative_entropy([1.0, 0.0]) == 0.0
    assert negative_entropy([0.5, 0.5]) == pytest.approx(-math.log(2))
    distributions = [sure] * 6 + [unsure] * 4
    threshold = entropy_threshold(distributions, [True] * 6 + [False] * 4)
    assert threshold is not None
    assert estimated_accuracy(distributions, threshold) == pytest.approx(0.6)
    # a run with more unsure products is estimated less often right
    assert estimated_accuracy([sure] * 3 + [unsure] * 7, threshold) == pytest.approx(0.3)
    assert estimated_accuracy([sure] * 10, threshold) == 1.0


def test_matched_weight_makes_the_mean_confidence_the_accuracy() -> None:
    distributions = [_peaked(0.5), _peaked(0.7)]
    for accuracy in (0.3, 0.6, 0.9):
        w = matched_weight(distributions, accuracy)
        mean_top = 0.0
        for d in distributions:
            powered = [p**w for p in d]
            mean_top += max(powered) / sum(powered) / len(distributions)
        assert mean_top == pytest.approx(accuracy, abs=1e-6)
    # one is weight 1 exactly where the distributions already say the accuracy
    assert matched_weight(distributions, 0.6) == pytest.approx(1.0, abs=1e-6)


def test_a_run_estimated_less_often_right_gets_a_lower_embedding_weight(tmp_path: Path) -> None:
    fit_items = [_peaked(0.9)] * 8 + [_peaked(0.3)] * 2
    threshold = entropy_threshold(fit_items, [True] * 8 + [False] * 2)
    assert threshold is not None
    matched = matched_weight(fit_items, 0.8)
    # the fit's own items: scale 1
    scale, estimate = run_weight_scale(fit_items, 1.0, threshold, matched)
    assert scale == pytest.approx(1.0, abs=1e-6) and estimate == pytest.approx(0.8)
    harder = [_peaked(0.9)] * 10 + [_peaked(0.3)] * 30
    fit = TrustFit(
        weights={"embedding": 2.0, "llm": 0.5},
        entropy_threshold=threshold,
        matched_weight=matched,
        spread=4.0,
        name="f",
    )
    scaled = fit.at_run(harder)
    assert scaled.run_accuracy == pytest.approx(0.25)
    assert scaled.run_scale is not None and scaled.run_scale < 1
    assert scaled.weights == {"embedding": 2.0 * scaled.run_scale, "llm": 0.5}
    assert scaled.describe().endswith(
        f"(the run's accuracy estimated at 0.25: embedding {scaled.run_scale:.2f}x the fit's)"
    )
    # too few products to estimate a share from, or a fit that did not measure it: unchanged
    assert fit.at_run(harder[: ACCURACY_SAMPLE_MIN - 1]) is fit
    assert TrustFit(weights={"embedding": 2.0}, spread=4.0).at_run(harder).run_scale is None
    # what the fit measured survives a file
    fit.save(tmp_path / "saved.json")
    saved = TrustFit.load(tmp_path / "saved.json")
    assert saved.at_run(harder).weights == scaled.weights


def test_a_catalogue_estimated_harder_than_the_fit_gets_lower_confidence() -> None:
    """The same products, one fit: when the fit was measured where the embedder was right more
    often than this catalogue looks, its confidence is lower; the answers are the same."""
    products = [f"Dept {i % 4} Aisle {i % 5} item {i}" for i in range(40)]
    fit = {"weights": {"embedding": 1.0, "llm": 0.0}, "name": "f"}
    as_fitted = Classifier(
        TAX, backend=FakeBackend(), strategy="shortlist", trust=TrustFit(**fit), **COMMON
    ).classify_many(products)
    # measured where every product was as sure as this catalogue's surest: a threshold no
    # product here reaches, so the run is estimated right for none of them
    easier = TrustFit(**fit, entropy_threshold=0.0, matched_weight=1.0, spread=1.0)
    scaled = Classifier(TAX, backend=FakeBackend(), strategy="shortlist", trust=easier, **COMMON)
    results = scaled.classify_many(products)
    assert [r.path for r in results] == [r.path for r in as_fitted]
    assert scaled.context.run is not None
    assert len(scaled.context.run.distributions) == len(products)
    assert all("the run's accuracy estimated at 0.00" in r.trust for r in results)
    pairs = [(s.confidence, f.confidence) for s, f in zip(results, as_fitted, strict=True)]
    assert all(s is not None and f is not None and s < f for s, f in pairs)
    assert "follows each run's accuracy" in scaled.plan.reasons["trust"]


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
    assert scaled.context.run is not None
    assert scaled.context.run.spread == pytest.approx(typical)
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
    assert clf.context.run is None and "at the run's spread" in alone.trust
    clf.classify_many(products[:6])
    first = clf.context.run
    clf.classify_many(products[6:])
    assert first is not None and first.spread is not None and clf.context.run is first
    streamed = Classifier(TAX, backend=FakeBackend(), strategy="shortlist", trust=fit, **COMMON)
    from_generator = streamed.classify_many(p for p in products[:6])
    assert streamed.context.run is not None
    assert streamed.context.run.spread == pytest.approx(first.spread)
    assert len(from_generator) == 6  # the sample taken from a generator is not lost


def test_a_run_is_read_once_even_where_no_spread_can_be_measured() -> None:
    """Five categories are fewer than a spread is taken over: the run is still read once, its
    sample's vectors kept for the decisions that need them, not embedded again per call."""
    small = Taxonomy.from_paths([f"Dept {d}" for d in range(5)])
    fit = TrustFit(weights={"embedding": 1.0, "llm": 0.0}, spread=1.0, name="f")
    clf = Classifier(small, backend=FakeBackend(), strategy="shortlist", trust=fit, **COMMON)
    products = [f"Dept {i % 5} item" for i in range(12)]
    clf.classify_many(products[:6])
    first = clf.context.run
    assert first is not None and len(first.vectors) == 6 and first.spread is None
    clf.classify_many(products[6:])
    assert clf.context.run is first


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


def test_a_sampled_product_is_not_embedded_again_when_its_turn_comes() -> None:
    """A run of up to 256 products is read whole before the first result; its products are
    then classified from the vectors already made (the same vectors: the same answers)."""
    small = Taxonomy.from_paths([f"Dept {d} > Aisle {a}" for d in range(4) for a in range(4)])
    fit = TrustFit(weights={"embedding": 1.0, "llm": 0.0}, spread=1.0, name="f")
    products = [f"Dept {i % 4} Aisle {i % 3} item {i}" for i in range(40)]
    own = {**COMMON, "embedder": HashingEmbedder()}  # patched below: not the shared one
    clf = Classifier(small, backend=FakeBackend(), strategy="shortlist", trust=fit, **own)
    embedded: list[str] = []
    inner = clf.context.embedder()
    original = inner.embed

    async def counting(texts: Sequence[str]) -> Any:
        embedded.extend(texts)
        return await original(texts)

    inner.embed = counting  # type: ignore[method-assign]
    first = clf.classify_many(products)
    assert clf.context.observed
    assert sorted(t for t in embedded if t in products) == sorted(products)  # each one once
    again = Classifier(small, backend=FakeBackend(), strategy="shortlist", trust=fit, **COMMON)
    assert [r.path for r in again.classify_many(products)] == [r.path for r in first]


def test_a_run_learned_from_is_as_sure_as_its_answers_agree_with_their_neighbours() -> None:
    sample = [_peaked(0.9)] * 20 + [_peaked(0.6)] * 20
    fit = TrustFit(weights={"embedding": 2.0, "llm": 0.0}, name="f")
    for accuracy in (0.4, 0.7):
        scaled = fit.at_accuracy(accuracy, sample)
        w = scaled.weights["embedding"]
        mean_top = sum(max(p**w for p in d) / sum(p**w for p in d) for d in sample) / len(sample)
        assert mean_top == pytest.approx(accuracy, abs=1e-6)
        assert scaled.run_accuracy == accuracy and scaled.weights["llm"] == 0.0
    assert fit.at_accuracy(0.5, sample[: ACCURACY_SAMPLE_MIN - 1]) is fit
    # End to end: a flat list of labels learned from gets its confidence from the agreement.
    labels = ["running shoes", "wooden puzzles", "frying pans"]
    clf = Classifier(
        labels,
        backend=FakeBackend(),
        strategy="shortlist",
        trust=fit,
        transductive="on",
        **COMMON,
    )
    titles = [f"{t} {n}" for n in range(20) for t in ("shoe", "puzzle", "pan")]
    results = clf.classify_many(titles)
    run = clf.context.run
    assert run is not None and run.agreement is not None and len(run.distributions) == 60
    assert f"estimated at {run.agreement:.2f}" in (results[0].trust or "")
