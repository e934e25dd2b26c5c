"""The engine and the backends built from settings: cache keys settled before the first lookup,
one client factory and one retry policy, and the in-process vLLM backend's cache folder."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from llmcat import Classifier, RetryOptions, Settings
from llmcat.backends import backend_class, create_backend
from llmcat.backends.base import Backend
from llmcat.backends.openai import _servers
from llmcat.embeddings import OpenAIEmbedder
from tests.fake_server import FakeServer, Reply, chat_reply

LABELS = ["Shoes", "Mobile Phones", "Toys"]
FAST = RetryOptions(attempts=3, backoff=0)


@pytest.mark.allow_model_requests
def test_two_fresh_classifiers_without_a_model_share_the_disk_cache(tmp_path: Path) -> None:
    """The key is computed after the backend learnt the server's model, in both processes: the
    same server is asked once, and another server's model never answers from that entry."""

    def run_once(server: FakeServer) -> list[str]:
        settings = Settings(base_url=server.base_url, cache_dir=tmp_path, retry=FAST)
        clf = Classifier(LABELS, settings=settings)
        result = clf.classify("Nike Pegasus")
        asyncio.run(clf.aclose())
        _servers.clear()  # as in a new process
        return result.path

    with FakeServer("llamacpp", model="model-a") as a, FakeServer("llamacpp", model="model-b") as b:
        a.responder = lambda body: chat_reply("Shoes", model="model-a")
        b.responder = lambda body: chat_reply("Toys", model="model-b")
        assert run_once(a) == ["Shoes"] and run_once(a) == ["Shoes"]
        assert run_once(b) == ["Toys"]
        chats_a = [r for r in a.requests if "messages" in r]
        chats_b = [r for r in b.requests if "messages" in r]
    assert len(chats_a) == 1 and len(chats_b) == 1


def test_every_backend_builds_itself_from_settings(tmp_path: Path) -> None:
    for name in ("openai", "local", "vllm", "fake"):
        assert backend_class(name).from_settings is not Backend.from_settings, name
    fake = create_backend(Settings(backend="fake", model="m1"))
    assert fake.model == "m1"
    openai = create_backend(Settings(base_url="http://127.0.0.1:9/v1", model="m", timeout=7))
    assert openai.name == "openai" and openai.model == "m"


def test_capability_flags_that_nothing_reads_are_gone() -> None:
    # enforces_choice / enforces_json were claimed (FakeBackend: both) and never read.
    for name in ("openai", "local", "vllm", "fake"):
        cls = backend_class(name)
        assert not hasattr(cls, "enforces_choice") and not hasattr(cls, "enforces_json")


def test_the_vllm_backend_converts_models_into_the_configured_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llmcat.backends.vllm as vllm_backend

    seen: list[Any] = []

    class Stop(Exception):
        pass

    def resolve(model: str | None, cache_dir: Path | None = None) -> tuple[str, str]:
        seen.append(cache_dir)
        raise Stop

    monkeypatch.setattr(vllm_backend, "resolve_model", resolve)
    backend = create_backend(Settings(backend="vllm", cache_dir=tmp_path / "mine"))
    with pytest.raises(Stop):
        backend.engine()  # type: ignore[attr-defined]
    assert seen == [tmp_path / "mine"]


@pytest.mark.allow_model_requests
def test_embeddings_use_the_one_client_factory_and_the_retry_policy() -> None:
    answers = [
        Reply(status=503, body={"error": {"message": "warming up"}}),
        Reply(status=503, body={"error": {"message": "warming up"}}),
    ]

    def respond(body: dict[str, Any]) -> Reply:
        if answers:
            return answers.pop(0)
        data = [
            {"object": "embedding", "index": i, "embedding": [1.0, 0.0]}
            for i in range(len(body["input"]))
        ]
        return Reply(body={"object": "list", "data": data, "model": "e", "usage": {}})

    with FakeServer("vllm") as server:
        server.responder = respond
        embedder = OpenAIEmbedder(base_url=server.base_url, model="e", retry=FAST)

        async def go() -> Any:
            try:
                assert embedder.client.max_retries == 0  # the SDK's own retries are off
                return await embedder.embed(["a", "b"])
            finally:
                await embedder.release_loop_resources()

        vectors = asyncio.run(go())
        assert vectors.shape == (2, 2)
        assert len(server.requests) == 3  # two 503s retried by llmcat's policy, then success

    with FakeServer("vllm") as server:
        server.responder = lambda body: Reply(status=503, body={"error": {"message": "down"}})
        embedder = OpenAIEmbedder(
            base_url=server.base_url, model="e", retry=RetryOptions(attempts=2, backoff=0)
        )
        from llmcat import ServerError

        with pytest.raises(ServerError):
            asyncio.run(embedder.embed(["a"]))
        assert len(server.requests) == 2
