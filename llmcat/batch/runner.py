"""The item runner shared by Classifier and Describer: one product, a stream or a list; input
order kept; bounded concurrency; a per-item error record (with the caller's id) instead of an
exception; blocking twins of the async calls; closing.

A ``Job`` says what to do with one clean ``Product`` and how a failure looks as a result; the
runner does everything around it, so both workers only write their ``Job``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel

from llmcat.backends import Backend
from llmcat.batch.progress import Progress
from llmcat.config.settings import Settings
from llmcat.errors import ConfigError, InputError
from llmcat.io.inputs import Item, coerce_product, item_id
from llmcat.llm.engine import Engine
from llmcat.redact import redact
from llmcat.types import ErrorRecord, Product, Usage

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class Job(Protocol[R_co]):
    """What to do with one product, and what a failed item looks like as a result."""

    async def run(self, product: Product) -> R_co:
        """The result for one clean product; raise llmcat errors on failure."""
        ...

    def failed(self, product_id: str, error: BaseException) -> R_co:
        """The result that records ``error`` for the item ``product_id``."""
        ...


def error_record(exc: BaseException) -> ErrorRecord:
    """An ErrorRecord for any exception (llmcat's own carry retryable/status), redacted."""
    return ErrorRecord(
        type=type(exc).__name__,
        message=redact(str(exc)) or type(exc).__name__,
        retryable=bool(getattr(exc, "retryable", False)),
        status_code=getattr(exc, "status_code", None),
    )


#: Results a batch may hold back while an earlier item is still running, per concurrency slot.
REORDER_PER_SLOT = 64


async def map_ordered(
    func: Callable[[T, int], Awaitable[R]],
    items: Iterable[T],
    *,
    concurrency: int,
    reorder_limit: int | None = None,
    start: int = 0,
) -> AsyncIterator[R]:
    """Yield ``func(item, index)`` for every item, in input order, with ``concurrency`` calls in
    flight whenever there is work: a slow item holds one slot, not the batch. Results that finish
    before an earlier item wait in a reorder buffer of at most ``reorder_limit`` (default
    ``REORDER_PER_SLOT`` per slot); only when it is full do new items wait for the slow one.
    ``items`` is read lazily, so a million-line file is never held in memory; the first item has
    index ``start`` (a resumed batch). ``func`` must turn
    per-item failures into results; an exception here is a bug (or a ConfigError) and propagates.
    """
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
    limit = max(reorder_limit or REORDER_PER_SLOT * concurrency, concurrency)

    async def run(item: T, index: int) -> tuple[int, R]:
        return index, await func(item, index)

    iterator = iter(enumerate(items, start))
    running: set[asyncio.Task[tuple[int, R]]] = set()
    finished: dict[int, R] = {}
    next_index = start
    exhausted = False
    try:
        while True:
            while (
                not exhausted
                and len(running) < concurrency
                and len(running) + len(finished) < limit
            ):
                try:
                    index, item = next(iterator)
                except StopIteration:
                    exhausted = True
                    break
                running.add(asyncio.create_task(run(item, index)))
            while next_index in finished:
                yield finished.pop(next_index)
                next_index += 1
            if not running:
                # Nothing in flight: either every item is done, or a full reorder buffer kept the
                # loop above from starting more and has just drained. Only the first may end it.
                if exhausted:
                    return
                continue
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            # Look at every finished task's exception, so none is reported "never retrieved".
            failures = [exc for exc in (task.exception() for task in done) if exc is not None]
            if failures:
                raise failures[0]
            for task in done:
                index, result = task.result()
                finished[index] = result
    finally:
        for task in running:
            task.cancel()
            # A task may still end with its own error (cancellation can lose a race with it):
            # look at it then, so that it is not reported as "never retrieved".
            task.add_done_callback(_observe)


def _observe(task: asyncio.Task[object]) -> None:
    if not task.cancelled():
        task.exception()


@dataclass(frozen=True)
class Done(Generic[R_co]):
    """One item's result beside the item it answers and the item's position in the input: a
    caller that writes the input beside the answer needs no copy of what the runner took."""

    index: int
    item: Item
    result: R_co


class ItemRunner:
    """Runs a ``Job`` over items with the engine's concurrency; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        *,
        release: Sequence[Callable[[], Awaitable[None]]] = (),
        concurrency: int | None = None,
    ) -> None:
        self.engine = engine
        self._release = list(release)
        self._concurrency = concurrency

    @property
    def concurrency(self) -> int:
        """Items in flight: the setting, else this runner's default, else the backend's."""
        return self.engine.settings.concurrency or self._concurrency or self.engine.concurrency

    async def one(self, item: Item, job: Job[R], index: int = 0) -> R:
        """The job's result for one item; any failure but a ConfigError becomes ``job.failed``."""
        product_id = item_id(item, index)
        try:
            if isinstance(item, InputError):
                raise item
            product = coerce_product(item, index)
            product_id = product.id
            had_images = bool(product.image_urls)
            product = await self.engine.with_images(product)
            result = await job.run(product)
            usage = getattr(result, "usage", None)
            if (
                had_images
                and isinstance(result, BaseModel)
                and isinstance(usage, Usage)
                and "images_used" in type(result).model_fields
            ):
                # The answers say whether images went with them (``Usage.with_images``).
                result = result.model_copy(update={"images_used": usage.with_images > 0})
            return result
        except ConfigError:
            raise  # the caller's setup is wrong for every item: stop and say so
        except Exception as exc:  # a batch never dies because of one item, even on a bug
            log.info("product %s failed: %s: %s", product_id, type(exc).__name__, redact(str(exc)))
            return job.failed(product_id, exc)

    async def stream(
        self,
        items: Iterable[Item],
        job: Job[R],
        *,
        label: str,
        progress: bool | None = None,
        start: int = 0,
        total: int | None = None,
    ) -> AsyncIterator[R]:
        """``stream_done``'s results alone."""
        done = self.stream_done(
            items, job, label=label, progress=progress, start=start, total=total
        )
        async for one in done:
            yield one.result

    async def stream_done(
        self,
        items: Iterable[Item],
        job: Job[R],
        *,
        label: str,
        progress: bool | None = None,
        start: int = 0,
        total: int | None = None,
    ) -> AsyncIterator[Done[R]]:
        """One result per item, in input order, each beside its item and position, with bounded
        concurrency; ``items`` is read lazily and the first has position ``start`` (ids default
        to positions). ``progress``: a bar on stderr (default: the setting, else when it is a
        tty); ``total``: the items to come, for the bar, when ``items`` is a stream (a list's
        length is known)."""
        await self.engine.prepare()  # a wrong setup fails here, before any item
        if isinstance(items, Sequence):
            total = len(items)
        enabled = progress if progress is not None else self.engine.settings.progress
        bar = Progress(total, label=label, enabled=enabled)
        started = time.monotonic()

        async def one(item: Item, index: int) -> Done[R]:
            return Done(index, item, await self.one(item, job, index))

        try:
            results = map_ordered(one, items, concurrency=self.concurrency, start=start)
            async for done in results:
                bar.update(
                    error=getattr(done.result, "error", None) is not None,
                    cached=bool(getattr(done.result, "cached", False)),
                )
                yield done
        finally:
            bar.close()
            seconds = time.monotonic() - started
            log.info(
                "%s: %d items in %.1fs (%.2f items/s), %d cached, %d errors",
                label,
                bar.done,
                seconds,
                bar.done / seconds if seconds > 0 else 0.0,
                bar.cached,
                bar.errors,
            )

    async def collect(
        self, items: Iterable[Item], job: Job[R], *, label: str, progress: bool | None = None
    ) -> list[R]:
        """``stream`` as a list."""
        return [r async for r in self.stream(items, job, label=label, progress=progress)]

    def blocking(self, work: Awaitable[T]) -> T:
        """Run ``work`` to completion for the blocking API, releasing the backend's loop-bound
        connections (and the embedder's) before that loop ends: a pooled connection must not
        outlive its loop."""

        async def then_release() -> T:
            try:
                return await work
            finally:
                await self.engine.backend.release_loop_resources()
                for release in self._release:
                    await release()

        return run_sync(then_release())

    async def aclose(self) -> None:
        """Close the backend's connections, the cache and what ``release`` names."""
        await self.engine.aclose()
        for release in self._release:
            await release()


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


class Worker:
    """What ``Classifier`` and ``Describer`` share: the engine (backend, cache, caller) and the
    item runner behind them, kept private, and the few things surfaces need of them."""

    _engine: Engine
    _runner: ItemRunner

    @property
    def backend(self) -> Backend:
        """The backend that answers this worker's model calls."""
        return self._engine.backend

    @property
    def settings(self) -> Settings:
        """The settings in force (environment and defaults filled in)."""
        return self._engine.settings

    @property
    def concurrency(self) -> int:
        """Items in flight together in a batch."""
        return self._runner.concurrency

    async def prepare(self) -> None:
        """Prove the setup before a batch: a wrong key, URL or model is one ConfigError here
        rather than one error record per item."""
        await self._engine.prepare()

    def relay(self, mode: str) -> None:
        """Send model calls through another transport (``llmcat.integrations.ray_data``'s HTTP path:
        ``capture`` renders them, ``answer`` takes the answers)."""
        self._engine.relay(mode)

    def dry_run_report(
        self, items: int, price_in: float | None = None, price_out: float | None = None
    ) -> str | None:
        """After a ``dry_run`` or ``batch_export`` run: what it counted or wrote (None for a
        live run)."""
        exporter, tally = self._engine.exporter, self._engine.dry_run
        if exporter is not None:
            return (
                f"{exporter.exported} requests -> {exporter.path}; run them as a batch job, then "
                "the same command with --batch-import RESULTS (answered requests are cached: an "
                "export after an import holds only the next round)"
            )
        if tally is not None:
            return "\n".join(tally.lines(items, price_in, price_out))
        return None

    def run_all(self, items: Iterable[Item], job: Job[R], *, label: str) -> list[R]:
        """Blocking: ``job`` over every item, one result each, in order, no progress bar."""
        return self._runner.blocking(self._runner.collect(items, job, label=label, progress=False))

    def close(self) -> None:
        """Blocking ``aclose``."""
        self._runner.blocking(self.aclose())

    async def aclose(self) -> None:
        """Close the backend's connections, the embedder's and the cache."""
        await self._runner.aclose()
