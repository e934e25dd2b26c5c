"""Bounded-concurrency batches that keep input order and never die because of one item."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from typing import Any, TextIO, TypeVar

from .errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")


async def map_ordered(
    func: Callable[[T, int], Awaitable[R]],
    items: Iterable[T],
    *,
    concurrency: int,
) -> AsyncIterator[R]:
    """Yield ``func(item, index)`` for every item, in input order, with at most ``concurrency``
    calls in flight. Reads ``items`` lazily, so a million-line file is never held in memory.
    ``func`` must turn per-item failures into results; an exception here is a bug and propagates.
    """
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
    semaphore = asyncio.Semaphore(concurrency)
    window: deque[asyncio.Task[R]] = deque()

    async def run(item: T, index: int) -> R:
        async with semaphore:
            return await func(item, index)

    iterator = iter(enumerate(items))
    exhausted = False
    try:
        while True:
            # Twice the concurrency in the window, so one slow head item does not idle the rest.
            while not exhausted and len(window) < 2 * concurrency:
                try:
                    index, item = next(iterator)
                except StopIteration:
                    exhausted = True
                    break
                window.append(asyncio.create_task(run(item, index)))
            if not window:
                return
            yield await window.popleft()
    finally:
        for task in window:
            task.cancel()


class Progress:
    """A one-line progress bar on stderr: done/total, rate and errors. Silent when disabled."""

    def __init__(
        self,
        total: int | None,
        *,
        label: str,
        enabled: bool | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = total
        self.label = label
        self.done = 0
        self.errors = 0
        self.cached = 0
        self._start = time.monotonic()
        self._last_draw = 0.0

    def update(self, *, error: bool = False, cached: bool = False) -> None:
        self.done += 1
        self.errors += int(error)
        self.cached += int(cached)
        now = time.monotonic()
        if self.enabled and (now - self._last_draw > 0.1 or self.done == self.total):
            self._last_draw = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        total = f"/{self.total}" if self.total is not None else ""
        bar = ""
        if self.total:
            filled = int(24 * self.done / self.total)
            bar = "[" + "#" * filled + "." * (24 - filled) + "] "
        line = (
            f"\r{self.label} {bar}{self.done}{total}  {rate:.1f} items/s  "
            f"cached {self.cached}  errors {self.errors}"
        )
        self.stream.write(line)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()


def run_sync(coro: Coroutine[Any, Any, R]) -> R:
    """Run a coroutine to completion, also from inside a running event loop (e.g. Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: list[R] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=target, name="llmcat-sync")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]
