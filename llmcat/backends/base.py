"""The backend contract: one async method that sends messages plus an output constraint.

A backend turns a ``CompletionRequest`` into a ``Completion`` (both in ``llmcat.llm.completions``).
Everything optional is a method or attribute with a default here, so a new backend implements
``model``, ``complete`` and, to be built by name, ``from_settings``.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

from llmcat.errors import ConfigError
from llmcat.llm.completions import Completion, CompletionRequest

if TYPE_CHECKING:
    from llmcat.config.settings import Settings


class Backend(abc.ABC):
    """An LLM that can answer a ``CompletionRequest``."""

    #: registry name, recorded with results and in cache keys
    name: str = "base"
    #: how many requests a batch keeps in flight by default
    max_concurrency: int = 8
    #: whether llmcat's per-call timeout applies; an in-process engine that answers a whole batch
    #: in one call (and loads its model in the first) cannot be timed per request
    honours_timeout: bool = True
    #: whether the model takes images: True, False, or None when unknown (then images are sent
    #: and a server that rejects them gets the request again without)
    vision: bool | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Backend:
        """A backend configured from resolved settings (how ``backend="name"`` builds one)."""
        raise ConfigError(f"the {cls.name} backend cannot be built from settings; pass an instance")

    @property
    @abc.abstractmethod
    def model(self) -> str:
        """The model id as the backend knows it (final once ``prepare`` has run)."""

    async def prepare(self) -> None:  # noqa: B027 - optional hook
        """Settle everything a cache key depends on (a server's default model name) before the
        first key is computed. Called before every request; must be cheap once done."""

    @abc.abstractmethod
    async def complete(self, request: CompletionRequest) -> Completion:
        """Answer one request; raise ``BackendError`` subclasses on failure."""

    async def count_prompt_tokens(self, request: CompletionRequest) -> int | None:
        """The prompt tokens of ``request`` by the model's own tokenizer, without answering it;
        None when the backend cannot tell (a dry run then estimates)."""
        return None

    def retry_after(self, error: BaseException) -> float | None:
        """Seconds the server asked us to wait before retrying ``error``, if it said."""
        return getattr(error, "retry_after", None)

    async def release_loop_resources(self) -> None:  # noqa: B027 - optional hook
        """Close what is bound to the running event loop (pooled connections). The blocking API
        runs each call in a fresh loop and calls this before that loop ends."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, empty on purpose
        """Release connections or engines."""
