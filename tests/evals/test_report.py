"""The report's pure parts: intervals, the folded per-class table, the explorer's rows and its
JSON, the prompts each sample keeps (the browser test, test_report_browser.py, drives the page)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from llmcat.backends.fake import FakeBackend
from llmcat.evals import metrics as M
from llmcat.evals.commands import main
from llmcat.evals.compare_report import compare_html
from llmcat.evals.explorer import Explorer, wrong_from
from llmcat.evals.records import read_run
from llmcat.evals.report import FOLD_BELOW, per_class_section, report_html
from llmcat.evals.stats import bootstrap_intervals, paired_bootstrap_deltas
from llmcat.llm.completions import CompletionRequest, Message, note_request, requests_seen


def mean(items: list[float]) -> dict[str, float | None]:
    return {"mean": sum(items) / len(items), "none": None}


def test_bootstrap_intervals_hold_the_value_and_narrow_with_more_items() -> None:
    few = bootstrap_intervals(mean, [0.0, 1.0] * 10)
    many = bootstrap_intervals(mean, [0.0, 1.0] * 500)
    assert "none" not in few  # undefined metrics get no interval
    for found in (few, many):
        assert found["mean"].low < 0.5 < found["mean"].high and found["mean"].value == 0.5
    assert many["mean"].high - many["mean"].low < (few["mean"].high - few["mean"].low) / 3
    constant = bootstrap_intervals(mean, [1.0] * 30)["mean"]
    assert (constant.low, constant.value, constant.high) == (1.0, 1.0, 1.0)


def test_paired_deltas_see_a_change_that_unpaired_noise_would_hide() -> None:
    # b is a plus 0.1 on every item: the paired change is exactly 0.1 in every resample.
    a = [float(i % 7) for i in range(200)]
    b = [x + 0.1 for x in a]
    delta = paired_bootstrap_deltas(mean, a, b)["mean"]
    assert abs(delta.value - 0.1) < 1e-9 and abs(delta.low - 0.1) < 1e-9
    assert abs(delta.high - 0.1) < 1e-9


def test_the_first_wrong_level_is_where_the_answer_leaves_the_gold_path() -> None:
    gold = ["A", "B", "C"]
    assert wrong_from(gold, ["A", "B", "C"]) == "right"
    assert wrong_from(gold, ["A", "X", "C"]) == "level 2"
    assert wrong_from(gold, ["A", "B"]) == "level 3"  # stopped short
    assert wrong_from(gold, ["A", "B", "C", "D"]) == "level 4"  # went too deep
    assert wrong_from(gold, None) == "level 1"


def test_classes_below_the_fold_share_one_row() -> None:
    outcomes = [M.Outcome(("A",), ("A",))] * 5 + [
        M.Outcome((f"rare {i}",), (f"rare {i}",)) for i in range(4)
    ]
    section = per_class_section(outcomes)
    assert section.rows[0][0] == "A"
    assert section.rows[-1][:2] == [f"4 classes with support below {FOLD_BELOW} (their mean)", "4"]
    assert len(section.rows) == 2


def test_explorer_json_cannot_close_its_script_element() -> None:
    explorer = Explorer("x", "t", [], [], [{"cells": {"id": "</script><b>&"}, "detail": []}])
    text = explorer.as_json()
    assert "</script>" not in text and "<b>" not in text and "&" not in text
    assert json.loads(text)["rows"][0]["cells"]["id"] == "</script><b>&"


def test_each_task_sees_only_its_own_requests() -> None:
    def request(text: str) -> CompletionRequest:
        return CompletionRequest(messages=[Message(role="user", content=text)])

    async def item(name: str) -> list[str]:
        with requests_seen() as seen:
            for step in range(3):
                note_request(request(f"{name}{step}"))
                await asyncio.sleep(0)
        return [r.messages[0].content for r in seen]

    async def both() -> list[list[str]]:
        return list(await asyncio.gather(item("a"), item("b")))

    assert asyncio.run(both()) == [["a0", "a1", "a2"], ["b0", "b1", "b2"]]
    note_request(request("nobody looks"))  # outside a block: nothing kept, nothing raised


def test_a_run_keeps_prompts_and_its_report_opens_on_headline_numbers(tmp_path: Path) -> None:
    out = tmp_path / "run"
    common = ["run", "--suite", "golden", "--limit", "12", "--task", "classify"]
    assert main([*common, "--out", str(out)], backend=FakeBackend()) == 0
    run, samples = read_run(out)
    asked = [s for s in samples if not s.baseline]
    assert all(s.prompts and s.prompts[0][-1]["role"] == "user" for s in asked)
    assert all(str(s.input["title"]) in s.prompts[0][-1]["content"] for s in asked)
    assert all(not s.prompts for s in samples if s.baseline)  # the embedding asks no model
    page = report_html(run, samples, gate_lines=[])
    assert page.index("Headline") < page.index("Classification")
    assert "95% interval" in page and "Against the baseline" not in page
    assert 'data-source="explorer-data-classification-1"' in page
    diff = compare_html(("a", run, samples), ("b", run, samples), [], [])
    assert "95% interval of B - A" in diff and "No item is right in one run" in diff


@pytest.mark.parametrize("odd", ["line separator", "200,000 characters"])
def test_a_run_with_odd_titles_is_read_and_its_report_stays_small(odd: str, tmp_path: Path) -> None:
    """Issue 41: a title holding U+2028 made report and compare refuse the run as "not a run of
    this llmcat" (splitlines() split the samples file on it), and a 200,000-character title was
    written whole into report.html again and again (658 KB for one product)."""
    out = tmp_path / "run"
    common = ["run", "--suite", "golden", "--limit", "12", "--task", "classify"]
    assert main([*common, "--out", str(out)], backend=FakeBackend()) == 0
    assert main(["report", str(out)]) == 0
    plain = (out / "report.html").read_text(encoding="utf-8")
    samples = out / "samples.jsonl"
    lines = samples.read_text(encoding="utf-8").split("\n")
    title = "Trail shoe\u2028second line" if odd == "line separator" else "word " * 40_000
    old = json.dumps(json.loads(lines[1])["input"]["title"], ensure_ascii=False)[1:-1]
    lines[1] = lines[1].replace(old, json.dumps(title, ensure_ascii=False)[1:-1])
    samples.write_text("\n".join(lines), encoding="utf-8")
    _, read = read_run(out)
    assert read[1].input["title"] == title
    assert len(read) == sum(bool(line.strip()) for line in lines)
    assert main(["report", str(out)]) == 0
    assert main(["compare", str(out), str(out)]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    if odd == "200,000 characters":
        assert "[200,000 characters]" in page and title not in page
        assert len(page) - len(plain) < 50_000  # the title's start a few times, not all of it
