"""``AsyncOnce``: a value computed once by a coroutine and shared by callers on any thread and
any event loop (a server probe, a taxonomy's embeddings). The first caller computes; callers that
arrive meanwhile wait for that result instead of computing it again. A failure is handed to the
waiters and not remembered, so a later call tries again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

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
            return await asyncio.wrap_future(pending)
        try:
            value = await compute()
        except BaseException as exc:
            with self._lock:
                self._pending = None
            # A cancelled owner must not cancel the waiters: they may try again.
            failure = (
                TransportError("the shared computation was cancelled")
                if isinstance(exc, asyncio.CancelledError)
                else exc
            )
            pending.set_exception(failure)
            raise
        with self._lock:
            self._value, self._done, self._pending = value, True, None
        pending.set_result(value)
        return value


__all__ = ["AsyncOnce"]
