"""The CLI, end to end in process, on the fake backend."""

import json
from pathlib import Path

import pytest

from llmcat.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_classify_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "classify",
        "Nike running shoes",
        "--labels",
        "Shoes,Mobile Phones,Toys",
        "--backend",
        "fake",
        "--json",
    )
    assert code == 0
    record = json.loads(out)
    assert record["path"] == ["Shoes"] and "confidence" in record and record["cached"] is False
    code, out, _ = run(
        capsys,
        "classify",
        "Nike running shoes",
        "--labels",
        "Shoes,Mobile Phones,Toys",
        "--backend",
        "fake",
        "--json",
    )
    assert json.loads(out)["cached"] is True


def test_describe_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "describe",
        "Nike shoes",
        "--attr",
        "brand=Nike",
        "--attr",
        "colour=black",
        "--backend",
        "fake",
        "--json",
    )
    record = json.loads(out)
    assert code == 0 and {"title", "bullets", "body"} <= set(record)


def test_batch_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "title": "Mug"}\nbroken\n{"id": "c", "title": ""}\n')
    out_file = tmp_path / "out.jsonl"
    code, _, err = run(
        capsys,
        "classify",
        "--input",
        str(src),
        "--output",
        str(out_file),
        "--labels",
        "Mugs,Plates",
        "--backend",
        "fake",
    )
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert code == 0 and [r["product_id"] for r in rows] == ["a", "2", "c"]
    assert [r["error"] is None for r in rows] == [True, False, False]
    assert "3 items, 2 errors" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["classify", "x", "--backend", "fake"], "--labels"),
        (["classify", "--labels", "A,B", "--backend", "fake"], "--input"),
        (["classify", "x", "--labels", "A,A", "--backend", "fake"], "duplicate"),
        (["describe", "x", "--attr", "novalue", "--backend", "fake"], "KEY=VALUE"),
        (["classify", "x", "--labels", "A", "--backend", "openai"], "LLMCAT_BASE_URL"),
        (
            ["classify", "--input", "/nonexistent.jsonl", "--labels", "A", "--backend", "fake"],
            "does not exist",
        ),
    ],
)
def test_usage_errors_exit_2_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2 and message in err


def test_taxonomy_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "t.txt"
    f.write_text("A > B\nA > C\nD\n")
    code, out, _ = run(capsys, "taxonomy", "show", str(f))
    assert code == 0 and "categories: 4" in out and "leaves: 3" in out


def test_taxonomy_fetch_downloads_and_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import http.server
    import threading

    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / "google.txt").write_text(
        "# Google_Product_Taxonomy_Version: x\n1 - A\n2 - A > B\n"
    )

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(tmp_path / "srv"), **kwargs)

        def log_message(self, *args):  # type: ignore[no-untyped-def]
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/google.txt"
        code, out, _ = run(
            capsys, "taxonomy", "fetch", "google", "--url", url, "--to", str(tmp_path / "tax")
        )
        assert code == 0 and "2 categories" in out
        assert (tmp_path / "tax" / "google@x.txt").exists()  # kept under its name and version
        code, _, err = run(
            capsys,
            "taxonomy",
            "fetch",
            "google",
            "--url",
            url + ".missing",
            "--to",
            str(tmp_path / "tax"),
        )
        assert code == 2 and "cannot download" in err
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_classify_strategy_option(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    f = tmp_path / "t.txt"
    f.write_text("Apparel > Shoes\nApparel > Shirts\nToys > Puzzles\n")
    code, out, _ = run(
        capsys,
        "classify",
        "jigsaw puzzle",
        "--taxonomy",
        str(f),
        "--strategy",
        "hierarchical",
        "--backend",
        "fake",
        "--json",
    )
    record = json.loads(out)
    assert code == 0 and record["strategy"] == "hierarchical" and len(record["path"]) == 2
