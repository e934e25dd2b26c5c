"""The effectful edge around a backend: cache lookup, timeout and transport retries.

Transport retries (here) and output re-asks (in the classifier/describer) never mix: this layer
retries only ``BackendError``s marked retryable, waits what the server asked (Retry-After) or an
exponential backoff with jitter, and never looks at what the model said.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import tenacity

from .backends.base import Backend, Completion, CompletionRequest
from .cache import ResponseCache
from .errors import BackendError, TransportError

DEFAULT_RETRY: dict[str, Any] = {
    "stop": tenacity.stop_after_attempt(5),
    "wait": tenacity.wait_random_exponential(multiplier=0.5, max=30),
}


class _RetryAfterOrBackoff(tenacity.wait.wait_base):
    """The server's Retry-After when it sent one, else the fallback wait."""

    def __init__(self, backend: Backend, fallback: Any) -> None:
        self.backend = backend
        self.fallback = fallback

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if error is not None:
            seconds = self.backend.retry_after(error)
            if seconds is not None:
                return min(float(seconds), 120.0)
        return float(self.fallback(retry_state))


def _is_retryable(error: BaseException) -> bool:
    return isinstance(error, BackendError) and error.retryable


class ModelCaller:
    """Calls one backend with caching, a per-call timeout and transport retries."""

    def __init__(
        self,
        backend: Backend,
        *,
        cache: ResponseCache | None = None,
        timeout: float = 60.0,
        retry: dict[str, Any] | None = None,
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.timeout = timeout
        policy = {**DEFAULT_RETRY, **(retry or {})}
        policy["wait"] = _RetryAfterOrBackoff(backend, policy["wait"])
        policy.setdefault("retry", tenacity.retry_if_exception(_is_retryable))
        policy["reraise"] = True
        self._policy = policy

    async def __call__(
        self, request: CompletionRequest, *, is_valid: Callable[[Completion], bool] | None = None
    ) -> Completion:
        """The completion for ``request``; stored in the cache only when ``is_valid`` accepts it,
        so an unusable answer is asked again next time instead of being replayed."""
        key = None
        if self.cache is not None:
            key = request.cache_key(self.backend.name, self.backend.model)
            hit = self.cache.get(key)
            if hit is not None:
                return hit.model_copy(update={"cached": True})
        completion = await self._call_with_retries(request)
        if self.cache is not None and (is_valid is None or is_valid(completion)):
            # The model id may only be known after the first call (a server's default model).
            key = request.cache_key(self.backend.name, self.backend.model)
            self.cache.set(key, completion)
        return completion

    async def _call_with_retries(self, request: CompletionRequest) -> Completion:
        async for attempt in tenacity.AsyncRetrying(**self._policy):
            with attempt:
                return await self._call_once(request)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _call_once(self, request: CompletionRequest) -> Completion:
        if not self.backend.honours_timeout:
            return await self.backend.complete(request)
        try:
            return await asyncio.wait_for(self.backend.complete(request), self.timeout)
        except asyncio.TimeoutError as exc:
            raise TransportError(
                f"{self.backend.name} did not answer within {self.timeout:g}s", original=exc
            ) from exc
