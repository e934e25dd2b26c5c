"""``BatchingEmbedder``: single texts that concurrent items ask for, embedded together."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llmcat.embeddings.base import Embedder

if TYPE_CHECKING:
    from llmcat.embeddings.base import Matrix, Vector


class BatchingEmbedder(Embedder):
    """Texts that concurrent items ask for one at a time are embedded together in one call to
    ``inner``: a request waits ``wait`` seconds for company, or less once ``max_batch`` texts are
    waiting. A call with several texts goes straight through. Kept per event loop.

    Batch composition can move a vector in its last bits (padding changes the order of the
    float sums), so a near-tie may resolve differently than when embedded alone; the answers are
    otherwise the same (tested on the golden suite)."""

    def __init__(
        self,
        inner: Embedder,
        *,
        max_batch: int = 64,
        wait: float = 0.002,
        observers: list[Callable[[int], None]] | None = None,
        in_flight: int | None = None,
    ) -> None:
        self.inner = inner
        #: batches embedding at once (the inner embedder's ``parallel_calls``): the next batch
        #: gathers while they run, and texts whose callers gave up meanwhile are left out
        self.in_flight = max(1, in_flight or inner.parallel_calls)
        self.name = inner.name  # the same vectors: cache files and reports stay the same
        self.temperature = inner.temperature
        self.max_batch = max_batch
        self.wait = wait
        self.calls = 0  # embedding calls made on behalf of single texts (for tests and benches)
        #: called with the size of every batch (the HTTP server's batch-size histogram)
        self.observers = observers if observers is not None else []
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _TextQueue]
        self._queues = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    async def embed_categories(self, texts: Sequence[str]) -> Matrix:
        return await self.inner.embed_categories(texts)

    async def embed(self, texts: Sequence[str]) -> Matrix:
        if len(texts) != 1 or self.max_batch <= 1:
            return await self.inner.embed(texts)
        loop = asyncio.get_running_loop()
        with self._lock:
            queue = self._queues.setdefault(loop, _TextQueue())
        future: asyncio.Future[Vector] = loop.create_future()
        queue.waiting.append((texts[0], future))
        if len(queue.waiting) >= self.max_batch:
            self._flush(queue)
        elif queue.timer is None:
            queue.timer = loop.call_later(self.wait, self._flush, queue)
        return (await future)[None, :]

    def _flush(self, queue: _TextQueue) -> None:
        if queue.timer is not None:
            queue.timer.cancel()
            queue.timer = None
        if queue.running >= self.in_flight:
            return  # flushed again when a running batch is done
        # a caller that gave up (its deadline, a cancelled request) costs no embedding
        live = [(text, future) for text, future in queue.waiting if not future.done()]
        batch, queue.waiting = live[: self.max_batch], live[self.max_batch :]
        if batch:
            queue.running += 1
            queue.tasks.add(task := asyncio.ensure_future(self._embed_batch(batch, queue)))
            task.add_done_callback(queue.tasks.discard)

    async def _embed_batch(
        self, batch: list[tuple[str, asyncio.Future[Vector]]], queue: _TextQueue
    ) -> None:
        self.calls += 1
        for observe in self.observers:
            observe(len(batch))
        try:
            vectors = await self.inner.embed([text for text, _ in batch])
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            queue.running -= 1
            if queue.waiting:
                self._flush(queue)
        for row, (_, future) in enumerate(batch):
            if not future.done():
                future.set_result(vectors[row])

    async def release_loop_resources(self) -> None:
        await self.inner.release_loop_resources()


@dataclass
class _TextQueue:
    """Single texts of one event loop waiting to be embedded together."""

    waiting: list[tuple[str, asyncio.Future[Vector]]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    running: int = 0  # batches being embedded
