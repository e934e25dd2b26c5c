"""What Classifier and Describer share: settings, the backend, the cached and retried caller."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import ValidationError

from .backends import Backend, create_backend
from .backends.base import Completion, CompletionRequest
from .batch import Progress, run_sync
from .cache import ResponseCache
from .calls import ModelCaller
from .errors import ConfigError
from .settings import Settings
from .types import ErrorRecord

R = TypeVar("R")


def error_record(exc: BaseException) -> ErrorRecord:
    """An ErrorRecord for any exception (llmcat's own carry retryable/status)."""
    return ErrorRecord(
        type=type(exc).__name__,
        message=str(exc) or type(exc).__name__,
        retryable=bool(getattr(exc, "retryable", False)),
        status_code=getattr(exc, "status_code", None),
    )


class Engine:
    """What Classifier and Describer share: the backend, the caller and the settings."""

    def __init__(
        self,
        *,
        backend: Backend | str | None,
        settings: Settings | None,
        overrides: dict[str, Any],
    ) -> None:
        base = settings or Settings()
        given = {k: v for k, v in overrides.items() if v is not None}
        try:
            merged = Settings.model_validate({**base.model_dump(), **given})
        except ValidationError as exc:
            raise ConfigError(
                f"invalid settings: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}"
            ) from None
        self.settings = merged.resolved()
        if isinstance(backend, Backend):
            self.backend = backend
        else:
            if isinstance(backend, str):
                self.settings = self.settings.model_copy(update={"backend": backend})
            self.backend = create_backend(self.settings)
        assert self.settings.cache_dir is not None
        self.cache = ResponseCache(self.settings.cache_dir) if self.settings.cache else None
        self.caller = ModelCaller(
            self.backend, cache=self.cache, timeout=self.settings.timeout, retry=self.settings.retry
        )

    @property
    def concurrency(self) -> int:
        return self.settings.concurrency or self.backend.max_concurrency

    async def call(
        self, request: CompletionRequest, is_valid: Callable[[Completion], bool] | None = None
    ) -> Completion:
        return await self.caller(request, is_valid=is_valid)

    def progress(self, total: int | None, label: str, enabled: bool | None) -> Progress:
        return Progress(
            total, label=label, enabled=enabled if enabled is not None else self.settings.progress
        )

    def run(self, work: Awaitable[R], *also: Callable[[], Awaitable[None]]) -> R:
        """Run ``work`` to completion for the blocking API, releasing the backend's loop-bound
        connections (and ``also``'s) before that loop ends: a pooled connection must not outlive
        its loop."""

        async def then_release() -> R:
            try:
                return await work
            finally:
                await self.backend.release_loop_resources()
                for release in also:
                    await release()

        return run_sync(then_release())
