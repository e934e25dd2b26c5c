"""The transport layer: retries only on retryable errors, Retry-After honoured, timeouts."""

import asyncio
import time
from pathlib import Path

import pytest

from llmcat import BackendError, FakeBackend, RateLimitError, RetryOptions, TransportError
from llmcat.llm.calls import ModelCaller
from llmcat.llm.completions import Completion, CompletionRequest, Message

REQUEST = CompletionRequest(messages=[Message(role="user", content="hi")])


def test_retry_after_is_honoured() -> None:
    backend = FakeBackend([RateLimitError("slow down", retry_after=0.3), "ok"])
    caller = ModelCaller(backend, retry=RetryOptions(backoff=5, max_wait=5))
    start = time.monotonic()
    assert asyncio.run(caller(REQUEST)).text == "ok"
    # waited the server's 0.3 s, not the 5 s fallback
    assert 0.25 <= time.monotonic() - start < 3


def test_gives_up_after_the_configured_attempts() -> None:
    backend = FakeBackend([BackendError("503", retryable=True, status_code=503)] * 3 + ["ok"])
    caller = ModelCaller(backend, retry=RetryOptions(attempts=3, backoff=0))
    with pytest.raises(BackendError, match="503"):
        asyncio.run(caller(REQUEST))
    assert len(backend.requests) == 3


def test_timeout_becomes_a_retryable_transport_error() -> None:
    class Hanging(FakeBackend):
        async def complete(self, request):  # type: ignore[no-untyped-def]
            await asyncio.sleep(10)

    caller = ModelCaller(
        Hanging(),
        timeout=0.05,
        retry=RetryOptions(attempts=2, backoff=0),
    )
    with pytest.raises(TransportError, match="did not answer within"):
        asyncio.run(caller(REQUEST))


def test_cache_key_ignores_timeouts_but_not_sampling() -> None:
    base = REQUEST.cache_key("openai", "m")
    assert base == REQUEST.cache_key("openai", "m")
    hotter = REQUEST.model_copy(
        update={"sampling": REQUEST.sampling.model_copy(update={"temperature": 0.7})}
    )
    assert hotter.cache_key("openai", "m") != base
    assert REQUEST.cache_key("openai", "other-model") != base
    assert REQUEST.model_copy(update={"prompt_version": "v2"}).cache_key("openai", "m") != base


def test_a_completion_with_infinite_logprobs_survives_the_cache(tmp_path: Path) -> None:
    from llmcat.llm.cache import ResponseCache
    from llmcat.llm.completions import TokenLogprob

    cache = ResponseCache(tmp_path)
    completion = Completion(
        text="Toys",
        logprobs=[TokenLogprob(token="Toys", logprob=0.0, top={"Toys": 0.0, "Sh": float("-inf")})],
        choice_logprobs={"Toys": 0.0, "Shoes": float("-inf")},
    )
    cache.set("k", completion)
    hit = cache.get("k")
    assert hit is not None and hit.logprobs is not None
    assert hit.logprobs[0].top["Sh"] == float("-inf")
