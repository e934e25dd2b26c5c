"""What llmcat costs on top of the engine, and what Ray adds (``python -m evals bench``):

    python -m evals bench --raw --base-url URL [--n 200] [--rounds 2] [--strategy flat]
    python -m evals bench --ray-workers 2 [--n 1050] [--strategy embedding]

``--raw``: the requests llmcat sends for the products are recorded (exported, nothing sent), then
each round runs llmcat (``classify_many``, no cache) and replays the recorded bodies straight to
the same server with the same concurrency, the order alternating between rounds; the server's
prefix cache is cleared before each side when it allows it (``POST /reset_prefix_cache``: vLLM
started with ``VLLM_SERVER_DEV_MODE=1``), and the output says when it did not. Printed: llmcat
items/s, raw items/s (one request per item for ``flat`` and ``shortlist``) and their ratio.

``--raw --backend vllm``: the same in process: llmcat's in-process vLLM engine against the
recorded requests handed to that engine as one call (``VLLMBackend.raw_batch``).

``--ray-workers N``: one process, then ``llmcat.integrations.ray_data`` on a local cluster with 1 and N actors,
each side with a fresh cache; wall-clock items/s including the actors' start (their model load),
and the Ray path's overhead at 1 worker against one process.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import JsonValue

from llmcat import Backend, Classifier, ConfigError, Product, Settings, Taxonomy
from llmcat.config.options import ClassifyOptions
from llmcat.embeddings import product_text
from llmcat.io.inputs import coerce_product
from llmcat.io.tables import products_table
from llmcat.llm.completions import Completion, CompletionRequest


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def reset_prefix_cache(base_url: str) -> bool:
    """Clear a vLLM server's prefix cache; False when the server does not allow it."""
    root = base_url.rstrip("/").removesuffix("/v1")
    ask = urllib.request.Request(f"{root}/reset_prefix_cache", data=b"", method="POST")
    try:
        with urllib.request.urlopen(ask, timeout=30) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


async def replay(
    base_url: str, bodies: Sequence[dict[str, JsonValue]], concurrency: int, api_key: str | None
) -> float:
    """POST every body to the server's chat endpoint, ``concurrency`` at a time; seconds taken.
    Every answer must be a completion (a raw side that fails is no baseline)."""
    try:
        import httpx
    except ImportError:
        raise ConfigError(
            "bench --raw replays requests with httpx: pip install 'llmcat[bench]'"
        ) from None

    url = base_url.rstrip("/") + "/chat/completions"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=600, headers=headers) as client:

        async def one(body: dict[str, JsonValue]) -> None:
            async with gate:
                response = await client.post(url, json=body)
            if response.status_code != 200 or not response.json().get("choices"):
                raise RuntimeError(f"the raw request failed: {response.text[:300]}")

        start = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        return time.perf_counter() - start


def run_llmcat(live: Classifier, products: Sequence[Product]) -> None:
    """The llmcat side of ``--raw``: ``classify_many``, saying how many items failed."""
    failed = sum(r.error is not None for r in live.classify_many(products, progress=False))
    if failed:
        print(f"  llmcat: {failed} error records")


def alternate(
    items: int,
    rounds: int,
    llmcat: Callable[[], object],
    raw: Callable[[], object],
    *,
    before: Callable[[], str] | None = None,
) -> None:
    """Time each side once per round, the order alternating (so neither always goes first);
    ``before`` runs ahead of each side and says what it did. Prints items/s and the ratios."""
    ratios = []
    for n in range(rounds):
        sides = {"llmcat": llmcat, "raw": raw}
        order = ("llmcat", "raw") if n % 2 == 0 else ("raw", "llmcat")
        seconds: dict[str, float] = {}
        for side in order:
            note = f" ({before()})" if before is not None else ""
            start = time.perf_counter()
            sides[side]()
            seconds[side] = time.perf_counter() - start
            print(f"  round {n + 1} {side:>6}: {seconds[side]:.1f}s{note}")
        ours, theirs = _rate(items, seconds["llmcat"]), _rate(items, seconds["raw"])
        ratios.append(ours / theirs)
        print(
            f"round {n + 1}: llmcat {ours:.2f} items/s, raw {theirs:.2f} items/s, "
            f"ratio {ours / theirs:.2f}"
        )
    print(f"ratio llmcat/raw per round: {', '.join(f'{r:.2f}' for r in ratios)}")


class Recorder(Backend):
    """Another backend, keeping every request it is asked (the in-process side of ``--raw``)."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_concurrency = inner.max_concurrency
        self.requests: list[CompletionRequest] = []

    @property
    def model(self) -> str:
        return self.inner.model

    @classmethod
    def from_settings(cls, settings: Settings) -> Recorder:
        raise NotImplementedError("a Recorder wraps a backend")

    async def complete(self, request: CompletionRequest) -> Completion:
        # Once each: a retried call (the first batch waits for the engine to load, and may time
        # out) is one request of the run, not two.
        if all(request != seen for seen in self.requests):
            self.requests.append(request)
        return await self.inner.complete(request)


def run_raw_in_process(
    taxonomy: Taxonomy,
    products: Sequence[Product],
    options: ClassifyOptions,
    settings: Settings,
    rounds: int,
) -> int:
    """``--raw --backend vllm``: llmcat's in-process engine against the same requests as one
    engine call (``raw_batch``), in the same process and engine."""
    live = Classifier(taxonomy, options, settings=settings.model_copy(update={"cache": False}))
    raw_batch = getattr(live.backend, "raw_batch", None)
    if raw_batch is None:
        raise ConfigError(f"--raw in process needs --backend vllm, not {live.backend.name}")
    recorder = Recorder(live.backend)
    recorded = Classifier(
        taxonomy, options, backend=recorder, settings=settings.model_copy(update={"cache": False})
    )
    recorded.classify_many(products, progress=False)  # warms the engine up, records the requests
    requests = list(recorder.requests)
    print(
        f"raw bench in process: {len(products)} products, {len(requests)} requests, strategy "
        f"{live.strategy}, engine {live.backend.model}"
    )

    def raw() -> None:
        failed = [a for a in raw_batch(requests) if isinstance(a, BaseException)]
        if failed:
            raise RuntimeError(f"the raw engine call failed: {failed[0]}")

    alternate(len(products), rounds, lambda: run_llmcat(live, products), raw)
    return 0


def run_raw_embedding(
    taxonomy: Taxonomy,
    products: Sequence[Product],
    options: ClassifyOptions,
    settings: Settings,
    rounds: int,
) -> int:
    """``--raw --strategy embedding``: llmcat's ``embedding`` strategy against one batch call of
    the same embedder over the same product texts (the taxonomy's vectors built beforehand)."""
    live = Classifier(taxonomy, options, settings=settings)
    live.classify("warm-up: load the embedder and embed the taxonomy")
    embedder = live.embedder()
    texts = [product_text(coerce_product(p, i)) for i, p in enumerate(products)]
    print(
        f"raw embedding bench: {len(products)} products, embedder {embedder.name}, "
        f"{len(taxonomy.leaves())} leaves; raw: one embed() call of all {len(texts)} texts"
    )
    alternate(
        len(products),
        rounds,
        lambda: run_llmcat(live, products),
        lambda: asyncio.run(embedder.embed(texts)),
    )
    live.close()
    return 0


def run_raw(
    taxonomy: Taxonomy,
    products: Sequence[Product],
    options: ClassifyOptions,
    settings: Settings,
    rounds: int,
) -> int:
    """``--raw``; see the module docstring."""
    base_url = settings.base_url
    if options.strategy == "embedding":
        return run_raw_embedding(taxonomy, products, options, settings, rounds)
    if settings.backend == "vllm":
        return run_raw_in_process(taxonomy, products, options, settings, rounds)
    if not base_url:
        raise ConfigError("--raw replays to a server (--base-url) or runs --backend vllm")
    with tempfile.TemporaryDirectory() as folder:
        requests = Path(folder) / "requests.jsonl"
        exporter = Classifier(
            taxonomy,
            options,
            settings=settings.model_copy(update={"batch_export": requests, "cache": False}),
        )
        exporter.classify_many(products, progress=False)
        bodies = [json.loads(line)["body"] for line in requests.read_text().splitlines()]
    live = Classifier(taxonomy, options, settings=settings.model_copy(update={"cache": False}))
    concurrency = live.concurrency
    live.classify("warm-up: load the embedder and probe the server")
    print(
        f"raw bench: {len(products)} products, {len(bodies)} recorded requests, strategy "
        f"{live.strategy}, concurrency {concurrency} on both sides, {base_url}"
    )

    def cleared() -> str:
        done = reset_prefix_cache(base_url)
        return "prefix cache cleared" if done else "prefix cache NOT cleared"

    alternate(
        len(products),
        rounds,
        lambda: run_llmcat(live, products),
        lambda: asyncio.run(replay(base_url, bodies, concurrency, settings.api_key)),
        before=cleared,
    )
    live.close()
    return 0


def run_ray_workers(
    taxonomy: Taxonomy,
    products: Sequence[Product],
    options: ClassifyOptions,
    settings: Settings,
    workers: int,
) -> int:
    """``--ray-workers N``; see the module docstring."""
    from llmcat.integrations.ray_data import classify_dataset, need_ray

    ray = need_ray()
    rows = [p.model_dump(exclude_defaults=True) for p in products]
    table = products_table(products)  # attributes as a map: each product's own order
    with tempfile.TemporaryDirectory() as folder:
        fresh = iter(range(1_000))

        def side_settings() -> Settings:
            return settings.model_copy(update={"cache_dir": Path(folder) / str(next(fresh))})

        start = time.perf_counter()
        single = Classifier(taxonomy, options, settings=side_settings())
        expected = single.classify_many(rows, progress=False)
        one_process = time.perf_counter() - start
        print(
            f"one process: {len(rows)} items in {one_process:.1f}s = "
            f"{_rate(len(rows), one_process):.2f} items/s (strategy {single.strategy}, "
            "model load included)"
        )
        ray.init(num_cpus=max(workers, 2), include_dashboard=False, log_to_driver=False)
        try:
            ray.data.DataContext.get_current().execution_options.preserve_order = True
            rates = {}
            for n in sorted({1, workers}):
                block = max(1, -(-len(rows) // (4 * n)))
                data = ray.data.from_arrow(table)
                data = data.repartition(target_num_rows_per_block=block).materialize()
                start = time.perf_counter()
                out = classify_dataset(
                    data, taxonomy, options, settings=side_settings(), workers=n, batch_size=block
                ).take_all()
                took = time.perf_counter() - start
                rates[n] = _rate(len(rows), took)
                same = sum(
                    r["category_id"] == e.category_id for r, e in zip(out, expected, strict=True)
                )
                print(
                    f"ray, {n} worker(s): {len(out)} items in {took:.1f}s = {rates[n]:.2f} "
                    f"items/s (actors' start included); {same}/{len(rows)} equal to one process"
                )
        finally:
            ray.shutdown()
    overhead = _rate(len(rows), one_process) / rates[1]
    print(f"ray overhead at 1 worker: one process is {overhead:.2f}x the Ray path's items/s")
    return 0


__all__ = [
    "Recorder",
    "replay",
    "reset_prefix_cache",
    "run_raw",
    "run_raw_in_process",
    "run_ray_workers",
]
