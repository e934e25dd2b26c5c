"""``Progress``: a bar on stderr for long work (a batch, embedding a taxonomy, a download)."""

from __future__ import annotations

import os
import sys
from typing import Protocol, TextIO


class _Bar(Protocol):
    """What Progress uses of a tqdm bar."""

    def set_postfix(self, *, cached: int, errors: int, refresh: bool) -> None: ...

    def update(self, n: int) -> object: ...

    def close(self) -> None: ...


class Progress:
    """Progress on stderr through tqdm (total, share done, rate and time left when the input
    size is known), with the cache hits and errors so far. Silent when disabled.

    tqdm rather than rich: a small pure-Python package that draws in terminals and notebooks
    alike, and is imported only when a bar is drawn."""

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
        self._bar: _Bar | None = None
        if self.enabled:
            from tqdm import tqdm

            # A terminal that reports no size (a bare pty, `script`) makes tqdm hide the bar:
            # draw it 100 columns wide then.
            sized = _terminal_sized(self.stream)
            self._bar = tqdm(
                total=total,
                desc=label,
                unit="item",
                file=self.stream,
                dynamic_ncols=sized,
                ncols=None if sized else 100,
                nrows=None if sized else 24,
                mininterval=0.1,
                leave=True,
            )

    def update(self, *, error: bool = False, cached: bool = False) -> None:
        self.done += 1
        self.errors += int(error)
        self.cached += int(cached)
        if self._bar is not None:
            self._bar.set_postfix(cached=self.cached, errors=self.errors, refresh=False)
            self._bar.update(1)

    def advance(self, n: int) -> None:
        """``n`` more done at once (texts embedded in a chunk)."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _terminal_sized(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal that reports a width and a height."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return size.columns > 0 and size.lines > 0
