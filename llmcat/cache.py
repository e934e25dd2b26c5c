"""A disk cache of successful model calls (diskcache), keyed by ``CompletionRequest.cache_key``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .completions import Completion


class ResponseCache:
    """Completions by key. Only successes are stored; a corrupt entry counts as a miss."""

    def __init__(self, directory: Path) -> None:
        import diskcache

        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._cache: Any = diskcache.Cache(str(directory / "responses"), size_limit=2**32)

    def get(self, key: str) -> Completion | None:
        raw = self._cache.get(key)
        if raw is None:
            return None
        try:
            return Completion.model_validate_json(raw)
        except ValueError:
            return None

    def set(self, key: str, completion: Completion) -> None:
        self._cache.set(key, completion.model_dump_json(exclude={"cached"}))

    def close(self) -> None:
        self._cache.close()
