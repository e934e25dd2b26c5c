"""A disk cache of successful model calls (diskcache), keyed by ``CompletionRequest.cache_key``.

The cache is an optimisation, never a cause of loss: a folder that cannot hold a cache at all (a
file, read-only) is a ``ConfigError`` before any item runs; any error later (a full disk, a
truncated or corrupt database) logs one warning and the run goes on without the cache, keeping
every answer.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from llmcat.errors import ConfigError
from llmcat.llm.completions import Completion

if TYPE_CHECKING:
    import diskcache

log = logging.getLogger(__name__)

_FIX = "pass --cache-dir DIR (or set LLMCAT_CACHE_DIR) to another folder, or --no-cache"


class ResponseCache:
    """Completions by key. Only successes are stored; a corrupt entry counts as a miss."""

    def __init__(self, directory: Path) -> None:
        import diskcache

        self.directory = directory
        self._cache: diskcache.Cache | None = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"the cache folder {directory} cannot be created ({exc.strerror or exc}); {_FIX}"
            ) from None
        if not os.access(directory, os.W_OK | os.X_OK):
            raise ConfigError(f"the cache folder {directory} is not writable; {_FIX}")
        try:
            self._cache = diskcache.Cache(str(directory / "responses"), size_limit=2**32)
        except Exception as exc:  # a corrupt or unreadable database: run without it
            self._disable("open", exc)

    def get(self, key: str) -> Completion | None:
        if self._cache is None:
            return None
        try:
            raw = self._cache.get(key)
        except Exception as exc:
            self._disable("read", exc)
            return None
        if raw is None:
            return None
        try:
            return Completion.model_validate_json(raw)
        except ValueError:
            return None

    def set(self, key: str, completion: Completion) -> None:
        if self._cache is None:
            return
        try:
            self._cache.set(key, completion.model_dump_json(exclude={"cached"}))
        except Exception as exc:
            self._disable("write", exc)

    def close(self) -> None:
        if self._cache is not None:
            try:
                self._cache.close()
            except Exception as exc:  # closing a broken database must not lose the results
                log.warning("the response cache could not be closed: %s", exc)
            self._cache = None

    def _disable(self, action: str, exc: BaseException) -> None:
        """One warning, then no cache for the rest of the run; answers are kept either way."""
        log.warning(
            "the response cache in %s failed to %s (%s: %s); going on without it (%s)",
            self.directory,
            action,
            type(exc).__name__,
            exc,
            _FIX,
        )
        cache, self._cache = self._cache, None
        if cache is not None:
            with contextlib.suppress(Exception):  # already broken; the warning above says so
                cache.close()
