"""``llmcat extract``: the benchmark format in, one record per input out, gold never read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmcat.attributes.tagger import SpanTagger
from llmcat.cli.main import main
from tests.attributes.conftest import synthetic, write_jsonl


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("extract")
    return write_jsonl(folder / "train.jsonl", synthetic(60, 0)), write_jsonl(
        folder / "test.jsonl", synthetic(12, 1)
    )


def records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def extract_file(given: Path, train: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "extract",
            "--input",
            str(given),
            "--examples",
            str(train),
            "--output",
            str(out),
            "--no-progress",
            "--backend",
            "fake",
            *extra,
        ]
    )


def test_extract_reads_the_benchmark_format_and_never_its_gold(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, test = files
    out = tmp_path / "out.jsonl"
    code = extract_file(test, train, out)
    err = capsys.readouterr().err
    assert code == 0, err
    assert "12 items, 0 errors" in err and "not used: target_scores" in err
    first = records(out)
    assert [r["product_id"] for r in first] == [str(n) for n in range(1, 13)]
    assert all(r["category"] == "Shoes" and "Brand" in r["attributes"] for r in first)  # type: ignore[operator]
    # Without the gold values the answers are the same.
    bare = write_jsonl(
        tmp_path / "bare.jsonl",
        [{k: v for k, v in r.items() if k != "target_scores"} for r in records(test)],
    )
    again = tmp_path / "again.jsonl"
    assert extract_file(bare, train, again, "-q") == 0
    assert records(again) == first
    # A line's id is the result's product_id.
    with_ids = write_jsonl(
        tmp_path / "ids.jsonl", [{**r, "id": f"sku-{n}"} for n, r in enumerate(records(test))]
    )
    assert extract_file(with_ids, train, again, "-q") == 0
    assert [r["product_id"] for r in records(again)][:2] == ["sku-0", "sku-1"]


def test_one_title_and_the_plan(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    train, _ = files
    code = main(
        [
            "extract",
            "Acme Men's Loafer,Red,9 D US",
            "--category",
            "Shoes",
            "--examples",
            str(train),
            "--backend",
            "fake",
            "--json",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    answer = json.loads(out)
    assert answer["attributes"]["Color"]["value"] == "Red"
    assert main(["extract", "--examples", str(train), "--explain", "--backend", "fake"]) == 0
    assert "span tagger learned from 60 examples" in capsys.readouterr().out


def test_extract_without_examples_or_attributes_says_what_it_needs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["extract", "Acme loafer", "--backend", "fake"]) == 2
    assert "--examples" in capsys.readouterr().err
    assert main(["extract", "Acme loafer", "--attributes", "color", "--backend", "fake"]) == 2
    assert "examples" in capsys.readouterr().err


def test_a_resume_with_other_examples_is_refused_before_learning(
    files: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    train, given = files
    out = tmp_path / "out.jsonl"
    assert extract_file(given, train, out) == 0
    other = write_jsonl(tmp_path / "other.jsonl", synthetic(40, 7))

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("learned before the resume was checked")

    monkeypatch.setattr(SpanTagger, "trained", never)
    capsys.readouterr()
    assert extract_file(given, other, out, "--resume") == 2
    assert "other settings" in capsys.readouterr().err and len(records(out)) == 12
