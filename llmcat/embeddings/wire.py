"""``OpenAIEmbedder``: ``/v1/embeddings`` of any OpenAI-compatible server (vLLM, OpenAI), through
the SDK client and error translation of ``llmcat.backends.openai``."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from llmcat.backends.clients import LoopClients
from llmcat.backends.openai import translate_errors
from llmcat.config.options import RetryOptions
from llmcat.embeddings.base import Embedder, normalise
from llmcat.errors import BackendError

if TYPE_CHECKING:
    import openai
    from openai.types import CreateEmbeddingResponse

    from llmcat.embeddings.base import Matrix


class OpenAIEmbedder(Embedder):
    """``POST /v1/embeddings`` on an OpenAI-compatible server."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        batch_size: int = 256,
        retry: RetryOptions | None = None,
    ) -> None:
        self.base_url = base_url
        self.model = model
        self.batch_size = batch_size
        self.retry = retry or RetryOptions()
        self.name = f"openai:{model}"
        self._clients = LoopClients(base_url=base_url, api_key=api_key)

    @property
    def client(self) -> openai.AsyncOpenAI:
        """The SDK client of the running event loop, created there on first use."""
        return self._clients.get()

    async def release_loop_resources(self) -> None:
        await self._clients.release()

    async def embed(self, texts: Sequence[str]) -> Matrix:
        import numpy as np

        from llmcat.llm.calls import retry_policy, with_retries

        policy = retry_policy(self.retry)

        async def create(chunk: list[str]) -> CreateEmbeddingResponse:
            with translate_errors(self.base_url):
                return await self.client.embeddings.create(model=self.model, input=chunk)

        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            response = await with_retries(policy, functools.partial(create, chunk))
            if len(response.data) != len(chunk):
                raise BackendError("the server returned a different number of embeddings")
            rows.extend(item.embedding for item in sorted(response.data, key=lambda d: d.index))
        return normalise(np.asarray(rows, dtype=np.float32))
