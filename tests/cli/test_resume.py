"""The CLI's output is crash-safe and resumable: a killed batch leaves complete records, --resume
finishes it without asking the server again for what was done, and a failed start or a failure
mid-way leaves an existing output as it was."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from llmcat.cli import main
from tests.fake_server import FakeServer, Reply, chat_reply
from tests.fault_server import LABELS, label_for

pytestmark = pytest.mark.allow_model_requests


def write_products(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            handle.write(json.dumps({"id": f"SKU-{i}", "title": f"product SKU-{i}"}) + "\n")


def answering(server: FakeServer, delay: float = 0.0) -> Counter[str]:
    asked: Counter[str] = Counter()

    def respond(body: dict[str, Any]) -> Reply:
        text = " ".join(str(m.get("content", "")) for m in body["messages"])
        key = re.search(r"SKU-\d+", text).group(0)  # type: ignore[union-attr]
        asked[key] += 1
        reply = chat_reply(label_for(key))
        reply.delay = delay
        return reply

    server.responder = respond
    return asked


def stopped_after(out: Path, kept: list[str], torn: str = "") -> Path:
    """What a run killed after writing ``kept`` (lines of the finished ``out``, and the start
    of a torn line) leaves: the partial file with the run record and input digests of those
    records, and no output. Returns the partial file."""
    record = json.loads(out.with_name(out.name + ".run.json").read_text(encoding="utf-8"))
    partial = out.with_name(out.name + ".partial")
    partial.write_text("".join(line + "\n" for line in kept) + torn, encoding="utf-8")
    partial.with_name(partial.name + ".run.json").write_text(json.dumps(record["run"]))
    digests = record["inputs"][: len(kept) + bool(torn)]
    partial.with_name(partial.name + ".inputs").write_text("".join(d + "\n" for d in digests))
    out.unlink()
    out.with_name(out.name + ".run.json").unlink()
    return partial


def offline(src: Path, out: Path, *extra: str) -> list[str]:
    """``llmcat classify`` of a file on the fake backend, as argv for ``main``."""
    return ["classify", "--input", str(src), "--output", str(out), "--backend", "fake", *extra]


def cli(server: FakeServer, src: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "llmcat", "classify", "--input", str(src), "--output", str(out),
        "--labels", ",".join(LABELS), "--base-url", server.base_url, "--no-cache",
        "--no-progress", "--concurrency", "16", *extra,
    ]  # fmt: skip


def test_a_killed_batch_resumes_without_redoing_finished_items(tmp_path: Path) -> None:
    src, out = tmp_path / "products.jsonl", tmp_path / "results.jsonl"
    write_products(src, 2000)
    partial = out.with_name(out.name + ".partial")
    env = {**os.environ, "LLMCAT_CACHE_DIR": str(tmp_path / "cache")}
    with FakeServer("llamacpp") as server:
        asked = answering(server, delay=0.004)
        log = (tmp_path / "first.log").open("wb")
        process = subprocess.Popen(cli(server, src, out), env=env, stderr=log)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # kill it in the middle
            if partial.exists() and partial.read_bytes().count(b"\n") >= 600:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        log.close()
        assert not out.exists()  # the output appears only when the batch is done
        lines = partial.read_bytes().split(b"\n")
        finished = [json.loads(x)["product_id"] for x in lines[:-1]]
        assert 600 <= len(finished) < 2000
        before = Counter(asked)

        done = subprocess.run(cli(server, src, out, "--resume"), env=env, capture_output=True)
        assert done.returncode == 0, done.stderr.decode()
        assert b"resuming after" in done.stderr
    assert not partial.exists()
    raw = out.read_bytes()
    assert raw.endswith(b"\n")
    records = [json.loads(line) for line in raw.splitlines()]  # no torn line anywhere
    ids = [r["product_id"] for r in records]
    assert ids == [f"SKU-{i}" for i in range(2000)]  # every id exactly once, in input order
    assert all(r["error"] is None for r in records)
    asked_again = [i for i in finished if asked[i] > before[i]]
    assert len(asked_again) <= 0.01 * len(finished)


def test_resume_refuses_records_from_another_setup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out = tmp_path / "p.jsonl", tmp_path / "r.jsonl"
    write_products(src, 5)
    base = offline(src, out)
    assert main([*base, "--labels", "A,B"]) == 0
    stopped_after(out, out.read_text().splitlines())
    assert main([*base, "--labels", "A,B,C", "--resume"]) == 2
    assert "taxonomy_version" in capsys.readouterr().err
    other = tmp_path / "other.jsonl"
    write_products(other, 7)
    lines = other.read_text().splitlines()
    other.write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")
    again = offline(other, out)
    assert main([*again, "--labels", "A,B", "--resume"]) == 2
    assert "another input" in capsys.readouterr().err


def test_resume_drops_a_torn_line_and_finishes(tmp_path: Path) -> None:
    src, out = tmp_path / "p.jsonl", tmp_path / "r.jsonl"
    write_products(src, 6)
    base = offline(src, out, "--labels", "A,B")
    assert main(base) == 0
    full = out.read_text().splitlines()
    stopped_after(out, full[:3], full[3][:25])  # killed mid-line
    assert main([*base, "--resume"]) == 0

    def answers(lines: list[str]) -> list[tuple[str, str]]:
        return [(r["product_id"], r["category_id"]) for r in map(json.loads, lines)]

    assert answers(out.read_text().splitlines()) == answers(full)


def test_a_failed_start_leaves_the_output_untouched(tmp_path: Path) -> None:
    keep = tmp_path / "keep.jsonl"
    keep.write_text("precious\n")
    missing = tmp_path / "missing.jsonl"
    assert (
        main(["classify", "--input", str(missing), "--output", str(keep), "--labels", "A,B"]) == 2
    )
    assert keep.read_text() == "precious\n"
    src = tmp_path / "p.jsonl"
    write_products(src, 20)
    with FakeServer("vllm") as server:  # a wrong key: known at the first answer
        server.responder = lambda body: Reply(status=401, body={"error": {"message": "no"}})
        argv = ["classify", "--input", str(src), "--output", str(keep), "--labels", "A,B"]
        code = main([*argv, "--base-url", server.base_url, "--model", "served-model", "--no-cache"])
    assert code == 2 and keep.read_text() == "precious\n"


@pytest.mark.parametrize("name", ["results.jsonl", "results.csv"])
def test_a_run_where_every_item_fails_never_replaces_the_output(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 40: a run whose every item failed replaced a good output with error records. Its
    records now go beside it, the output stays, and the exit code is still 3."""
    src, out = tmp_path / "p.jsonl", tmp_path / name
    write_products(src, 4)
    assert main(offline(src, out, "--labels", "A,B", "--no-progress")) == 0
    good = out.read_bytes()
    broken = tmp_path / "broken.jsonl"  # no title anywhere: every item is an error record
    broken.write_text("".join(json.dumps({"id": f"x{i}", "title": ""}) + "\n" for i in range(3)))
    capsys.readouterr()
    assert main(offline(broken, out, "--labels", "A,B", "--no-progress")) == 3
    assert out.read_bytes() == good
    failed = out.with_name(f"results.failed{out.suffix}")
    err = capsys.readouterr().err
    assert str(failed) in err and "left as it was" in err
    lines = failed.read_text().splitlines()  # a CSV has a header line
    assert len(lines) == 3 + (out.suffix == ".csv") and all("x" in line for line in lines[-3:])
    assert "empty title" in lines[-1] and "SKU-0" not in "".join(lines)
    # no partial, lock or sidecar left behind: only the good output's own run record
    assert [p.name for p in tmp_path.glob(f"{name}.*")] == [f"{name}.run.json"]
    fresh = tmp_path / f"new{out.suffix}"  # with no output yet, none is written either
    assert main(offline(broken, fresh, "--labels", "A,B", "--no-progress")) == 3
    assert not fresh.exists() and fresh.with_name(f"new.failed{out.suffix}").exists()
    assert "was not written" in capsys.readouterr().err


@pytest.mark.allow_model_requests
def test_a_server_that_refuses_the_connection_fails_fast_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 40: connection refused was retried for about 20 s, then every item became an error
    record over the output (exit 3); it is a setup error like a 401 now (exit 2)."""
    from llmcat.serve.server import free_port

    src, keep = tmp_path / "p.jsonl", tmp_path / "keep.jsonl"
    write_products(src, 20)
    keep.write_text("precious\n")
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    argv = ["classify", "--input", str(src), "--output", str(keep), "--labels", "A,B"]
    argv += ["--base-url", url, "--strategy", "flat", "--no-cache", "--no-progress"]
    assert main(argv) == 2
    assert "connection refused" in capsys.readouterr().err
    assert keep.read_text() == "precious\n" and not list(tmp_path.glob("keep.*.*"))
    # the same with no probe first (model and wire format given): the first item proves it
    assert main([*argv, "--model", "m", "--structured-output", "none"]) == 2
    assert keep.read_text() == "precious\n"


def test_duplicate_ids_are_reported_not_merged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out = tmp_path / "p.jsonl", tmp_path / "r.jsonl"
    src.write_text(
        '{"id": "a", "title": "x"}\n{"id": "a", "title": "y"}\n{"id": "b", "title": "z"}\n'
    )
    assert main(offline(src, out, "--labels", "A,B")) == 0
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["product_id"] for r in records] == ["a", "a", "b"]
    # the second "a" is an error record naming its line: one record per input, none merged
    assert records[1]["error"]["message"] == "line 2: id 'a' is already line 1's"
    assert records[0]["error"] is None and records[2]["error"] is None
    assert "share an id" in capsys.readouterr().err
