"""Strategies on the fake backend and the hashing embedder: selection, candidates, beams,
partial-depth answers, calibration, and that no invalid label escapes."""

from __future__ import annotations

import math

import pytest

import llmcat.classify.classifier
from llmcat import Classifier, ConfigError, Embedder, FakeBackend, HashingEmbedder, Taxonomy
from llmcat.confidence.distributions import contextual_calibrate
from llmcat.embeddings.prototypes import LEARN_MIN
from llmcat.llm.completions import ChoiceConstraint, Completion, CompletionRequest

TAX = Taxonomy.from_paths(
    [
        "Apparel > Shoes > Running Shoes",
        "Apparel > Shoes > Boots",
        "Apparel > Shirts",
        "Electronics > Phones > Smartphones",
        "Electronics > Laptops",
        "Toys > Puzzles",
    ]
)


def scripted(probabilities: dict[str, float]) -> FakeBackend:
    """A backend that scores every offered choice by ``probabilities`` (unknown: tiny)."""

    def respond(request: CompletionRequest) -> Completion:
        assert isinstance(request.constraint, ChoiceConstraint)
        scores = {c: math.log(probabilities.get(c, 1e-6)) for c in request.constraint.choices}
        return Completion(
            text=max(scores, key=scores.__getitem__), choice_logprobs=scores, model="fake-model"
        )

    return FakeBackend(responder=respond)


def test_auto_strategy_follows_taxonomy_size(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Classifier(TAX, backend=FakeBackend()).strategy == "flat"
    big = Taxonomy.from_labels([f"label {i}" for i in range(60)])
    assert (
        Classifier(big, backend=FakeBackend(), embedder=HashingEmbedder()).strategy == "shortlist"
    )
    monkeypatch.setattr(llmcat.classify.classifier, "local_embedder_available", lambda: False)
    assert Classifier(big, backend=FakeBackend()).strategy == "hierarchical"


def test_bad_strategy_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown strategy"):
        Classifier(TAX, backend=FakeBackend(), strategy="magic")  # type: ignore[arg-type]
    huge = Taxonomy.from_labels([f"l{i}" for i in range(2001)])
    with pytest.raises(ConfigError, match="too many"):
        Classifier(huge, backend=FakeBackend(), strategy="flat")
    with pytest.raises(ConfigError, match="min_confidence"):
        Classifier(TAX, backend=FakeBackend(), min_confidence=2.0)


def test_hierarchical_walks_down_by_names_with_the_product_first() -> None:
    backend = scripted(
        {"Apparel": 0.9, "Shoes": 0.8, "Running Shoes": 0.7, "Boots": 0.2, "Shirts": 0.1}
    )
    result = Classifier(TAX, backend=backend, strategy="hierarchical", beam=1).classify(
        "Nike Pegasus"
    )
    assert (
        result.path == ["Apparel", "Shoes", "Running Shoes"] and result.strategy == "hierarchical"
    )
    offered = [r.constraint.choices for r in backend.requests]  # type: ignore[union-attr]
    assert offered == [
        ["Apparel", "Electronics", "Toys"],
        ["Shoes", "Shirts"],
        ["Running Shoes", "Boots"],
    ]
    user = backend.requests[1].messages[-1].content
    assert user.index("Nike Pegasus") < user.index('"Apparel"') < user.index("- Shoes")
    assert result.usage.calls == 3 and 0 < (result.confidence or 0) <= 1


def test_hierarchical_beam_recovers_from_a_wrong_first_step() -> None:
    # Top-1 at level 1 is Electronics, but nothing under it fits; Apparel's child is certain.
    backend = scripted(
        {
            "Electronics": 0.55,
            "Apparel": 0.45,
            "Phones": 0.3,
            "Laptops": 0.3,
            "Shirts": 0.99,
            "Shoes": 0.01,
        }
    )
    greedy = Classifier(
        TAX, backend=backend, strategy="hierarchical", beam=1, cache=False
    ).classify("tee")
    beamed = Classifier(
        TAX, backend=backend, strategy="hierarchical", beam=2, cache=False
    ).classify("tee")
    assert greedy.path[0] == "Electronics"
    assert beamed.path == ["Apparel", "Shirts"]


def test_hierarchical_stops_at_the_parent_when_the_child_is_unclear() -> None:
    backend = scripted({"Apparel": 0.95, "Shoes": 0.9, "Running Shoes": 0.4, "Boots": 0.35})
    result = Classifier(
        TAX, backend=backend, strategy="hierarchical", beam=1, min_confidence=0.6
    ).classify("shoe")
    assert result.path == ["Apparel", "Shoes"] and result.stopped_early
    assert result.category_id == TAX.find_path("Apparel > Shoes").id  # type: ignore[union-attr]


def test_flat_partial_depth_answer_uses_the_ancestor_mass() -> None:
    backend = scripted(
        {
            "Apparel > Shoes > Running Shoes": 0.45,
            "Apparel > Shoes > Boots": 0.35,
            "Toys > Puzzles": 0.2,
        }
    )
    result = Classifier(TAX, backend=backend, strategy="flat", min_confidence=0.5).classify("shoe")
    assert result.path == ["Apparel", "Shoes"] and result.stopped_early
    assert result.confidence == pytest.approx(0.8, abs=1e-3)
    exact = Classifier(TAX, backend=backend, strategy="flat", cache=False).classify("shoe")
    assert exact.path == ["Apparel", "Shoes", "Running Shoes"] and not exact.stopped_early


def test_shortlist_offers_only_the_nearest_leaves() -> None:
    backend = scripted({"Electronics > Phones > Smartphones": 0.9})
    clf = Classifier(
        TAX, backend=backend, strategy="shortlist", shortlist_k=2, embedder=HashingEmbedder()
    )
    result = clf.classify("Samsung smartphones with 5G phones")
    offered = backend.requests[0].constraint.choices  # type: ignore[union-attr]
    assert len(offered) == 2 and "Electronics > Phones > Smartphones" in offered
    assert result.path == ["Electronics", "Phones", "Smartphones"]


def test_embedding_strategy_needs_no_model_call() -> None:
    backend = FakeBackend()
    clf = Classifier(TAX, backend=backend, strategy="embedding", embedder=HashingEmbedder())
    result = clf.classify("jigsaw puzzles for toys")
    assert result.path == ["Toys", "Puzzles"] and backend.requests == []
    assert result.usage.prompt_tokens == 0 and result.prompt_version.startswith("embedding:")
    assert sum(a.probability for a in result.alternatives) <= 1.0 + 1e-9


def test_category_embeddings_are_cached_on_disk(tmp_path) -> None:  # type: ignore[no-untyped-def]
    calls = 0

    class Counting(HashingEmbedder):
        async def embed(self, texts):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += len(texts)
            return await super().embed(texts)

    for _ in range(2):
        Classifier(
            TAX, backend=FakeBackend(), strategy="embedding", embedder=Counting()
        ).classify_many(["a", "b"])
    leaves = len(TAX.leaves())
    assert calls == leaves + 4  # leaves once, then one text per product


@pytest.mark.parametrize("strategy", ["flat", "hierarchical", "shortlist"])
def test_invalid_labels_never_escape_any_strategy(strategy: str) -> None:
    backend = FakeBackend(responder=lambda r: Completion(text="Spaceships"))
    result = Classifier(
        TAX, backend=backend, strategy=strategy, embedder=HashingEmbedder()
    ).classify("x")  # type: ignore[arg-type]
    assert result.category_id is None and result.path == [] and result.error is not None


def test_contextual_calibration_divides_out_the_label_prior() -> None:
    # a: 0.6 / 0.8 = 0.75, b: 0.4 / 0.2 = 2.0, normalised by 2.75
    assert contextual_calibrate({"a": 0.6, "b": 0.4}, {"a": 0.8, "b": 0.2}) == pytest.approx(
        {"a": 0.75 / 2.75, "b": 2.0 / 2.75}
    )

    def respond(request: CompletionRequest) -> Completion:
        # The model loves "Shoes" for every input; a real product tips the balance only a little.
        content_free = "Title: N/A" in request.messages[-1].content
        probs = {"Shoes": 0.7, "Toys": 0.3} if content_free else {"Shoes": 0.6, "Toys": 0.4}
        scores = {k: math.log(v) for k, v in probs.items()}
        return Completion(text=max(scores, key=scores.__getitem__), choice_logprobs=scores)

    plain = Classifier(["Shoes", "Toys"], backend=FakeBackend(responder=respond)).classify(
        "wooden train"
    )
    calibrated = Classifier(
        ["Shoes", "Toys"], backend=FakeBackend(responder=respond), calibration="contextual"
    ).classify("wooden train")
    assert plain.path == ["Shoes"] and calibrated.path == ["Toys"]
    assert calibrated.confidence == pytest.approx((0.4 / 0.3) / (0.6 / 0.7 + 0.4 / 0.3))


def test_shortlist_fuses_the_llm_with_the_embedding_ranking() -> None:
    from llmcat.confidence.distributions import product_of_experts

    assert product_of_experts({"a": 0.5, "b": 0.5}, {"a": 0.9, "b": 0.1}) == pytest.approx(
        {"a": 0.9, "b": 0.1}
    )
    # The LLM slightly prefers Shirts; the product text clearly matches the smartphone leaf.
    backend = scripted({"Apparel > Shirts": 0.55, "Electronics > Phones > Smartphones": 0.45})
    kwargs = {
        "backend": backend,
        "strategy": "shortlist",
        "shortlist_k": 6,
        "embedder": HashingEmbedder(),
        "cache": False,
    }
    fused = Classifier(TAX, **kwargs).classify("Electronics phones smartphones")  # type: ignore[arg-type]
    alone = Classifier(TAX, fuse_embedding=False, **kwargs).classify(
        "Electronics phones smartphones"
    )  # type: ignore[arg-type]
    assert fused.path == ["Electronics", "Phones", "Smartphones"]
    assert alone.path == ["Apparel", "Shirts"]


class _Constant(Embedder):
    """A 'dense' embedder that finds every text alike: only the lexical share can tell them apart."""

    name = "constant"

    async def embed(self, texts):  # type: ignore[no-untyped-def]
        import numpy as np

        return np.ones((len(texts), 4), dtype=np.float32) / 2.0


def test_a_lexical_blend_mixes_the_two_similarities_at_its_weight() -> None:
    import asyncio

    import numpy as np

    from llmcat import LexicalBlend

    blend = LexicalBlend(_Constant(), 0.2)
    texts = ["red running shoes", "running shoes", "laptop"]
    got = asyncio.run(blend.embed(texts))
    lexical = asyncio.run(HashingEmbedder().embed(texts))
    expected = 0.8 * 1.0 + 0.2 * (lexical @ lexical.T)
    assert np.allclose(got @ got.T, expected, atol=1e-5)
    assert blend.name == "constant+lexical:0.2" and blend.temperature == _Constant.temperature
    with pytest.raises(ConfigError, match="between 0 and 1"):
        LexicalBlend(_Constant(), 1.0)


def test_lexical_weight_reaches_the_embedder_the_plan_and_the_answers() -> None:
    plain = Classifier(TAX, backend=FakeBackend(), strategy="embedding", embedder=_Constant())
    blended = Classifier(
        TAX, backend=FakeBackend(), strategy="embedding", embedder=_Constant(), lexical_weight=0.1
    )
    assert plain.embedder().name == "constant"
    assert blended.embedder().name == "constant+lexical:0.1"
    assert blended.plan.embedder == "constant+lexical:0.1"
    # The dense embedder ties every leaf; the lexical share picks the one that shares words.
    assert blended.classify("a jigsaw puzzles box").path == ["Toys", "Puzzles"]
    assert blended.classify("smartphones with phones").path[-1] == "Smartphones"


@pytest.mark.parametrize("stream", [False, True])
def test_flat_labels_learn_from_the_run_before_the_first_result(stream: bool) -> None:
    labels = ["Shoes", "Toys & Games", "Kitchen, Dining"]
    kw = {"backend": FakeBackend(), "strategy": "embedding", "embedder": HashingEmbedder()}
    assert not Classifier(labels, **kw).plan.transductive  # auto: the caller turns it on
    clf = Classifier(labels, transductive="on", **kw)
    assert clf.plan.label_words == "google" and clf.plan.transductive
    titles = ["running shoes", "wooden puzzle game", "frying pan", "leather boots"] * 15
    results = clf.classify_many(iter(titles) if stream else titles)
    assert all(r.error is None and r.path in ([label] for label in labels) for r in results)
    index = clf.context.category_index()
    assert index.moved and clf.context.observed
    plain = Classifier(
        labels,
        backend=FakeBackend(),
        strategy="embedding",
        embedder=HashingEmbedder(),
        transductive="off",
        label_words="names",
    )
    plain.classify_many(titles)
    assert not plain.context.category_index().moved and not plain.context.observed


def test_a_few_products_teach_nothing() -> None:
    clf = Classifier(
        ["Shoes", "Toys"],
        backend=FakeBackend(),
        strategy="embedding",
        embedder=HashingEmbedder(),
        transductive="on",
    )
    assert clf.classify_many(["running shoes"] * (LEARN_MIN - 1))[0].path == ["Shoes"]
    assert clf.context.observed and not clf.context.category_index().moved
    assert clf.context.run is not None and clf.context.run.agreement is None


def test_a_tree_is_not_moved_by_its_run() -> None:
    clf = Classifier(TAX, backend=FakeBackend(), strategy="embedding", embedder=HashingEmbedder())
    clf.classify_many(["jigsaw puzzles for toys", "laptop"])
    assert not clf.plan.transductive and not clf.context.category_index().moved
