"""Fitted trust: weights recover a known mix, fits are saved, shipped and applied, and a model
nobody measured keeps neutral weights."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from llmcat import Classifier, ConfigError, FakeBackend, HashingEmbedder, Taxonomy
from llmcat.confidence.distributions import log_linear_pool, product_of_experts
from llmcat.confidence.trust import TrustFit, fit_weights, mean_nll, neutral
from llmcat.llm.completions import ChoiceConstraint, Completion, CompletionRequest


def synthetic(
    true: dict[str, float], n: int, seed: int
) -> list[tuple[dict[str, dict[str, float]], str]]:
    """Items whose gold is drawn from the log-linear pool of random experts under ``true``."""
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        candidates = [f"c{i}" for i in range(6)]
        experts = {}
        for name in true:
            raw = {c: math.exp(rng.gauss(0, 1.5)) for c in candidates}
            total = sum(raw.values())
            experts[name] = {c: v / total for c, v in raw.items()}
        pooled = log_linear_pool(experts, true)
        gold = rng.choices(candidates, weights=[pooled[c] for c in candidates])[0]
        items.append((experts, gold))
    return items


def test_fitted_weights_recover_a_known_mix() -> None:
    true = {"llm": 0.0, "embedding": 1.5}
    items = synthetic(true, 1500, seed=0)
    weights = fit_weights(items, list(true))
    assert weights["llm"] < 0.15 and abs(weights["embedding"] - 1.5) < 0.25
    assert mean_nll(items, weights) < mean_nll(items, {"llm": 1.0, "embedding": 1.0})
    other = {"llm": 0.8, "embedding": 0.4}
    fitted = fit_weights(synthetic(other, 1500, seed=1), list(other))
    assert abs(fitted["llm"] - 0.8) < 0.2 and abs(fitted["embedding"] - 0.4) < 0.2


def test_neutral_weights_are_the_product_of_experts() -> None:
    a, b = {"x": 0.7, "y": 0.2, "z": 0.1}, {"x": 0.1, "y": 0.3, "z": 0.6}
    pooled = neutral(["a", "b"]).fuse({"a": a, "b": b})
    assert pooled == pytest.approx(product_of_experts(a, b))
    assert TrustFit(weights={"a": 0.0, "b": 1.0}).fuse({"a": a, "b": b}) == pytest.approx(b)


TAX = Taxonomy.from_paths([f"Dept {d} > Aisle {a}" for d in range(4) for a in range(5)])


def llm_prefers_the_last() -> FakeBackend:
    def respond(request: CompletionRequest) -> Completion:
        assert isinstance(request.constraint, ChoiceConstraint)
        choices = request.constraint.choices
        scores = {c: math.log(0.9 if c == choices[-1] else 0.1 / len(choices)) for c in choices}
        return Completion(text=choices[-1], choice_logprobs=scores, model="fake-model")

    return FakeBackend(responder=respond)


def test_shortlist_records_its_experts_and_follows_a_fit(tmp_path: Path) -> None:
    common = {
        "embedder": HashingEmbedder(),
        "strategy": "shortlist",
        "shortlist_k": 5,
        "cache": False,
    }
    product = "Dept 2 Aisle 3 shelf"
    neutral_result = Classifier(TAX, backend=llm_prefers_the_last(), **common).classify(product)
    assert neutral_result.trust.startswith("neutral")  # nothing was fitted for fake-model
    assert neutral_result.experts is not None and set(neutral_result.experts) == {
        "llm",
        "embedding",
    }
    fit = TrustFit(weights={"llm": 0.0, "embedding": 1.0}, name="embedding-only")
    fit.save(tmp_path / "trust.json")
    muted = Classifier(TAX, backend=llm_prefers_the_last(), trust=tmp_path / "trust.json", **common)
    result = muted.classify(product)
    assert result.path == ["Dept 2", "Aisle 3"]  # what the embedding alone says
    assert result.trust == "fitted:embedding-only embedding=1.00 llm=0.00"
    with pytest.raises(ConfigError, match="cannot read trust file"):
        Classifier(TAX, backend=FakeBackend(), trust=tmp_path / "missing.json", **common)


def test_a_fit_is_shipped_for_the_embedded_model() -> None:
    from llmcat.confidence.trust import shipped_fits

    fits = shipped_fits()
    assert any(f.model == "SmolLM2-135M-Instruct.Q4_1.gguf" for f in fits)
    for fit in fits:
        assert fit.fitted_on and fit.items >= 100 and fit.prompt_version and fit.embedder


def test_a_fit_that_mutes_the_model_does_not_ask_it() -> None:
    common = {"embedder": HashingEmbedder(), "shortlist_k": 5, "cache": False}
    backend = llm_prefers_the_last()
    fit = TrustFit(weights={"llm": 0.0, "embedding": 2.0}, name="muted")
    products = [f"Dept {i % 4} Aisle {i % 5} item" for i in range(12)]
    fused = Classifier(TAX, backend=backend, strategy="shortlist", trust=fit, **common)
    results = fused.classify_many(products)
    assert backend.requests == [] and all(r.usage.calls == 0 for r in results)
    alone = Classifier(TAX, backend=FakeBackend(), strategy="embedding", **common)
    assert [r.path for r in results] == [r.path for r in alone.classify_many(products)]
    assert results[0].trust == "fitted:muted embedding=2.00 llm=0.00"
    asked = Classifier(TAX, backend=backend, strategy="shortlist", trust="neutral", **common)
    assert asked.classify(products[0]).trust.startswith("neutral") and backend.requests


def test_a_model_without_a_fit_is_told_once_how_to_fit_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from llmcat.strategies import base

    base._said.clear()
    common = {"embedder": HashingEmbedder(), "strategy": "shortlist", "shortlist_k": 3}
    clf = Classifier(TAX, backend=llm_prefers_the_last(), cache=False, **common)
    with caplog.at_level("WARNING", logger="llmcat"):
        clf.classify_many([f"Dept {i} Aisle 1" for i in range(5)])
        Classifier(TAX, backend=llm_prefers_the_last(), cache=False, **common).classify("x")
    said = [r.getMessage() for r in caplog.records if "no trust fit" in r.getMessage()]
    assert len(said) == 1 and "python -m evals fit" in said[0] and "fake-model" in said[0]


def test_without_a_neural_embedder_auto_uses_a_lexical_shortlist_only_where_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import llmcat.classify.classifier

    monkeypatch.setattr(llmcat.classify.classifier, "local_embedder_available", lambda: False)
    big = Taxonomy.from_paths([f"Dept {d} > Aisle {a}" for d in range(8) for a in range(8)])
    smollm2 = FakeBackend(model="SmolLM2-135M-Instruct.Q4_1.gguf")  # a hashing fit ships for it
    measured = Classifier(big, backend=smollm2, cache=False)
    assert measured.strategy == "shortlist" and measured.embedder().name == "hashing-2048"
    result = measured.classify("Dept 3 Aisle 5 shelf")
    assert result.trust.startswith("fitted:smollm2-135m-local-hashing")
    unmeasured = Classifier(big, backend=FakeBackend(), cache=False)
    assert unmeasured.strategy == "hierarchical"
    small = Classifier(TAX, backend=FakeBackend(model=smollm2.model), cache=False)
    assert small.strategy == "flat"


def test_the_llm_is_muted_unless_it_pays_for_itself_in_right_answers() -> None:
    from llmcat.evals.fit import _model_pays_its_way

    right, wrong = {"a": 0.9, "b": 0.1}, {"a": 0.1, "b": 0.9}
    # The embedding is right; the LLM is right as often, plus noise: asking it buys nothing.
    echo = [({"llm": right, "embedding": right}, "a"), ({"llm": wrong, "embedding": wrong}, "b")]
    echo = echo * 10 + [({"llm": wrong, "embedding": right}, "a")]
    weights = _model_pays_its_way(echo, ["llm", "embedding"], {"llm": 0.4, "embedding": 1.0})
    assert weights["llm"] == 0.0 and weights["embedding"] > 0
    # The LLM is right where the embedding is wrong: it keeps its weight.
    needed = [({"llm": right, "embedding": wrong}, "a"), ({"llm": wrong, "embedding": right}, "b")]
    needed *= 5
    kept = _model_pays_its_way(needed, ["llm", "embedding"], {"llm": 2.0, "embedding": 0.5})
    assert kept == {"llm": 2.0, "embedding": 0.5}
