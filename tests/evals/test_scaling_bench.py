"""``python -m evals bench --raw``: llmcat's recorded requests are what it sends, replayed as
they are, each side once per round, and the ratio is printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llmcat.evals.commands import main as evals_main
from tests.fake_server import FakeServer, Reply, chat_reply


def answer(body: dict[str, Any]) -> Reply:
    if "structured_outputs" not in body:  # the prefix-cache reset: this server has none
        return Reply(status=404, body={"detail": "Not Found"})
    first = body["structured_outputs"]["choice"][0]
    return chat_reply(first, logprobs=[(first, -0.1, {first: -0.1})])


@pytest.mark.allow_model_requests
def test_raw_bench_replays_exactly_what_llmcat_sends(
    shared_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    n = 6
    with FakeServer("vllm") as server:
        server.responder = answer
        argv = ["bench", "--raw", "--base-url", server.base_url, "--n", str(n)]
        assert evals_main([*argv, "--strategy", "flat", "--rounds", "2"]) == 0
        chats = [b for b in server.requests if "structured_outputs" in b]
    out = capsys.readouterr().out
    assert "ratio llmcat/raw per round: " in out and "prefix cache NOT cleared" in out
    # warm-up, then per round one llmcat side and one raw side of n requests each
    assert len(chats) == 1 + 2 * 2 * n
    rounds = chats[1:]
    llmcat_side, raw_side = rounds[:n], rounds[n : 2 * n]
    key = lambda b: json.dumps(b, sort_keys=True)  # noqa: E731
    assert sorted(map(key, raw_side)) == sorted(map(key, llmcat_side))


@pytest.mark.allow_model_requests
def test_raw_embedding_bench_times_the_strategy_against_one_batch_of_the_same_embedder(
    shared_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["bench", "--raw", "--strategy", "embedding", "--embedding-model", "hashing"]
    assert evals_main([*argv, "--n", "12", "--rounds", "2", "--backend", "fake"]) == 0
    out = capsys.readouterr().out
    assert "raw embedding bench: 12 products, embedder hashing-2048" in out
    assert out.count("items/s, raw ") == 2 and "ratio llmcat/raw per round: " in out
