"""The effectful edge around a backend: cache lookup, timeout and transport retries.

Transport retries (here) and output re-asks (in the strategies and the describer) never mix: this
layer retries only ``BackendError``s marked retryable, waits what the server asked (Retry-After)
or an exponential backoff with jitter, and never looks at what the model said.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import tenacity

from llmcat.backends.base import Backend
from llmcat.config.options import RetryOptions
from llmcat.errors import BackendError, TransportError
from llmcat.llm.cache import ResponseCache
from llmcat.llm.completions import Completion, CompletionRequest
from llmcat.redact import redact

T = TypeVar("T")
log = logging.getLogger(__name__)


def _log_retry(retry_state: tenacity.RetryCallState) -> None:
    """One INFO line per transport retry: which try failed, why, and the wait before the next."""
    outcome = retry_state.outcome
    error = outcome.exception() if outcome is not None else None
    wait = retry_state.next_action.sleep if retry_state.next_action is not None else 0.0
    log.info(
        "retry %d/%s in %.2fs after %s: %s",
        retry_state.attempt_number + 1,
        getattr(retry_state.retry_object.stop, "max_attempt_number", "?"),
        wait,
        type(error).__name__,
        redact(str(error)),
    )


class _RetryAfterOrBackoff(tenacity.wait.wait_base):
    """The server's Retry-After when it sent one (capped), else exponential backoff."""

    def __init__(
        self, options: RetryOptions, retry_after: Callable[[BaseException], float | None]
    ) -> None:
        self.cap = options.max_retry_after
        self.retry_after = retry_after
        self.backoff = tenacity.wait_random_exponential(
            multiplier=options.backoff, max=options.max_wait
        )

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if error is not None:
            seconds = self.retry_after(error)
            if seconds is not None:
                return min(float(seconds), self.cap)
        return float(self.backoff(retry_state))


def _is_retryable(error: BaseException) -> bool:
    return isinstance(error, BackendError) and error.retryable


def retry_policy(
    options: RetryOptions,
    retry_after: Callable[[BaseException], float | None] = lambda e: getattr(
        e, "retry_after", None
    ),
) -> dict[str, Any]:
    """tenacity keyword arguments for ``options``: only retryable BackendErrors are retried."""
    # Any: the values are tenacity's own strategies, unpacked into its typed AsyncRetrying.
    return {
        "stop": tenacity.stop_after_attempt(options.attempts),
        "wait": _RetryAfterOrBackoff(options, retry_after),
        "retry": tenacity.retry_if_exception(_is_retryable),
        "before_sleep": _log_retry,
        "reraise": True,
    }


async def with_retries(policy: dict[str, Any], call: Callable[[], Awaitable[T]]) -> T:
    """``await call()``, retried by ``policy`` (from ``retry_policy``)."""
    async for attempt in tenacity.AsyncRetrying(**policy):
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover


class ModelCaller:
    """Calls one backend with caching, a per-call timeout and transport retries."""

    def __init__(
        self,
        backend: Backend,
        *,
        cache: ResponseCache | None = None,
        timeout: float = 60.0,
        retry: RetryOptions | None = None,
        store: bool = True,
    ) -> None:
        self.backend = backend
        self.cache = cache
        #: False: the cache is read, never written (a batch export's placeholder answers)
        self.store = store
        self.timeout = timeout
        self._policy = retry_policy(retry or RetryOptions(), backend.retry_after)

    async def __call__(
        self, request: CompletionRequest, *, is_valid: Callable[[Completion], bool] | None = None
    ) -> Completion:
        """The completion for ``request``; stored in the cache only when ``is_valid`` accepts it,
        so an unusable answer is asked again next time instead of being replayed."""
        # The backend settles what the key holds (a server's model name) and proves the setup.
        await with_retries(self._policy, self.backend.prepare)
        key = None
        if self.cache is not None:
            key = request.cache_key(self.backend.name, self.backend.model)
            hit = self.cache.get(key)
            if hit is not None:
                log.debug("cache hit %s (%s)", key[:12], self.backend.name)
                return hit.model_copy(update={"cached": True})
        completion = await with_retries(self._policy, lambda: self._call_once(request))
        if (
            key is not None
            and self.cache is not None
            and self.store
            and (is_valid is None or is_valid(completion))
        ):
            self.cache.set(key, completion)
        return completion

    async def _call_once(self, request: CompletionRequest) -> Completion:
        if not self.backend.honours_timeout:
            return await self.backend.complete(request)
        try:
            return await asyncio.wait_for(self.backend.complete(request), self.timeout)
        except asyncio.TimeoutError as exc:
            raise TransportError(
                f"{self.backend.name} did not answer within {self.timeout:g}s", original=exc
            ) from exc
