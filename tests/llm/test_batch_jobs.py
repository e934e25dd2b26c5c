"""Provider batch jobs: --batch-export writes the exact requests of a run in the OpenAI Batch JSONL
format, a provider (here: the same bodies POSTed to a loopback OpenAI-compatible server) answers
them, and --batch-import turns the result file into the results and cache entries of a live run."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from llmcat.cli import main
from tests.fake_server import FakeServer, Reply, chat_reply

PRODUCTS = ["running shoes", "smart phone 128 GB", "teddy bear", "trail running shoes"]


def answer(body: dict[str, Any]) -> Reply:
    """The last allowed label, with a token logprob, like a constrained vLLM answer."""
    choices = body["structured_outputs"]["choice"]
    return chat_reply(choices[-1], logprobs=[(choices[-1], -0.2, {choices[-1]: -0.2})])


def run_provider(requests: Path, results: Path, base_url: str) -> None:
    """What a batch job does with each line: POST the body, keep the answer by custom_id."""
    out = []
    for line in requests.read_text().splitlines():
        item = json.loads(line)
        assert item["method"] == "POST" and item["url"] == "/v1/chat/completions"
        ask = urllib.request.Request(
            base_url.removesuffix("/v1") + item["url"],
            json.dumps(item["body"]).encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(ask) as response:
            body = json.loads(response.read())
        out.append(
            {
                "id": "b",
                "custom_id": item["custom_id"],
                "response": {"status_code": 200, "body": body},
                "error": None,
            }
        )
    results.write_text("".join(json.dumps(o) + "\n" for o in out))


@pytest.mark.allow_model_requests
def test_export_then_import_gives_the_live_results_and_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"title": t}) + "\n" for t in PRODUCTS))
    with FakeServer("vllm") as server:
        server.responder = answer
        common = ["classify", "--input", "in.jsonl", "--labels", "Shoes,Phones,Toys"]
        common += ["--base-url", server.base_url, "--no-progress"]
        assert main([*common, "--output", "live.jsonl", "--cache-dir", "live-cache"]) == 0
        live_calls = len(server.requests)
        batch = [*common, "--cache-dir", "batch-cache"]
        assert main([*batch, "--batch-export", "requests.jsonl"]) == 0
        assert len(server.requests) == live_calls  # exporting sends nothing
        lines = [json.loads(x) for x in (tmp_path / "requests.jsonl").read_text().splitlines()]
        assert len(lines) == len(PRODUCTS) == len({x["custom_id"] for x in lines})
        sent = server.requests[:live_calls]
        assert sorted(json.dumps(x["body"], sort_keys=True) for x in lines) == sorted(
            json.dumps(b, sort_keys=True) for b in sent
        )  # the exact bodies a live run sends
        run_provider(tmp_path / "requests.jsonl", tmp_path / "results.jsonl", server.base_url)
        provider_calls = len(server.requests)
        assert main([*batch, "--batch-import", "results.jsonl", "--output", "imported.jsonl"]) == 0
        assert len(server.requests) == provider_calls  # importing sends nothing either
        live = (tmp_path / "live.jsonl").read_text()
        assert (tmp_path / "imported.jsonl").read_text() == live
        # The answers are in the cache as a live run leaves them: a normal run replays them.
        assert main([*batch, "--output", "again.jsonl"]) == 0
        assert len(server.requests) == provider_calls
        again = [json.loads(x) for x in (tmp_path / "again.jsonl").read_text().splitlines()]
        assert all(r["cached"] and r["usage"]["calls"] == 0 for r in again)
        assert [r["path"] for r in again] == [json.loads(x)["path"] for x in live.splitlines()]
        # A request missing from the results is an error record that says what to do.
        (tmp_path / "short.jsonl").write_text(
            "".join((tmp_path / "results.jsonl").read_text().splitlines(keepends=True)[:2])
        )
        fresh = [*common, "--cache-dir", "fresh-cache", "--batch-import", "short.jsonl"]
        assert main([*fresh, "--output", "partial.jsonl"]) == 0
        rows = [json.loads(x) for x in (tmp_path / "partial.jsonl").read_text().splitlines()]
        missing = [r for r in rows if r["error"]]
        assert len(missing) == 2 and "--batch-export again" in missing[0]["error"]["message"]


def test_batch_jobs_need_a_server_backend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["classify", "x", "--labels", "A,B", "--backend", "fake"]
    assert main([*argv, "--batch-export", str(tmp_path / "r.jsonl")]) == 2
    assert "needs the openai backend" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text("not json\n")
    served = ["classify", "x", "--labels", "A,B", "--base-url", "http://127.0.0.1:9/v1"]
    assert main([*served, "--batch-import", str(tmp_path / "bad.jsonl")]) == 2
    assert "not a batch result file" in capsys.readouterr().err
