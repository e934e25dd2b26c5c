"""The in-process vLLM backend without vLLM: request shaping, result parsing, and how concurrent
requests become one engine call (the engine is replaced by a recorder)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from llmcat import Classifier, Settings
from llmcat.backends import backend_class
from llmcat.backends.vllm import (
    VLLMBackend,
    completion_from_output,
    engine_args_from_env,
    sampling_kwargs,
    structured_kwargs,
    token_logprobs,
)
from llmcat.errors import ConfigError
from llmcat.llm.completions import (
    ChoiceConstraint,
    Completion,
    CompletionRequest,
    JsonConstraint,
    Message,
    Sampling,
)

pytestmark = pytest.mark.allow_model_requests
LABELS = ["Shoes", "Mobile Phones", "Toys"]


def request(text: str, constraint: Any = None, top: int = 0) -> CompletionRequest:
    return CompletionRequest(
        messages=[Message(role="user", content=text)],
        constraint=constraint,
        sampling=Sampling(top_logprobs=top, max_tokens=32),
    )


def lp(token: str, logprob: float, rank: int) -> SimpleNamespace:
    return SimpleNamespace(decoded_token=token, logprob=logprob, rank=rank)


def test_sampling_and_structured_kwargs() -> None:
    choice = request("x", ChoiceConstraint(choices=LABELS), top=50)
    assert sampling_kwargs(choice) == {
        "temperature": 0.0,
        "max_tokens": 32,
        "seed": 0,
        "logprobs": 20,  # capped like the OpenAI API
    }
    assert structured_kwargs(choice) == {"choice": LABELS}
    schema = {"type": "object"}
    assert structured_kwargs(request("x", JsonConstraint(json_schema=schema))) == {"json": schema}
    assert structured_kwargs(request("x")) is None
    assert "logprobs" not in sampling_kwargs(request("x"))


def test_token_logprobs_keep_the_sampled_token_and_ranks_up_to_k() -> None:
    steps = [
        # the sampled token (id 7) is outside the top 2: vLLM adds it to the map anyway
        {3: lp("Sh", math.log(0.5), 1), 4: lp("To", math.log(0.3), 2), 7: lp("Mo", -3.0, 3)},
        {9: lp("oes", 0.0, 1)},
    ]
    tokens = token_logprobs([7, 9], steps, top_k=2)
    assert tokens is not None
    assert tokens[0].token == "Mo" and tokens[0].logprob == -3.0
    assert set(tokens[0].top) == {"Sh", "To"}
    assert tokens[1].top == {"oes": 0.0}
    assert token_logprobs([1], None, top_k=2) is None


def test_completion_from_output() -> None:
    output = SimpleNamespace(
        prompt_token_ids=list(range(40)),
        outputs=[
            SimpleNamespace(
                text="Toys",
                finish_reason="stop",
                token_ids=[5],
                logprobs=[{5: lp("Toys", math.log(0.8), 1), 6: lp("Sh", math.log(0.2), 2)}],
            )
        ],
    )
    completion = completion_from_output(output, "m", top_k=5)
    assert completion.text == "Toys" and completion.prompt_tokens == 40
    assert completion.completion_tokens == 1 and completion.logprobs is not None
    assert completion.logprobs[0].top["Sh"] == pytest.approx(math.log(0.2))


def test_engine_args_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMCAT_VLLM_ENGINE_ARGS", '{"enforce_eager": true}')
    assert engine_args_from_env() == {"enforce_eager": True}
    monkeypatch.setenv("LLMCAT_VLLM_ENGINE_ARGS", "[1]")
    with pytest.raises(ConfigError, match="JSON object"):
        engine_args_from_env()
    monkeypatch.setenv("LLMCAT_VLLM_ENGINE_ARGS", "{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        engine_args_from_env()


class RecordingBackend(VLLMBackend):
    """VLLMBackend whose engine call is recorded instead of run."""

    def __init__(self, fail_on: str | None = None) -> None:
        super().__init__(model="recorded")
        self.calls: list[list[str]] = []
        self.fail_on = fail_on

    def engine(self) -> Any:
        return None

    def _chat(self, llm: Any, requests: list[CompletionRequest]) -> list[Completion]:
        texts = [r.messages[-1].content for r in requests]
        self.calls.append(texts)
        if self.fail_on is not None and self.fail_on in texts:
            raise ValueError(f"prompt {self.fail_on!r} is too long")
        answers = []
        for text in texts:
            label = "Toys" if "toy" in text else "Shoes"
            answers.append(Completion(text=label, model="recorded", prompt_tokens=10))
        return answers


def test_concurrent_requests_become_one_engine_call() -> None:
    backend = RecordingBackend()

    async def run() -> list[Completion]:
        texts = [f"toy {i}" if i % 2 else f"shoe {i}" for i in range(40)]
        return await asyncio.gather(*(backend.complete(request(t)) for t in texts))

    completions = asyncio.run(run())
    assert [c.text for c in completions] == ["Shoes", "Toys"] * 20
    assert [len(batch) for batch in backend.calls] == [40]


def test_a_rejected_batch_is_retried_one_by_one_so_only_the_bad_item_fails() -> None:
    backend = RecordingBackend(fail_on="bad")

    async def run() -> list[Any]:
        texts = ["shoe", "bad", "toy"]
        return await asyncio.gather(
            *(backend.complete(request(t)) for t in texts), return_exceptions=True
        )

    first, bad, third = asyncio.run(run())
    assert first.text == "Shoes" and third.text == "Toys"
    assert "too long" in str(bad) and type(bad).__name__ == "BackendError"
    assert backend.calls[0] == ["shoe", "bad", "toy"] and len(backend.calls) == 4


def test_classifier_batch_through_the_in_process_backend() -> None:
    backend = RecordingBackend()
    clf = Classifier(LABELS, backend=backend, settings=Settings(cache=False, progress=False))
    results = clf.classify_many([f"toy {i}" for i in range(30)])
    assert all(r.ok and r.path == ["Toys"] for r in results)
    assert max(len(batch) for batch in backend.calls) >= 16
    assert backend_class("vllm") is VLLMBackend


def test_the_model_name_is_known_before_the_engine_loads(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert VLLMBackend(model=str(folder)).model == "my-model"
    assert VLLMBackend().model == "SmolLM2-135M-Instruct"


class BlindBackend(RecordingBackend):
    """A loaded engine whose model takes no images (vLLM's model config says so)."""

    @property
    def vision(self) -> bool | None:  # type: ignore[override]
        return False


def test_images_for_a_model_without_vision_are_refused_per_request_then_dropped() -> None:
    from llmcat import ImagesRejected, Product

    backend = BlindBackend()

    async def run() -> Any:
        with_image = request("shoe").model_copy(update={"images": ["https://example.com/a.jpg"]})
        return await asyncio.gather(
            backend.complete(with_image), backend.complete(request("toy")), return_exceptions=True
        )

    refused, plain = asyncio.run(run())
    assert isinstance(refused, ImagesRejected) and plain.text == "Toys"
    assert backend.calls == [["toy"]]  # the engine never saw the request with an image
    clf = Classifier(LABELS, backend=BlindBackend(), settings=Settings(cache=False, progress=False))
    result = clf.classify(Product(title="toy car", image_urls=["https://example.com/a.jpg"]))
    assert result.ok and result.path == ["Toys"] and not result.images_used
