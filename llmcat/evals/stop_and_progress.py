"""Stopping a suite run and showing how far it got.

A run says how far it got: a tqdm bar on a terminal, else a plain line on stderr when a phase
starts, every ``PROGRESS_EVERY`` seconds and when it ends (a log or CI shows progress too).
SIGINT and SIGTERM (``Stop``) end a run within seconds: items in flight are dropped, the rest of
the suite is skipped, and what finished comes back as a partial run (``RunSummary.interrupted``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence
from typing import TextIO, TypeVar, cast

from llmcat.batch.progress import Progress
from llmcat.batch.runner import map_ordered
from llmcat.llm.completions import CompletionRequest, requests_seen

T = TypeVar("T")
Item = TypeVar("Item")
Result = TypeVar("Result")


class Stopped(Exception):
    """Raised by ``Stop.race`` when a stop was requested before the awaited work finished."""


class Stop:
    """A stop requested by SIGINT or SIGTERM (``handling`` installs the handlers). The run drops
    the items in flight, skips what is left and returns what finished; a second signal ends the
    process at once, without the partial run."""

    def __init__(self, stream: TextIO | None = None) -> None:
        #: the signal that asked for the stop, None while the run goes on
        self.signum: int | None = None
        self.stream = stream or sys.stderr
        self._event: asyncio.Event | None = None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def request(self, signum: int) -> None:
        if self.signum is not None:
            print(f"{signal.Signals(signum).name} again: quitting now", file=self.stream)
            _leave(128 + signum)
        self.signum = signum
        print(
            f"{self.name}: stopping; the finished items are kept as a partial run "
            "(again to quit at once)",
            file=self.stream,
            flush=True,
        )
        if self._event is not None:
            self._event.set()

    async def race(self, work: Awaitable[T]) -> T:
        """``await work``, or ``Stopped`` as soon as a stop is requested (``work`` cancelled)."""
        if self.signum is not None:
            close = getattr(work, "close", None)
            if close is not None:
                close()  # never started: not "never awaited" either
            raise Stopped
        task = asyncio.ensure_future(work)
        if self._event is None:
            self._event = asyncio.Event()
        waiter = asyncio.ensure_future(self._event.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if task.done():
            return task.result()
        task.cancel()
        # The work gives up at its next await; a model call in a thread runs on unawaited.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, STOP_GRACE)
        raise Stopped

    @contextlib.contextmanager
    def handling(self, loop: asyncio.AbstractEventLoop | None = None) -> Iterator[None]:
        """SIGINT and SIGTERM request the stop while the block runs (main thread only; where
        signals cannot be handled, they keep their default). With ``loop``, through the loop,
        which wakes for them at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        kinds = (signal.SIGINT, signal.SIGTERM)
        previous = {s: signal.getsignal(s) for s in kinds}
        installed = []
        try:
            for kind in kinds:
                try:
                    if loop is not None:
                        loop.add_signal_handler(kind, self.request, kind)
                    else:
                        signal.signal(kind, lambda signum, frame: self.request(signum))
                except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover
                    continue  # Windows' loop: the default stays
                installed.append(kind)
            yield
        finally:
            for kind in installed:
                if loop is not None:
                    loop.remove_signal_handler(kind)
                signal.signal(kind, previous[kind])


#: seconds a stopped item's work gets to give up before the run goes on without it
STOP_GRACE = 1.0
#: seconds between two progress lines when stderr is not a terminal
PROGRESS_EVERY = 15.0


def _leave(code: int) -> None:
    """End the process now: a model call in a thread (llama.cpp) cannot be cancelled, and the
    interpreter would wait for it (and for every call queued behind it) before exiting."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def exit_soon(code: int, grace: float = 2.0) -> None:
    """Exit with ``code`` within ``grace`` seconds even if threads still run model calls."""
    timer = threading.Timer(grace, _leave, (code,))
    timer.daemon = True
    timer.start()


class ProgressLines:
    """A phase's progress as plain lines on ``stream`` when it is not a terminal (a terminal
    gets the tqdm bar): when it starts, every ``every`` seconds (done/total, rate, time left),
    and when it ends."""

    def __init__(
        self,
        total: int,
        *,
        label: str,
        stream: TextIO | None = None,
        every: float | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.enabled = not _is_terminal(self.stream)
        self.total, self.label = total, label
        self.every = PROGRESS_EVERY if every is None else every
        self.done = self.errors = 0
        self.started = self._said = time.monotonic()
        self._say(f"{label}: {total} items")

    def update(self, *, error: bool = False) -> None:
        self.done += 1
        self.errors += int(error)
        now = time.monotonic()
        if now - self._said >= self.every and self.done < self.total:
            rate = self.done / max(now - self.started, 1e-9)
            left = (self.total - self.done) / rate if rate > 0 else 0.0
            share = self.done / self.total if self.total else 1.0
            self._say(
                f"{self.label}: {self.done}/{self.total} ({share:.0%}), {rate:.2f} items/s, "
                f"{_duration(left)} left, {self.errors} errors"
            )

    def close(self) -> None:
        took = time.monotonic() - self.started
        rate = self.done / took if took > 0 else 0.0
        self._say(
            f"{self.label}: {self.done}/{self.total} in {_duration(took)} ({rate:.2f} items/s), "
            f"{self.errors} errors"
        )

    def _say(self, line: str) -> None:
        self._said = time.monotonic()
        if self.enabled:
            print(line, file=self.stream, flush=True)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream
        return False


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


async def timed(
    worker: Callable[[Item], Awaitable[Result]],
    items: Sequence[Item],
    concurrency: int,
    *,
    label: str,
    stop: Stop | None = None,
) -> tuple[list[tuple[Result, float, list[CompletionRequest]]], float]:
    """Each item's result, latency and requests, and the wall time; progress on stderr. After a
    stop, the results of the items finished by then (a prefix of ``items``)."""

    async def one(item: Item, _: int) -> tuple[Result, float, list[CompletionRequest]]:
        start = time.perf_counter()
        with requests_seen() as seen:  # the item's prompts, for the report
            result = await worker(item)
        return result, time.perf_counter() - start, seen

    stop = stop or Stop()
    bar = Progress(len(items), label=label)
    lines = ProgressLines(len(items), label=label)
    start = time.perf_counter()
    out = []
    # map_ordered is an async generator: closing it cancels the items in flight.
    results = cast(
        AsyncGenerator[tuple[Result, float, list[CompletionRequest]], None],
        map_ordered(one, items, concurrency=concurrency),
    )
    try:
        while True:
            try:
                result = await stop.race(anext(results))
            except (StopAsyncIteration, Stopped):
                break
            out.append(result)
            failed = getattr(result[0], "error", None) is not None
            bar.update(error=failed)
            lines.update(error=failed)
    finally:
        with contextlib.suppress(RuntimeError):  # a generator a stop left mid-step is done
            await results.aclose()
        bar.close()
        lines.close()
    return out, time.perf_counter() - start
