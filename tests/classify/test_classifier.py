"""Classifier behaviour on the fake backend: validity, re-asks, errors, batches, cache."""

import asyncio

import pytest

from llmcat import (
    BackendError,
    Classifier,
    ConfigError,
    FakeBackend,
    OutputError,
    Product,
    RetryOptions,
    ServerError,
    Settings,
    Taxonomy,
)
from llmcat.llm.completions import ChoiceConstraint, Completion

LABELS = ["Shoes", "Mobile Phones", "Toys"]
FAST_RETRY = RetryOptions(backoff=0)


def make(backend: FakeBackend, **kw: object) -> Classifier:
    return Classifier(LABELS, backend=backend, settings=None, **kw)  # type: ignore[arg-type]


def test_string_product_and_constraint_shape() -> None:
    backend = FakeBackend(["Shoes"])
    result = make(backend).classify("Nike Air Zoom Pegasus 40 running shoes")
    assert result.ok and result.path == ["Shoes"] and result.category_id == "Shoes"
    # Ids default to positions from 1, as the CLI numbers lines.
    assert result.product_id == "1" and result.model == "fake-model"
    request = backend.requests[0]
    assert request.constraint == ChoiceConstraint(choices=LABELS)
    assert request.sampling.temperature == 0 and request.sampling.top_logprobs > 0
    assert request.messages[0].role == "system" and "Nike" in request.messages[-1].content
    assert result.prompt_version and result.prompt_version == request.prompt_version


def test_confidence_alternatives_and_review_flag() -> None:
    backend = FakeBackend(
        ["Toys"], choice_probabilities={"Shoes": 0.3, "Toys": 0.4, "Mobile Phones": 0.3}
    )
    result = make(backend, review_threshold=0.5).classify("wooden train")
    assert result.confidence == pytest.approx(0.4)
    assert result.alternatives[0].category_id == "Toys"
    assert result.needs_review is True


def test_no_logprobs_means_confidence_none() -> None:
    result = make(FakeBackend(["Toys"])).classify("wooden train")
    assert result.confidence is None and result.needs_review is False


def test_unconstrained_answer_is_mapped_when_unambiguous() -> None:
    result = make(FakeBackend(["Category: toys."])).classify("wooden train")
    assert result.path == ["Toys"] and result.confidence is None


def test_label_outside_the_set_gets_one_reask_then_an_error_record() -> None:
    backend = FakeBackend(["Kitchen", "Toys"])
    result = make(backend).classify("wooden train")
    assert result.path == ["Toys"] and result.usage.calls == 2
    assert "not one of the categories" in backend.requests[1].messages[-1].content
    assert "- Mobile Phones" in backend.requests[1].messages[-1].content

    backend = FakeBackend(["Kitchen", "Garden"])
    result = make(backend).classify("wooden car")
    assert not result.ok and result.category_id is None and result.path == []
    assert result.error is not None and result.error.type == "OutputError"


def test_invalid_label_never_escapes_even_from_a_lying_backend() -> None:
    # A backend that claims to enforce choices but returns something else anyway.
    lying = Completion(text="Spaceships", choice_logprobs={"Spaceships": 0.0})
    result = make(FakeBackend([lying, lying])).classify("x")
    assert result.category_id is None and result.error is not None


def test_batch_keeps_order_and_survives_bad_items() -> None:
    def respond(request):  # type: ignore[no-untyped-def]
        text = request.messages[-1].content
        if "boom" in text:
            raise ServerError("server exploded", retryable=False, status_code=400)
        return "Toys" if "train" in text else "Shoes"

    clf = make(FakeBackend(responder=respond), concurrency=3)
    items = [
        "wooden train",
        "",
        "boom box",
        Product(id="p9", title="trail shoe"),
        {"nope": 1},
        "toy train",
    ]
    results = clf.classify_many(items)  # type: ignore[arg-type]
    assert [r.product_id for r in results] == ["1", "2", "3", "p9", "5", "6"]
    assert [r.path for r in results] == [["Toys"], [], [], ["Shoes"], [], ["Toys"]]
    assert [r.error.type if r.error else None for r in results] == [
        None,
        "InputError",
        "ServerError",
        None,
        "InputError",
        None,
    ]
    assert results[2].error is not None and results[2].error.status_code == 400


def test_batch_concurrency_is_bounded() -> None:
    in_flight = 0
    peak = 0

    class Slow(FakeBackend):
        async def complete(self, request):  # type: ignore[no-untyped-def]
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1
            return await super().complete(request)

    results = make(Slow(), concurrency=4).classify_many([f"item {i}" for i in range(30)])
    assert len(results) == 30 and peak == 4


def test_bad_concurrency_and_unknown_backend_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="concurrency"):
        make(FakeBackend(), concurrency=0)
    with pytest.raises(ConfigError, match="unknown backend 'nope'"):
        Classifier(LABELS, backend="nope")


def test_retryable_errors_are_retried_and_others_are_not() -> None:
    settings = Settings(retry=FAST_RETRY, cache=False)
    backend = FakeBackend([BackendError("503", retryable=True, status_code=503), "Toys"])
    result = Classifier(LABELS, backend=backend, settings=settings).classify("x")
    assert result.path == ["Toys"] and len(backend.requests) == 2

    backend = FakeBackend([BackendError("400", retryable=False, status_code=400), "Toys"])
    result = Classifier(LABELS, backend=backend, settings=settings).classify("x")
    assert result.error is not None and len(backend.requests) == 1


def test_second_identical_call_is_a_cache_hit_and_no_cache_disables_it() -> None:
    backend = FakeBackend(["Toys", "Shoes"])
    clf = make(backend)
    first, second = clf.classify("wooden train"), clf.classify("wooden train")
    assert (first.cached, second.cached) == (False, True)
    assert second.path == ["Toys"] and len(backend.requests) == 1 and second.usage.calls == 0

    backend = FakeBackend(["Toys", "Shoes"])
    clf = make(backend, cache=False)
    assert [clf.classify("wooden train").cached for _ in range(2)] == [False, False]
    assert len(backend.requests) == 2


def test_cache_key_changes_with_what_changes_the_output(tmp_path) -> None:  # type: ignore[no-untyped-def]
    backend = FakeBackend(responder=lambda r: "Toys")
    make(backend).classify("wooden train")
    Classifier(["Shoes", "Toys"], backend=backend).classify("wooden train")  # other labels
    make(backend).classify("wooden train 2")  # other product
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "classify.j2").write_text(
        "{% block system %}{{ labels }}{% endblock %}{% block user %}{{ product.title }}{% endblock %}"
    )
    make(backend, template_dir=tmp_path / "t").classify("wooden train")  # other template
    assert len(backend.requests) == 4


def test_hierarchical_taxonomy_uses_leaf_paths_as_labels() -> None:
    tax = Taxonomy.from_paths(["Clothing > Shirts", "Clothing > Shoes", "Toys"])
    backend = FakeBackend(["Clothing > Shoes"])
    result = Classifier(tax, backend=backend).classify("boot")
    assert result.path == ["Clothing", "Shoes"] and result.category_id == "Clothing > Shoes"
    assert backend.requests[0].constraint == ChoiceConstraint(
        choices=["Clothing > Shirts", "Clothing > Shoes", "Toys"]
    )


def test_async_twins_work_inside_a_running_loop() -> None:
    async def main() -> list[str]:
        clf = make(FakeBackend(responder=lambda r: "Toys"))
        one = await clf.aclassify("x")
        many = await clf.aclassify_many(["a", "b"])
        sync_inside_loop = clf.classify("c")  # run_sync falls back to a thread
        return [r.path[0] for r in (one, *many, sync_inside_loop)]

    assert asyncio.run(main()) == ["Toys"] * 4


def test_output_error_type_is_public() -> None:
    assert issubclass(OutputError, Exception)


def test_a_runs_sample_is_spread_from_its_start_to_its_end() -> None:
    from llmcat.classify.classifier import spread_positions

    assert spread_positions(10) == list(range(10))
    for count in (257, 300, 511, 1050, 10**6):
        positions = spread_positions(count)
        assert len(set(positions)) == len(positions) == 256
        assert positions[0] == 0 and positions[-1] >= count - count // 256 - 1
