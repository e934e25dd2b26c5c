"""``AsyncOnce``: a value computed once by a coroutine and shared by callers on any thread and
any event loop (a server probe, a taxonomy's embeddings). The first caller computes; callers that
arrive meanwhile wait for that result instead of computing it again. A caller that gives up
(cancelled, say by a deadline) cancels neither the computation nor the other callers. A failure
is handed to the waiters and not remembered, so a later call tries again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from llmcat.errors import TransportError

T = TypeVar("T")


class AsyncOnce(Generic[T]):
    """See the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = False
        self._value: T | None = None
        self._pending: concurrent.futures.Future[T] | None = None

    @property
    def value(self) -> T | None:
        """The value once known, else None."""
        return self._value if self._done else None

    def set(self, value: T) -> None:
        """Take a value computed elsewhere (another process): nobody computes it here."""
        with self._lock:
            self._value, self._done = value, True

    async def get(self, compute: Callable[[], Awaitable[T]]) -> T:
        """The value; ``compute()`` runs only if nobody has it or is computing it."""
        with self._lock:
            if self._done:
                return self._value  # type: ignore[return-value]
            pending = self._pending
            owner = pending is None
            if pending is None:
                pending = self._pending = concurrent.futures.Future()
        if not owner:
            # shielded: a waiter that gives up (a request's deadline) must not cancel the shared
            # future, which wrap_future would pass on to the owner and every other waiter
            return await asyncio.shield(asyncio.wrap_future(pending))
        # The computation runs in a task of its own, so an owner that gives up leaves it to
        # finish for the others (a server's first request past its deadline must not throw
        # away the taxonomy's vectors half built, nor start them again).
        task = asyncio.ensure_future(self._compute(compute, pending))
        task.add_done_callback(_retrieved)
        return await asyncio.shield(task)

    async def _compute(
        self, compute: Callable[[], Awaitable[T]], pending: concurrent.futures.Future[T]
    ) -> T:
        try:
            value = await compute()
        except BaseException as exc:
            with self._lock:
                self._pending = None
            # Cancelled (its event loop closing): the waiters get an error and may try again.
            failure = (
                TransportError("the shared computation was cancelled")
                if isinstance(exc, asyncio.CancelledError)
                else exc
            )
            if not pending.done():
                pending.set_exception(failure)
            raise
        with self._lock:
            self._value, self._done, self._pending = value, True, None
        if not pending.done():
            pending.set_result(value)
        return value


def _retrieved(task: asyncio.Future[Any]) -> None:
    """Marks a failure seen when its owner gave up (the waiters had it through the future)."""
    if not task.cancelled():
        task.exception()


__all__ = ["AsyncOnce"]
