"""Model access shared by Classifier and Describer: settings -> backend, cache and the caller."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from .backends import Backend, create_backend
from .backends.batchfile import (
    RELAY_SLOT,
    BatchExportBackend,
    BatchImportBackend,
    RelayBackend,
    custom_id,
)
from .backends.dryrun import DryRunBackend, DryRunTally
from .cache import ResponseCache
from .calls import ModelCaller
from .completions import Completion, CompletionRequest
from .errors import ConfigError, LlmcatError
from .options import field_names, validated
from .settings import Settings


class Engine:
    """The backend, its response cache and the cached, retried caller, built from settings."""

    def __init__(
        self,
        *,
        backend: Backend | str | None = None,
        settings: Settings | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        base = settings or Settings()
        given = {k: v for k, v in (overrides or {}).items() if v is not None}
        if isinstance(backend, str):
            given["backend"] = backend
        merged = validated(
            Settings, {**base.model_dump(exclude_unset=True), **given}, what="settings"
        )
        self.settings = merged.resolved()
        self.backend = backend if isinstance(backend, Backend) else create_backend(self.settings)
        self.dry_run: DryRunTally | None = None
        self.exporter: BatchExportBackend | None = None
        if self.settings.batch_export is not None and self.settings.batch_import is not None:
            raise ConfigError("give --batch-export or --batch-import, not both")
        if self.settings.batch_export is not None:
            self.backend = self.exporter = BatchExportBackend(
                self.backend, self.settings.batch_export
            )
        elif self.settings.batch_import is not None:
            self.backend = BatchImportBackend(self.backend, self.settings.batch_import)
        if self.settings.dry_run:
            # Placeholder answers are never cached, and every request is counted.
            self.backend = DryRunBackend(self.backend)
            self.dry_run = self.backend.tally
            self.settings = self.settings.model_copy(update={"cache": False})
        assert self.settings.cache_dir is not None
        self.cache = ResponseCache(self.settings.cache_dir) if self.settings.cache else None
        self.caller = ModelCaller(
            self.backend,
            cache=self.cache,
            timeout=self.settings.timeout,
            retry=self.settings.retry,
            store=self.exporter is None,
        )

    def relay(self, mode: str) -> None:
        """Relay model calls through another transport (``RelayBackend``: ``capture`` renders
        them, uncached; ``answer`` takes the answers, cached as a live run's)."""
        self.backend = RelayBackend(self.backend, mode)
        capture = mode == "capture"
        if capture and self.cache is not None:
            self.cache.close()
            self.cache = None
        self.caller = ModelCaller(
            self.backend,
            cache=self.cache,
            timeout=self.settings.timeout,
            retry=self.settings.retry,
            store=not capture,
        )

    @property
    def concurrency(self) -> int:
        """Requests a batch keeps in flight: the setting, else the backend's default."""
        return self.settings.concurrency or self.backend.max_concurrency

    async def prepare(self) -> None:
        """Let the backend settle its model and prove the setup (one probe of a server), so a
        wrong key, URL or model is one ConfigError before a batch rather than one per item.
        Anything else (a server still starting) is left to the items, which retry it."""
        try:
            await self.backend.prepare()
        except ConfigError:
            raise
        except LlmcatError:
            pass

    async def call(
        self, request: CompletionRequest, is_valid: Callable[[Completion], bool] | None = None
    ) -> Completion:
        """One cached, retried model call (see ``ModelCaller``)."""
        return await self.caller(request, is_valid=is_valid)

    async def aclose(self) -> None:
        """Close the backend's connections and the cache."""
        await self.backend.aclose()
        if self.cache is not None:
            self.cache.close()


def split_overrides(
    overrides: Mapping[str, Any], options: type[BaseModel]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A worker's keyword arguments split into (``Settings`` fields, ``options`` fields);
    ConfigError for a name that is neither, listing both."""
    settings_names, option_names = set(Settings.model_fields), set(field_names(options))
    unknown = sorted(set(overrides) - settings_names - option_names)
    if unknown:
        raise ConfigError(
            f"unknown option(s): {', '.join(unknown)}; options: "
            f"{', '.join(sorted(options.model_fields))}; settings: "
            f"{', '.join(sorted(settings_names))}"
        )
    connection = {k: v for k, v in overrides.items() if k in settings_names}
    chosen = {k: v for k, v in overrides.items() if k in option_names}
    return connection, chosen


__all__ = ["RELAY_SLOT", "Engine", "custom_id", "split_overrides"]
