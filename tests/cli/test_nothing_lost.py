"""Nothing lost: every input record gives exactly one output record, batches never end early,
and a run that lost or failed items says so in its exit code."""

from __future__ import annotations

import asyncio
import csv
import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from llmcat import Classification, Classifier, Product, RetryOptions, Settings, Taxonomy
from llmcat.batch.runner import map_ordered
from llmcat.cli import main
from llmcat.io.cells import FORMULA_STARTS
from llmcat.io.output import ResultWriter
from llmcat.io.review import ReviewWriter
from llmcat.learning.examples import load_examples
from llmcat.redact import redact
from tests.cli.test_resume import stopped_after
from tests.fake_server import FakeServer, Reply, chat_reply

# -- the ordered map never stops with items left --------------------------------------------------


@pytest.mark.parametrize(
    ("concurrency", "reorder_limit", "slow"),
    [(2, None, 0), (2, 4, 0), (1, 1, 0), (8, 8, 3), (3, 5, 7)],
)
def test_the_ordered_map_returns_every_item_when_a_slow_one_fills_the_buffer(
    concurrency: int, reorder_limit: int | None, slow: int
) -> None:
    """Item ``slow`` takes long enough for the others to fill the reorder buffer; every item
    must still come back, in order (the map once returned as soon as the buffer drained)."""

    async def work(item: int, index: int) -> int:
        await asyncio.sleep(0.2 if index == slow else 0)
        return item

    async def collect() -> list[int]:
        results = map_ordered(
            work, range(1000), concurrency=concurrency, reorder_limit=reorder_limit
        )
        return [r async for r in results]

    assert asyncio.run(collect()) == list(range(1000))


@pytest.mark.allow_model_requests
def test_a_batch_whose_first_item_is_slow_returns_every_item(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The red team's case: 1,000 items, concurrency 2, the first item 3 s slow gave 128 results
    and "0 errors". Here 400 items and a reorder buffer of 16, which the other items fill for
    sure while the first waits, whatever the machine's speed."""
    monkeypatch.setattr("llmcat.batch.runner.REORDER_PER_SLOT", 8)
    with FakeServer("llamacpp", keep_alive=True) as server:

        def respond(body: dict[str, Any]) -> Reply:
            reply = chat_reply("Shoes")
            if re.search(r"\bitem-0\b", str(body["messages"][-1]["content"])):
                reply.delay = 3.0
            return reply

        server.responder = respond
        settings = Settings(
            base_url=server.base_url,
            cache=False,
            concurrency=2,
            retry=RetryOptions(attempts=1),
            progress=False,
            timeout=10,
        )
        clf = Classifier(["Shoes", "Toys"], settings=settings)
        started = time.monotonic()
        results = clf.classify_many([f"item-{i}" for i in range(400)])
        asyncio.run(clf.aclose())
    assert time.monotonic() - started >= 3.0  # the slow item was waited for
    assert len(results) == 400
    assert [r.product_id for r in results] == [str(i + 1) for i in range(400)]
    assert [r for r in results if r.error is not None] == []


# -- the CLI: paths, bad rows, bad records, the cache, exit codes ---------------------------------

TAXONOMY = "Fruit > Apples\nFruit > Pears\nTools > Hammers\nTools > Saws\n"


def reviewing(tmp: Path, src: Path, out: Path, *extra: str) -> list[str]:
    """A batch on the fake backend in which every result needs review (confidence < 1)."""
    tax = tmp / "tax.txt"
    tax.write_text(TAXONOMY)
    return [
        "classify", "--input", str(src), "--output", str(out), "--taxonomy", str(tax),
        "--backend", "fake", "--strategy", "embedding", "--embedding-model", "hashing",
        "--review-threshold", "1.0", "--no-progress", *extra,
    ]  # fmt: skip


def write_jsonl(path: Path, n: int) -> None:
    path.write_text(
        "".join(json.dumps({"id": f"p{i}", "title": f"hammer {i}"}) + "\n" for i in range(n))
    )


@pytest.mark.parametrize("same_as", ["input", "output", "output.partial"])
def test_review_out_naming_another_file_of_the_run_is_refused_before_anything_is_written(
    same_as: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(src, 3)
    before = src.read_bytes()
    review = {"input": src, "output": out, "output.partial": tmp_path / "out.jsonl.partial"}
    assert main(reviewing(tmp_path, src, out, "--review-out", str(review[same_as]))) == 2
    assert "same file" in capsys.readouterr().err
    assert src.read_bytes() == before  # the input was not truncated
    assert not out.exists() and not (tmp_path / "out.jsonl.partial").exists()


def test_a_resumed_batch_rebuilds_its_review_file_to_match_the_output(tmp_path: Path) -> None:
    src, out, review = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "review.jsonl"
    write_jsonl(src, 40)
    assert main(reviewing(tmp_path, src, out, "--review-out", str(review))) == 0
    full = review.read_text().splitlines()
    assert len(full) == 40
    # What a kill -9 leaves: 25 results in the partial output, 10 review rows (the review file
    # of the killed run was still a partial file; the old review file is a stale one).
    stopped_after(out, out.read_text().splitlines()[:25])
    (tmp_path / "review.jsonl.partial").write_text("\n".join(full[:10]) + "\n")
    review.write_text("stale\n")
    assert main(reviewing(tmp_path, src, out, "--review-out", str(review), "--resume")) == 0
    assert review.read_text().splitlines() == full  # every row once, in input order
    assert not (tmp_path / "review.jsonl.partial").exists()


def test_a_csv_with_an_unterminated_quote_exits_2_unless_bad_rows_are_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.jsonl"
    rows = [f"p{i},hammer {i}" for i in range(2000)]
    rows[1000] = 'p1000,"claw hammer 16 oz'  # the quote is never closed
    src.write_text("id,title\n" + "\n".join(rows) + "\n")
    argv = ["classify", "--input", str(src), "--output", str(out), "--labels", "Tools,Fruit"]
    argv += ["--backend", "fake", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "row 1001 (line 1002)" in err and "--skip-bad-rows" in err
    assert not out.exists()
    assert main([*argv, "--skip-bad-rows"]) == 0
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(results) == 2000  # one record per row; the rows after the bad one are all read
    bad = [r for r in results if r["error"]]
    assert len(bad) == 1 and "row 1001" in bad[0]["error"]["message"]
    assert [r["product_id"] for r in results[1001:1003]] == ["p1001", "p1002"]


BAD_LINES = {
    "lone surrogate in the id": '{"id": "\\ud800", "title": "hammer"}',
    "lone surrogate in an image path": '{"title": "hammer", "image_urls": ["a\\udfff.png"]}',
    "nested 100k deep": "[" * 100_000 + "]" * 100_000,
    "a 5,000-digit integer": '{"id": ' + "9" * 5000 + ', "title": "hammer"}',
    "not json": "{oops",
}


def test_bad_records_become_error_records_naming_their_line_and_resume_passes_them(
    tmp_path: Path,
) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [json.dumps({"id": "first", "title": "saw"}), *BAD_LINES.values()]
    lines.append(json.dumps({"id": "last", "title": "apple"}))
    src.write_text("\n".join(lines) + "\n")
    argv = ["classify", "--input", str(src), "--output", str(out), "--labels", "Tools,Fruit"]
    argv += ["--backend", "fake", "--no-progress"]
    assert main(argv) == 0
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(results) == len(lines)
    assert [r["product_id"] for r in (results[0], results[-1])] == ["first", "last"]
    for n, record in enumerate(results[1:-1], 2):
        assert record["error"] is not None and f"line {n}" in record["error"]["message"]
    assert main([*argv, "--resume"]) == 0  # a resumed run does not die at the same record
    assert len(out.read_text().splitlines()) == len(lines)


def test_the_writer_never_raises_on_a_record(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    writer = ResultWriter(out)
    writer.write(Classification(product_id="a\ud800b", error=None))
    writer.commit()
    assert json.loads(out.read_text())["product_id"] == "a\ud800b"


class _BrokenDisk:
    """diskcache.Cache methods that fail the way a full or truncated disk does."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    "method, error",
    [
        ("set", OSError(28, "No space left on device")),
        ("get", sqlite3.DatabaseError("database disk image is malformed")),
        ("set", sqlite3.OperationalError("disk I/O error")),
    ],
)
def test_a_failing_cache_warns_once_and_every_answer_is_kept(
    method: str,
    error: BaseException,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import diskcache

    monkeypatch.setattr(diskcache.Cache, method, _BrokenDisk(error))
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(src, 50)
    argv = ["classify", "--input", str(src), "--output", str(out), "--labels", "Tools,Fruit"]
    argv += ["--base-url", "http://127.0.0.1:1/v1", "--backend", "fake", "--no-progress"]
    argv += ["--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(results) == 50 and [r for r in results if r["error"]] == []
    err = capsys.readouterr().err
    assert err.count("going on without it") == 1


def test_a_corrupt_cache_database_is_a_warning_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    (cache / "responses").mkdir(parents=True)
    (cache / "responses" / "cache.db").write_bytes(b"this is not a database" * 100)
    argv = ["classify", "hammer", "--labels", "Tools,Fruit", "--backend", "fake"]
    assert main([*argv, "--cache-dir", str(cache)]) == 0
    assert "going on without it" in capsys.readouterr().err


def test_a_cache_folder_that_is_a_file_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cache").write_text("a file")
    argv = ["classify", "hammer", "--labels", "Tools,Fruit", "--backend", "fake"]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 2
    assert "--no-cache" in capsys.readouterr().err


@pytest.mark.allow_model_requests
@pytest.mark.parametrize(
    ("failing", "extra", "code"),
    [
        (50, [], 3),  # every item failed
        (0, [], 0),
        (25, [], 0),  # no limit by default
        (25, ["--max-error-rate", "0.4"], 3),
        (25, ["--max-error-rate", "0.5"], 0),
    ],
)
def test_the_exit_code_says_when_items_failed(
    failing: int,
    extra: list[str],
    code: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(src, 50)
    with FakeServer("llamacpp", keep_alive=True) as server:

        def respond(body: dict[str, Any]) -> Reply:
            n = int(re.search(r"hammer (\d+)", str(body["messages"])).group(1))  # type: ignore[union-attr]
            if n < failing:
                return Reply(status=400, body={"error": {"message": "bad request"}})
            return chat_reply("Tools")

        server.responder = respond
        argv = ["classify", "--input", str(src), "--output", str(out), "--labels", "Tools,Fruit"]
        argv += ["--base-url", server.base_url, "--no-cache", "--no-progress", *extra]
        assert main(argv) == code
    captured = capsys.readouterr()
    # The records are written either way; when every item failed, beside the output.
    written = out.with_name("out.failed.jsonl") if failing == 50 else out
    assert len(written.read_text().splitlines()) == 50
    assert captured.err.count("error: ") == min(failing, 20)  # per-item lines on stderr


def test_a_csv_without_a_title_column_exits_2_naming_the_columns_it_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.csv"
    src.write_text("sku,label\n1,hammer\n")
    argv = ["classify", "--input", str(src), "--labels", "Tools,Fruit", "--backend", "fake"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no title column" in err and "product_name" in err and "sku, label" in err


# -- what llmcat writes: no live formulas, no keys ------------------------------------------------


def test_review_csv_cells_are_never_live_formulas(tmp_path: Path) -> None:
    path = tmp_path / "review.csv"
    writer = ReviewWriter(path)
    product = Product(id="=1+1", title='=HYPERLINK("http://x","click")', brand="+brand")
    writer.add(product, Classification(product_id="=1+1", path=["@SUM(A1)"], confidence=0.2))
    writer.commit()
    with path.open(encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["id"] == "'=1+1" and row["title"].startswith("'=HYPERLINK")
    assert row["brand"] == "'+brand" and row["predicted"] == "'@SUM(A1)"
    assert not any(value.startswith(FORMULA_STARTS) for value in row.values())
    # read back as examples (a person filled in the category), the text is the product's own
    tax = tmp_path / "tax.txt"
    tax.write_text("Tools\nFruit\n")
    path.write_text(path.read_text(encoding="utf-8").rstrip("\r\n") + "Tools\n", encoding="utf-8")
    (example,) = load_examples(path, Taxonomy.from_file(tax))
    assert example.product.title == '=HYPERLINK("http://x","click")'
    assert example.product.id == "=1+1" and example.product.brand == "+brand"


@pytest.mark.parametrize(
    "text",
    [
        "cannot reach http://127.0.0.1:9/v1?key=sk-live-123456: refused",
        "cannot reach http://h/v1?api_key=sk-live-123456&x=1",
        "GET /models?token=sk-live-123456 failed",
        "server said: Authorization: Basic c2stbGl2ZS0xMjM0NTY=",
        "echoed Basic c2stbGl2ZS0xMjM0NTY= back",
        "http://user:sk-live-123456@host/v1 refused",
        "http://user:sk-live@123456@host/v1 refused",
    ],
)
def test_credentials_in_messages_are_redacted(text: str) -> None:
    cleaned = redact(text)
    assert "sk-live" not in cleaned and "123456" not in cleaned
    assert "c2stbGl2ZS0xMjM0NTY" not in cleaned


def test_product_words_after_basic_are_kept() -> None:
    assert redact("Basic Cotton Tee, Basic Shirts") == "Basic Cotton Tee, Basic Shirts"
