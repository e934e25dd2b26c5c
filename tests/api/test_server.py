"""``llmcat api`` as a real process with a real HTTP client: start, request, shut down. Keys,
deadlines against a hanging model server, a model server that is down, SIGTERM under load."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from llmcat.cli.main import main
from llmcat.evals.commands import main as evals_main
from tests.attributes.conftest import synthetic, write_jsonl
from tests.fake_server import FakeServer, Reply, chat_reply

KEY = "s3cret-key-for-the-test"
LABELS = "Shoes,Toys,Mobile Phones"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def api_process(
    tmp_path: Path, args: Sequence[str], env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """``llmcat api`` on a free loopback port, ready; yields its URL, the process and its log."""
    port = free_port()
    log = tmp_path / f"api-{port}.log"
    command = [sys.executable, "-m", "llmcat", "api", "--port", str(port), *args]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise AssertionError(f"llmcat api did not start: {log.read_text()}")
        yield url, process, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def ready(url: str, seconds: float = 120) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        answer = httpx.get(f"{url}/readyz", timeout=5)
        if answer.status_code == 200 or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


EMBEDDING = ["--labels", LABELS, "--strategy", "embedding", "--embedding-model", "hashing"]


def test_keys_probes_metrics_and_a_clean_exit_on_sigterm(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", synthetic(60, 0))
    args = [*EMBEDDING, "--access-log", "--attribute-examples", str(train), "--no-cache"]
    with api_process(tmp_path, args, {"LLMCAT_API_KEYS": KEY}) as (url, process, log):
        assert ready(url).status_code == 200
        body = {"title": "red running shoes"}
        refused = httpx.post(f"{url}/v1/classify", json=body)
        assert refused.status_code == 401
        assert refused.json()["error"]["kind"] == "unauthorised"
        header = {"Authorization": f"Bearer {KEY}"}
        answer = httpx.post(f"{url}/v1/classify", json=body, headers=header)
        assert answer.status_code == 200
        assert answer.json()["path"] == ["Shoes"]
        # a key in the query string (not where keys go) never reaches the access log
        httpx.post(f"{url}/v1/classify?api_key={KEY}", json=body, headers=header)
        shoe = {"title": "Acme Men's Loafer,Red,9 D US", "attributes": {"category": "Shoes"}}
        values = httpx.post(f"{url}/v1/extract", json=shoe, headers=header)
        assert values.status_code == 200
        assert values.json()["attributes"]["Color"]["value"] == "Red"
        metrics = httpx.get(f"{url}/metrics", headers=header).text
        assert 'llmcat_api_requests_total{endpoint="/v1/classify",status="200"} 2.0' in metrics
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        text = log.read_text()
        assert "POST /v1/classify" in text  # the access log is on
        assert KEY not in text and KEY not in metrics and KEY not in refused.text


def test_every_request_accepted_before_sigterm_gets_its_whole_answer(tmp_path: Path) -> None:
    with FakeServer("vllm", keep_alive=True) as model:
        model.responder = lambda body: Reply(delay=1.0, body=chat_reply("Toys").body)
        args = ["--labels", LABELS, "--strategy", "flat", "--base-url", model.base_url]
        with api_process(tmp_path, [*args, "--no-cache"]) as (url, process, _):
            assert ready(url).status_code == 200
            with ThreadPoolExecutor(8) as pool:
                calls = [
                    pool.submit(
                        httpx.post,
                        f"{url}/v1/classify",
                        json=[{"title": f"wooden train {n}", "id": n}] * 1,
                        timeout=30,
                    )
                    for n in range(8)
                ]
                while model.in_flight < 8:
                    time.sleep(0.01)
                process.send_signal(signal.SIGTERM)
                answers = [call.result() for call in calls]
            assert [a.status_code for a in answers] == [200] * 8
            assert [a.json()[0]["product_id"] for a in answers] == [str(n) for n in range(8)]
            assert all(a.json()[0]["path"] == ["Toys"] for a in answers)
            assert process.wait(timeout=30) == 0
            # after the stop, nothing listens
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                raise AssertionError("the server still answers after SIGTERM")
            except httpx.ConnectError:
                pass


def test_the_load_benchmark_sends_sigterm_mid_load_and_every_accepted_request_is_answered(
    tmp_path: Path, capsys: Any
) -> None:
    products = tmp_path / "products.jsonl"
    titles = ["red running shoes", "lego bricks", "android phone 128 GB", "trail shoes"]
    products.write_text("".join(f'{{"id": "p{n}", "title": "{t}"}}\n' for n, t in
                                enumerate(titles * 25)))  # fmt: skip
    with api_process(tmp_path, [*EMBEDDING, "--no-cache", "-v"]) as (url, process, log):
        assert ready(url).status_code == 200
        code = evals_main(["load", "--url", url, "--input", str(products), "--concurrency", "16",
                           "--requests", "1000000", "--list-share", "0.2", "--invalid-share",
                           "0.05", "--server-pid", str(process.pid), "--sigterm-after", "1.5"])  # fmt: skip
        out = capsys.readouterr().out
        assert code == 0, out  # nothing lost, nothing wrong
        assert process.wait(timeout=30) == 0
    line = next(line for line in out.splitlines() if line.startswith("SIGTERM sent"))
    answered = int(line.split(": ")[1].split()[0])
    refused = int(line.split("; ")[1].split()[0])
    assert answered >= 1 and refused >= 1 and line.endswith("0 lost")
    # what the server received it answered, and the client holds each answer
    stopped = re.search(
        r"stopped: (\d+) requests to /v1/ received, (\d+) of them unanswered", log.read_text()
    )
    assert stopped is not None and stopped[2] == "0"
    statuses = out.splitlines()[1].split()[9]  # 200:N,422:M
    counted = sum(int(pair.split(":")[1]) for pair in statuses.split(","))
    assert int(stopped[1]) == counted  # so the ones closed unanswered were never read


def test_a_hanging_model_server_gives_504_within_the_deadline_and_503_past_max_pending(
    tmp_path: Path,
) -> None:
    with FakeServer("vllm", keep_alive=True) as model:
        model.responder = lambda body: Reply(delay=8.0, body=chat_reply("Toys").body)
        args = ["--labels", LABELS, "--strategy", "flat", "--base-url", model.base_url]
        limits = ["--deadline", "1", "--max-pending", "2", "--max-items", "2"]
        with api_process(tmp_path, [*args, "--no-cache", *limits]) as (url, _, _):
            ready(url)
            started = time.monotonic()
            answer = httpx.post(f"{url}/v1/classify", json={"title": "x"}, timeout=30)
            took = time.monotonic() - started
            assert answer.status_code == 504
            assert answer.json()["error"]["kind"] == "deadline"
            assert took < 2.0
            # back-pressure: two products hang, so a third is refused at once
            with ThreadPoolExecutor(1) as pool:
                held = pool.submit(
                    httpx.post, f"{url}/v1/classify", json=[{"title": "a"}, {"title": "b"}]
                )
                time.sleep(0.3)
                refused = httpx.post(f"{url}/v1/classify", json={"title": "c"}, timeout=30)
                assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
                assert refused.json()["error"]["kind"] == "overloaded"
                assert held.result().status_code == 504
            # limits: a list past --max-items, an invalid product
            many = httpx.post(f"{url}/v1/classify", json=[{"title": "t"}] * 3, timeout=30)
            assert many.status_code == 413 and many.json()["error"]["kind"] == "too_many_items"
            invalid = httpx.post(f"{url}/v1/classify", json={"title": 7}, timeout=30)
            assert invalid.status_code == 422
            assert invalid.json()["error"]["fields"][0]["field"] == "title"


def test_a_model_server_that_is_down_shows_in_readyz_and_in_the_error_body(
    tmp_path: Path,
) -> None:
    down = f"http://127.0.0.1:{free_port()}/v1"
    args = ["--labels", LABELS, "--strategy", "flat", "--base-url", down, "--model", "m"]
    with api_process(tmp_path, [*args, "--deadline", "20", "--timeout", "1"]) as (url, _, _):
        answer = httpx.get(f"{url}/readyz", timeout=10)
        assert answer.status_code == 503
        assert "unreachable" in answer.json()["reason"]
        failed = httpx.post(f"{url}/v1/classify", json={"title": "x"}, timeout=30)
        assert failed.status_code == 502
        error: dict[str, Any] = failed.json()["error"]
        assert error["kind"] == "model_server"
        assert "cannot reach" in error["message"]


def test_the_server_recovers_when_the_model_server_does(tmp_path: Path) -> None:
    with FakeServer("vllm", keep_alive=True) as model:
        model.models_reply = Reply(status=503, body={"error": {"message": "loading"}})
        model.responder = lambda body: Reply(status=503, body={"error": {"message": "loading"}})
        args = ["--labels", LABELS, "--strategy", "flat", "--base-url", model.base_url]
        with api_process(tmp_path, [*args, "--no-cache", "--deadline", "5"]) as (url, _, _):
            assert httpx.get(f"{url}/readyz", timeout=10).status_code == 503
            failed = httpx.post(f"{url}/v1/classify", json={"title": "x"}, timeout=30)
            assert failed.status_code in (502, 503, 504)
            model.models_reply = None
            model.responder = lambda body: chat_reply("Toys")
            assert ready(url, seconds=30).status_code == 200
            answer = httpx.post(f"{url}/v1/classify", json={"title": "x"}, timeout=30)
            assert answer.status_code == 200
            assert answer.json()["path"] == ["Toys"]


def test_no_keys_means_loopback_only(capsys: Any) -> None:
    assert main(["api", "--labels", LABELS, "--host", "0.0.0.0"]) == 2
    assert "LLMCAT_API_KEYS" in capsys.readouterr().err
