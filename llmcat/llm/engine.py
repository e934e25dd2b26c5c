"""Model access shared by Classifier and Describer: settings -> backend, cache and the caller."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel

from llmcat.backends import Backend, create_backend
from llmcat.backends.batchfile import (
    BatchExportBackend,
    BatchImportBackend,
    RelayBackend,
)
from llmcat.backends.dryrun import DryRunBackend, DryRunTally
from llmcat.config.options import field_names, validated
from llmcat.config.settings import Settings
from llmcat.errors import ConfigError, ImagesRejected, InputError, LlmcatError
from llmcat.llm.cache import ResponseCache
from llmcat.llm.calls import ModelCaller
from llmcat.llm.completions import Completion, CompletionRequest, note_request
from llmcat.llm.images import image_ref
from llmcat.types import Product

log = logging.getLogger(__name__)


class Engine:
    """The backend, its response cache and the cached, retried caller, built from settings."""

    def __init__(
        self,
        *,
        backend: Backend | str | None = None,
        settings: Settings | None = None,
        overrides: Mapping[str, object] | None = None,
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
        self.model_backend = self.backend  # the model's own backend, under any wrapper below
        self.images_refused = False
        if self.settings.images == "require" and self.takes_images() is False:
            raise ConfigError(
                f"images='require' but the {self.backend.name} backend's model "
                f"({self.backend.model}) takes no images; use a vision model or images='auto'"
            )
        self.backend, self.exporter, self.dry_run = wrapped(self.backend, self.settings)
        if self.dry_run is not None:  # placeholder answers are never cached
            self.settings = self.settings.model_copy(update={"cache": False})
        assert self.settings.cache_dir is not None
        self.cache = ResponseCache(self.settings.cache_dir) if self.settings.cache else None
        self.caller = self._caller(store=self.exporter is None)

    def _caller(self, *, store: bool) -> ModelCaller:
        """Cache, timeout and transport retries around the outermost backend."""
        return ModelCaller(
            self.backend,
            cache=self.cache,
            timeout=self.settings.timeout,
            retry=self.settings.retry,
            store=store,
        )

    def relay(self, mode: str) -> None:
        """Relay model calls through another transport (``RelayBackend``: ``capture`` renders
        them, uncached; ``answer`` takes the answers, cached as a live run's)."""
        self.backend = RelayBackend(self.backend, mode)
        capture = mode == "capture"
        if capture and self.cache is not None:
            self.cache.close()
            self.cache = None
        self.caller = self._caller(store=not capture)

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

    def takes_images(self) -> bool | None:
        """Whether the model takes images: configured, else detected (None: unknown)."""
        if self.settings.vision is not None:
            return self.settings.vision
        return False if self.images_refused else self.model_backend.vision

    def sends_images(self) -> bool:
        """Whether product images go to the model now."""
        return self.settings.images != "never" and self.takes_images() is not False

    async def with_images(self, product: Product) -> Product:
        """``product`` with its images as the model is sent them (URLs, data URIs), or without
        images when none will be sent; InputError for an image that cannot be used."""
        if self.settings.images == "require" and not product.image_urls:
            raise InputError("images='require' but the product has no image_urls")
        if not product.image_urls or not self.sends_images():
            return product.model_copy(update={"image_urls": []})
        s = self.settings

        def load() -> list[str]:
            return [
                image_ref(ref, s.image_dirs, max_bytes=s.max_image_bytes, max_side=s.max_image_side)
                for ref in product.image_urls
            ]

        return product.model_copy(update={"image_urls": await asyncio.to_thread(load)})

    async def call(
        self, request: CompletionRequest, is_valid: Callable[[Completion], bool] | None = None
    ) -> Completion:
        """One cached, retried model call (see ``ModelCaller``). A request with images goes
        without them when the model takes none; a server that refuses them gets the request
        once more without them, and no images are sent to it again."""
        note_request(request)
        if request.images and self.sends_images():
            try:
                completion = await self.caller(request, is_valid=is_valid)
            except ImagesRejected as exc:
                if self.settings.images == "require":
                    raise ConfigError(f"images='require' but {exc}") from exc
                self.images_refused = True
                log.warning("images are not sent to %s again: %s", self.backend.name, exc)
            else:
                return completion.model_copy(update={"images_sent": True})
        if request.images:
            request = request.model_copy(update={"images": []})
        return await self.caller(request, is_valid=is_valid)

    async def aclose(self) -> None:
        """Close the backend's connections and the cache."""
        await self.backend.aclose()
        if self.cache is not None:
            self.cache.close()


def wrapped(
    backend: Backend, settings: Settings
) -> tuple[Backend, BatchExportBackend | None, DryRunTally | None]:
    """The model's backend in the wrappers the settings ask for, innermost first: batch export
    or import (they replace sending), then a dry run (it counts whatever would be sent). Also
    the exporter and the dry run's tally, for their reports."""
    if settings.batch_export is not None and settings.batch_import is not None:
        raise ConfigError("give --batch-export or --batch-import, not both")
    exporter = None
    if settings.batch_export is not None:
        backend = exporter = BatchExportBackend(backend, settings.batch_export)
    elif settings.batch_import is not None:
        backend = BatchImportBackend(backend, settings.batch_import)
    tally = None
    if settings.dry_run:
        backend = dry = DryRunBackend(backend)
        tally = dry.tally
    return backend, exporter, tally


def split_overrides(
    overrides: Mapping[str, Any], options: type[BaseModel]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A worker's keyword arguments split into (``Settings`` fields, ``options`` fields);
    ConfigError for a name that is neither, listing both."""
    # Any: the values are unpacked into Settings and the options models, which validate them.
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


__all__ = ["Engine", "split_overrides", "wrapped"]
