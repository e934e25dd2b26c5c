"""The harness talks (issue 40): progress lines when stderr is not a terminal, and SIGINT or
SIGTERM end a run within seconds, leaving a partial run folder that ``report`` reads and that
never passes a gate."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmcat import FakeBackend
from llmcat.evals import stop_and_progress, suite_runner
from llmcat.evals.commands import main

FAST = ["--suite", "golden", "--task", "classify", "--strategy", "flat", "--no-embedding-baseline"]

# The harness on a fake backend whose 11th model call hangs in a thread for 10 minutes, as a
# llama.cpp call does: it cannot be cancelled, so the exit must not wait for it.
DRIVER = """
import asyncio, sys, time
from llmcat import FakeBackend
from llmcat.evals import stop_and_progress
from llmcat.evals.commands import main

stop_and_progress.PROGRESS_EVERY = 0.0  # a progress line after every item: the test reads them

class Hanging(FakeBackend):
    calls = 0

    async def complete(self, request):
        Hanging.calls += 1
        if Hanging.calls == 11:
            print("hanging", file=sys.stderr, flush=True)
            await asyncio.to_thread(time.sleep, 600)
        return await super().complete(request)

sys.exit(main(sys.argv[1:], backend=Hanging()))
"""


def test_a_run_off_a_terminal_prints_progress_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["run", *FAST, "--limit", "5", "--out", str(tmp_path / "r")]
    assert main(argv, backend=FakeBackend()) == 0
    err = capsys.readouterr().err  # captured: not a terminal, so no tqdm bar either
    assert "golden: classify (flat): 5 items" in err
    assert "golden: classify (flat): 5/5 in " in err and "items/s" in err
    monkeypatch.setattr(stop_and_progress, "PROGRESS_EVERY", 0.0)  # a line after every item
    assert main([*argv[:-1], str(tmp_path / "s")], backend=FakeBackend()) == 0
    err = capsys.readouterr().err
    assert "golden: classify (flat): 2/5 (40%)" in err and " left, 0 errors" in err


@pytest.mark.parametrize(("kind", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_within_seconds_and_keeps_a_partial_folder(
    kind: signal.Signals, code: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "driver.py").write_text(DRIVER)
    out, log = tmp_path / "run", tmp_path / "stderr.txt"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, str(tmp_path / "driver.py"), "run", *FAST, "--out", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        )
        try:
            deadline = time.monotonic() + 120
            # the 11th call hangs and the 10 before it are recorded (their progress line): a
            # loaded machine may show "hanging" before the run has taken the 10 answers in
            while b"hanging" not in (seen := log.read_bytes()) or b": 10/200 (" not in seen:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            process.send_signal(kind)
            # Seconds, not the 10 minutes of the hanging call (generous for a loaded machine).
            returncode = process.wait(timeout=30)
        finally:
            process.kill()
            process.wait()
    err = log.read_text()
    assert returncode == code, err
    assert f"{kind.name}: stopping" in err and f"partial run (stopped by {kind.name}" in err
    data = json.loads((out / "run.json").read_text())
    assert data["interrupted"] == f"{kind.name} after 10 of 200 products classified"
    assert data["metrics"]["items"] == 10 and data["gate"]["exit_code"] == 3
    assert len((out / "samples.jsonl").read_text().splitlines()) == 10
    assert "Partial run" in (out / "summary.md").read_text()
    # The folder is a run like any other for the report; never a baseline, never a pass.
    assert main(["report", str(out)]) == 0
    assert "Partial run" in capsys.readouterr().out and (out / "report.html").exists()
    assert main(["baseline", "update", str(out), "--to", str(tmp_path / "b.json")]) == 2
    assert not (tmp_path / "b.json").exists()


def test_a_partial_run_never_passes_a_gate(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["run", *FAST, "--limit", "5", "--out", str(a)], backend=FakeBackend()) == 0
    shutil.copytree(a, b)
    data = json.loads((b / "run.json").read_text())
    (b / "run.json").write_text(json.dumps({**data, "interrupted": "SIGINT after 5 of 200"}))
    assert main(["compare", str(a), str(b)]) == 3  # the same items: 0 without the mark
    assert main(["compare", str(b), str(a)]) == 3  # nor is a partial run a reference


def test_a_stop_before_any_item_finished_leaves_a_run_that_reads(tmp_path: Path) -> None:
    from llmcat.config.options import ClassifyOptions
    from llmcat.evals.records import read_run, write_run
    from llmcat.evals.suites import load_suite
    from llmcat.evals.summary import summary_markdown

    stop = stop_and_progress.Stop()
    stop.signum = signal.SIGTERM  # as if it came while the suite was loading
    options = suite_runner.RunOptions(classify=ClassifyOptions(strategy="flat"))
    run, samples = suite_runner.run_blocking(
        load_suite("golden", limit=5), options, FakeBackend(), stop=stop
    )
    assert samples == [] and run.metrics == {} and run.baselines == {}
    assert run.interrupted == "SIGTERM after 0 of 5 products classified, 0 of 5 copy cases written"
    write_run(tmp_path, run, samples)
    again, _ = read_run(tmp_path)
    assert "Partial run" in summary_markdown(again)
