"""Logging: what -v shows (retries with their wait, re-asks, fallbacks, a batch summary), what
-q hides, and that no configured key reaches a log line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmcat.cli import main
from tests.fake_server import FakeServer, Reply, chat_reply

pytestmark = pytest.mark.allow_model_requests
KEY = "sk-test-VERY-SECRET-1234"


@pytest.fixture(autouse=True)
def _restore_logger() -> Iterator[None]:
    logger = logging.getLogger("llmcat")
    level, handlers = logger.level, list(logger.handlers)
    yield
    logger.setLevel(level)
    logger.handlers = handlers


def products(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "products.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"p{i}", "title": f"toy car {i}"}) + "\n" for i in range(n))
    )
    return path


def test_verbose_logs_each_retry_with_its_wait_and_never_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slow_down = Reply(
        status=429,
        headers={"retry-after": "0.2"},
        # A server that echoes the key it was given: the log line must not repeat it.
        body={"error": {"message": f"rate limit for key {KEY}, slow down"}},
    )
    with FakeServer("vllm") as server:
        server.replies.extend([slow_down, slow_down, chat_reply("Toys"), chat_reply("Toys")])
        code = main(
            [
                "-v",
                "classify",
                "--input",
                str(products(tmp_path, 2)),
                "--labels",
                "Shoes,Toys",
                "--strategy",
                "flat",
                "--base-url",
                server.base_url,
                "--api-key",
                KEY,
                "--no-cache",
                "--concurrency",
                "1",
            ]
        )
    out, err = capsys.readouterr()
    assert code == 0 and out.count('"path":["Toys"]') == 2
    retries = [line for line in err.splitlines() if "retry" in line]
    assert len(retries) == 2, err
    assert all("in 0.20s after RateLimitError" in line for line in retries)
    assert "classify (flat): 2 items" in err  # the batch summary
    assert KEY not in err and KEY not in out
    assert "***" in err  # the echoed key was there, redacted


def test_quiet_logs_nothing_but_errors_and_default_logs_no_info(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for flags in (["-q"], []):
        with FakeServer("vllm") as server:
            server.replies.extend(
                [Reply(status=500, body={"error": {"message": "oops"}}), chat_reply("Toys")]
            )
            code = main(
                [
                    *flags,
                    "classify",
                    "toy car",
                    "--labels",
                    "Shoes,Toys",
                    "--base-url",
                    server.base_url,
                    "--no-cache",
                ]
            )
        out, err = capsys.readouterr()
        assert code == 0 and "Toys" in out and "retry" not in err and "INFO" not in err


def test_debug_shows_cache_hits_and_copy_logs_its_fallback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmcat.backends import fake

    loop = json.dumps({"title": "toy car", "bullets": ["toy car"] * 3, "body": "toy car"})
    args = [
        "describe",
        "toy car",
        "--attr",
        "colour=red",
        "--backend",
        "fake",
        "--cache-dir",
        str(tmp_path),
    ]
    monkeypatch.setattr(fake, "_default_answer", lambda request: loop)
    assert main(["-v", *args]) == 0
    first = capsys.readouterr().err
    assert main(["-vv", *args]) == 0
    second = capsys.readouterr().err
    assert "regenerating copy of product 1: " in first and "composed copy for product 1" in first
    assert "cache hit" in second
