"""Reliability against a real HTTP server on loopback: a soak under injected faults whose every
outcome is predicted, one object shared by threads and by blocking and async calls, no
head-of-line stall, one capability probe per base URL, and configuration errors that fail fast."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from llmcat import Classifier, ConfigError, RetryOptions, Settings
from llmcat.errors import EndpointError

from .fake_server import FakeServer, Reply, chat_reply
from .fault_server import FAULTS, LABELS, fault_for, fault_server_process, label_for, simulate

pytestmark = pytest.mark.allow_model_requests
BACKEND_ERRORS = {
    name: "BackendError" for name in ("TransportError", "RateLimitError", "ServerError")
}


def products(n: int, start: int = 0) -> list[dict[str, str]]:
    return [{"id": f"SKU-{i}", "title": f"product SKU-{i}"} for i in range(start, start + n)]


def fast_settings(url: str, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "base_url": url,
        "cache": False,
        "retry": RetryOptions(attempts=5, backoff=0.0),
        "progress": False,
        "timeout": 0.5,
    }
    values.update(kw)
    return Settings(**values)


def test_the_fault_schedule_is_deterministic_and_covers_every_kind() -> None:
    kinds = {fault_for(7, f"SKU-{i}", a, 0.2) for i in range(500) for a in range(3)}
    assert set(FAULTS) <= kinds and None in kinds
    assert fault_for(7, "SKU-1", 0, 0.2) == fault_for(7, "SKU-1", 0, 0.2)
    # the simulation follows the policy: a label, or one of the two error types
    outcomes = {simulate(7, f"SKU-{i}", 0.6, 5) for i in range(300)}
    assert outcomes >= {"OutputError", *LABELS} and outcomes <= {
        "OutputError",
        "BackendError",
        *LABELS,
    }


def test_soak_10000_items_at_20_percent_faults_matches_the_simulation() -> None:
    n, seed, rate, attempts = 10_000, 11, 0.2, 5
    with fault_server_process(seed=seed, rate=rate, hang=2.5) as url:
        settings = fast_settings(url, concurrency=64, timeout=1.0)
        clf = Classifier(LABELS, settings=settings)
        started = time.monotonic()
        results = clf.classify_many(products(n))
        elapsed = time.monotonic() - started
        asyncio.run(clf.aclose())
    injected = {fault_for(seed, f"SKU-{i}", a, rate) for i in range(n) for a in range(2 * attempts)}
    assert set(FAULTS) <= injected  # every kind of fault is in the schedule
    ids = [r.product_id for r in results]
    assert ids == [f"SKU-{i}" for i in range(n)]  # none lost, none duplicated, order kept
    mismatches = []
    for r in results:
        expected = simulate(seed, r.product_id, rate, attempts)
        got = r.path[0] if r.error is None else BACKEND_ERRORS.get(r.error.type, r.error.type)
        if r.error is None:
            assert r.path[0] in LABELS and r.category_id is not None  # never an invalid label
        if got != expected:
            mismatches.append((r.product_id, expected, got, r.error))
    assert mismatches == []
    outcomes = Counter(simulate(seed, f"SKU-{i}", rate, attempts) for i in range(n))
    assert outcomes["OutputError"] > 0
    print(f"soak: {n} items in {elapsed:.1f} s")  # ~50 s here; a figure, not a test


def test_one_classifier_shared_by_12_threads_has_no_errors() -> None:
    with FakeServer("llamacpp", keep_alive=True) as server:
        server.responder = lambda body: chat_reply(label_for(_key(body)))
        clf = Classifier(LABELS, settings=fast_settings(server.base_url, timeout=10))
        batches = [products(175, start=t * 175) for t in range(12)]
        results: dict[int, list[Any]] = {}
        failures: list[BaseException] = []

        def work(t: int) -> None:
            try:
                results[t] = clf.classify_many(batches[t])
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        asyncio.run(clf.aclose())
    assert failures == []
    flat = [r for t in range(12) for r in results[t]]
    assert len(flat) == 2100 and [r.error for r in flat if r.error] == []
    assert all(r.path == [label_for(r.product_id)] for r in flat)


def test_blocking_and_async_calls_mix_on_one_object_inside_a_running_loop() -> None:
    with FakeServer("llamacpp", keep_alive=True) as server:
        server.responder = lambda body: chat_reply(label_for(_key(body)))
        clf = Classifier(LABELS, settings=fast_settings(server.base_url, timeout=10))

        async def notebook() -> list[Any]:
            out = await clf.aclassify_many(products(100))
            out += clf.classify_many(products(100, start=100))  # blocking, inside the loop
            out += await clf.aclassify_many(products(100, start=200))
            together = await asyncio.gather(
                clf.aclassify_many(products(100, start=300)),
                asyncio.to_thread(clf.classify_many, products(100, start=400)),
            )
            out += together[0] + together[1]
            await clf.aclose()
            return out

        results = asyncio.run(notebook())
    assert len(results) == 500 and [r.error for r in results if r.error] == []


def test_a_slow_item_holds_one_slot_not_the_batch() -> None:
    """Item 0 takes 3 s; the 120 others (10 ms each, 8 slots; under 1 s of work here) must all be
    sent while it is pending, not wait behind it, and still come out in input order."""
    arrivals: dict[str, float] = {}
    with FakeServer("llamacpp") as server:

        def respond(body: dict[str, Any]) -> Reply:
            key = _key(body)
            arrivals[key] = time.monotonic()
            reply = chat_reply(label_for(key))
            reply.delay = 3.0 if key == "SKU-0" else 0.01
            return reply

        server.responder = respond
        clf = Classifier(LABELS, settings=fast_settings(server.base_url, concurrency=8, timeout=10))
        results = clf.classify_many(products(121))
        asyncio.run(clf.aclose())
    assert [r.product_id for r in results] == [f"SKU-{i}" for i in range(121)]
    slow_done = arrivals["SKU-0"] + 3.0
    sent_meanwhile = [k for k, t in arrivals.items() if k != "SKU-0" and t < slow_done]
    # Stalled behind its head, at most the first 16 items could have been sent by then.
    assert len(sent_meanwhile) == 120
    assert server.peak_in_flight == 8


def test_capabilities_are_probed_once_per_base_url_whatever_the_concurrency() -> None:
    with FakeServer("vllm", version="0.32.0") as server:
        server.responder = lambda body: chat_reply(label_for(_key(body)))
        for _ in range(2):  # two classifiers in one process share the answer
            clf = Classifier(
                LABELS, settings=fast_settings(server.base_url, concurrency=32, timeout=10)
            )
            results = clf.classify_many(products(64))
            asyncio.run(clf.aclose())
            assert [r.error for r in results if r.error] == []
        assert [p for p in server.gets if p.endswith("/models")] == ["/v1/models"]
        assert server.gets.count("/version") == 1


def test_a_wrong_api_key_is_one_config_error_not_an_error_per_item() -> None:
    with FakeServer("vllm") as server:
        server.responder = lambda body: Reply(status=401, body={"error": {"message": "bad key"}})
        clf = Classifier(LABELS, settings=fast_settings(server.base_url, model="served-model"))
        with pytest.raises(EndpointError, match="401"):
            clf.classify_many(products(20))
        asyncio.run(clf.aclose())
        assert len(server.requests) <= clf.engine.concurrency  # stopped at the first answers
    with FakeServer("vllm") as server:
        server.models_reply = Reply(status=401, body={"error": {"message": "bad key"}})
        clf = Classifier(LABELS, settings=fast_settings(server.base_url))
        with pytest.raises(EndpointError, match="401"):
            clf.classify_many(products(20))
        asyncio.run(clf.aclose())
        assert server.requests == []  # the probe proved it before any item


def test_a_server_that_is_not_openai_compatible_is_one_clear_error() -> None:
    with FakeServer("vllm") as server:
        server.models_reply = Reply(
            raw=b"<html><body>Welcome</body></html>", content_type="text/html"
        )
        clf = Classifier(LABELS, settings=fast_settings(server.base_url, model="m"))
        with pytest.raises(ConfigError, match="not an OpenAI-compatible API"):
            clf.classify_many(products(5))
        asyncio.run(clf.aclose())


def test_an_unknown_model_on_a_vllm_server_is_a_config_error() -> None:
    with FakeServer("vllm") as server:
        clf = Classifier(LABELS, settings=fast_settings(server.base_url, model="not-served"))
        with pytest.raises(EndpointError, match="does not serve model 'not-served'"):
            clf.classify("x")
        asyncio.run(clf.aclose())


def test_a_base_url_without_a_scheme_fails_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError, match="not an http"):
        Classifier(LABELS, base_url="127.0.0.1:8000/v1")
    assert time.monotonic() - started < 1


def test_a_broken_sentence_transformers_install_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins
    import importlib.util

    from llmcat.embeddings import SentenceTransformerEmbedder

    real_import = builtins.__import__

    def broken(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("sentence_transformers"):
            raise RuntimeError("operator torchvision::nms does not exist")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    with pytest.raises(ConfigError, match=r"installed but cannot be imported.*torchvision::nms"):
        SentenceTransformerEmbedder()._load()


def test_secrets_echoed_by_a_server_never_reach_records_or_messages(tmp_path: Path) -> None:
    key = "sk-test-SECRET-0123456789"
    with FakeServer("llamacpp") as server:
        server.responder = lambda body: Reply(
            status=500,
            body={"error": {"message": f"proxy failed; headers: Authorization: Bearer {key}"}},
        )
        settings = fast_settings(
            server.base_url, model="m", api_key=key, retry=RetryOptions(attempts=1)
        )
        result = Classifier(LABELS, settings=settings).classify("x")
    assert result.error is not None and key not in result.model_dump_json()
    assert "***" in result.error.message
    url = "http://user:hunter2@127.0.0.1:9/v1"
    failed = Classifier(
        LABELS, settings=fast_settings(url, model="m", retry=RetryOptions(attempts=1))
    ).classify("x")
    assert failed.error is not None and "hunter2" not in failed.error.message


def _key(body: dict[str, Any]) -> str:
    import re

    text = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
    found = re.search(r"SKU-\w+", text)
    return found.group(0) if found else "?"
