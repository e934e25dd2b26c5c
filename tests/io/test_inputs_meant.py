"""Inputs that mean what the user meant: one writer per output, labels as given, encodings that
are said rather than guessed."""

from __future__ import annotations

import csv
import json
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from llmcat import Classifier, ConfigError, FakeBackend, Taxonomy
from llmcat.backends.clients import fetch_json
from llmcat.cli import build_parser, main
from llmcat.cli.classify import taxonomy_from as _taxonomy
from llmcat.io.columns import Columns
from llmcat.io.inputs import read_records
from llmcat.io.output import ResultWriter
from llmcat.serve.server import VLLMServer
from tests.cli.test_resume import answering, cli, write_products
from tests.conftest import SHARED, require
from tests.fake_server import FakeServer, chat_reply


@pytest.mark.allow_model_requests
def test_a_second_writer_of_the_same_output_exits_2_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src, out = tmp_path / "products.jsonl", tmp_path / "results.jsonl"
    write_products(src, 300)
    with FakeServer("llamacpp") as server:
        answering(server, delay=0.01)
        first = subprocess.Popen(cli(server, src, out), stderr=subprocess.PIPE)
        partial = out.with_name(out.name + ".partial")
        deadline = time.monotonic() + 60
        while not partial.exists() and time.monotonic() < deadline:
            time.sleep(0.02)  # the first writer has started writing
        argv = ["classify", "--input", str(src), "--output", str(out), "--labels", "A,B"]
        assert main([*argv, "--backend", "fake", "--no-progress"]) == 2
        assert "another llmcat is writing" in capsys.readouterr().err
        _, err = first.communicate(timeout=120)
        assert first.returncode == 0, err
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["product_id"] for r in results] == [f"SKU-{i}" for i in range(300)]
    assert not out.with_name(out.name + ".lock").exists()
    assert main([*argv, "--backend", "fake", "--no-progress"]) == 0  # free again afterwards


# -- labels and taxonomies -----------------------------------------------------------------------


def labels_of(*argv: str) -> list[str]:
    args = build_parser().parse_args(["classify", "x", *argv])
    return [" > ".join(c.path) for c in _taxonomy(args)]


def test_a_label_with_a_comma_of_its_own_goes_in_label_or_a_labels_file(tmp_path: Path) -> None:
    food = "Food, Beverages & Tobacco"
    assert labels_of("--label", food, "--label", "Toys & Games") == [food, "Toys & Games"]
    listed = tmp_path / "labels.txt"
    listed.write_text(f"{food}\nToys & Games\n\n", encoding="utf-8")
    assert labels_of("--labels-file", str(listed)) == [food, "Toys & Games"]
    assert labels_of("--labels", "Shoes,Toys", "--label", food) == ["Shoes", "Toys", food]


def test_a_labels_file_may_describe_its_labels_after_a_tab(tmp_path: Path) -> None:
    listed = tmp_path / "labels.tsv"
    listed.write_text(
        "Home Furnishing\tcurtains, cushions,  bed linen\nBaby Care\nT-Shirts & Tops\t\n",
        encoding="utf-8",
    )
    args = build_parser().parse_args(["classify", "x", "--labels-file", str(listed)])
    taxonomy = _taxonomy(args)
    assert [c.name for c in taxonomy] == ["Home Furnishing", "Baby Care", "T-Shirts & Tops"]
    assert [c.description for c in taxonomy] == ["curtains, cushions, bed linen", "", ""]
    assert taxonomy.get("Home Furnishing").embedding_text == (
        "Home Furnishing: curtains, cushions, bed linen"
    )
    assert taxonomy.get("Baby Care").embedding_text == "Baby Care"
    # the description reaches the embedder (the lexical one here: "baby" alone names Baby
    # Care), and the answer is the label as written, never its description
    bare = Taxonomy.from_labels([c.name for c in taxonomy])
    for tree, expected in ((bare, "Baby Care"), (taxonomy, "Home Furnishing")):
        clf = Classifier(
            tree, backend=FakeBackend(), strategy="embedding", embedding_model="hashing"
        )
        assert clf.classify("Baby pink curtains and cushions").path == [expected]
        clf.close()
    orphan = tmp_path / "orphan.tsv"
    orphan.write_text("Shoes\n\tno label here\n", encoding="utf-8")
    args = build_parser().parse_args(["classify", "x", "--labels-file", str(orphan)])
    with pytest.raises(ConfigError, match="a description without a label"):
        _taxonomy(args)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    args = build_parser().parse_args(["classify", "x", "--labels-file", str(empty)])
    with pytest.raises(ConfigError, match=f"--labels-file {empty} holds no label"):
        _taxonomy(args)


@pytest.mark.parametrize(
    "labels",
    [
        "Shoes,shoes",
        "Mobile Phones,Mobile  Phones",
        "Mobile Phones,Mobile\u00a0Phones",
        "Cafe\u0301,Caf\u00e9",
    ],
)
def test_labels_that_read_alike_are_refused_naming_both(
    labels: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["classify", "x", "--labels", labels, "--backend", "fake"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    first, second = labels.split(",")
    assert f"{first!r} and {second!r}" in err
    assert "differ only in case, spacing or Unicode form" in err


def test_a_taxonomy_file_with_one_path_under_two_ids_is_refused_with_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    google = tmp_path / "google.txt"
    google.write_text(
        "# Google_Product_Taxonomy_Version: 2021-09-21\n1 - Toys\n2 - Toys > Puzzles\n"
        "3 - Toys > Puzzles\n",
        encoding="utf-8",
    )
    assert main(["taxonomy", "show", str(google)]) == 2
    err = capsys.readouterr().err
    assert "line 4" in err and "'2'" in err and "line 3" in err


def test_a_licence_file_is_not_a_taxonomy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    licence = tmp_path / "LICENSE.txt"
    licence.write_text(
        "MIT License\n\nCopyright (c) 2024 Someone\n\n"
        "Permission is hereby granted, free of charge, to any person obtaining a copy\n",
        encoding="utf-8",
    )
    assert main(["taxonomy", "show", str(licence)]) == 2
    assert "line 5 is not a category" in capsys.readouterr().err
    plain = tmp_path / "labels.txt"
    plain.write_text("Shoes\nMobile Phones\nToys & Games\n", encoding="utf-8")
    assert main(["taxonomy", "show", str(plain)]) == 0  # a plain list of labels is one


# -- encodings -------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".json"])
def test_text_is_decoded_as_said_never_into_replacement_characters(
    suffix: str, tmp_path: Path
) -> None:
    src = tmp_path / f"p{suffix}"
    body = {
        ".jsonl": '{"title": "café crème"}\n',
        ".csv": "id,title\n1,café crème\n",
        ".json": '[{"title": "café crème"}]',
    }[suffix]
    src.write_bytes(body.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"byte \d+ \(0xe9\)"):
        read_records(src)
    (record,) = list(read_records(src, encoding="latin-1"))
    assert isinstance(record, dict) and record["title"] == "café crème"
    src.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))  # UTF-8 with a byte-order mark
    (record,) = list(read_records(src))
    assert isinstance(record, dict) and record["title"] == "café crème"


# -- columns are chosen ----------------------------------------------------------------------------


@pytest.mark.allow_model_requests
def test_the_raw_flipkart_csv_sends_only_the_chosen_columns_to_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = SHARED / "datasets" / "flipkart_1050.csv"
    require(source.is_file(), f"the Flipkart data in {source}")
    with source.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        rows = [row for _, row in zip(range(20), reader, strict=False)]
    raw = tmp_path / "flipkart_raw.csv"
    with raw.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "out.jsonl"
    with FakeServer("llamacpp") as server:
        server.responder = lambda body: chat_reply("Clothing")
        argv = ["classify", "--input", str(raw), "--output", str(out), "--no-progress"]
        argv += ["--columns", "title=product_name,id=pid", "--labels", "Clothing,Watches,Home"]
        argv += ["--base-url", server.base_url, "--no-cache", "--strategy", "flat"]
        assert main(argv) == 0
        prompts = [" ".join(m["content"] for m in body["messages"]) for body in server.requests]
    assert len(prompts) == 20
    for row in rows:
        sent = next(p for p in prompts if row["product_name"].split()[0] in p)
        assert row["product_category_tree"] not in sent  # the gold label never leaks
        assert row["product_url"] not in sent and row["uniq_id"] not in sent
        for field in ("Description", "Brand", "retail_price", "product_specifications", "image"):
            assert field not in sent, field  # no other field or attribute line was rendered
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["product_id"] for r in results] == [row["pid"] for row in rows]
    err = capsys.readouterr().err
    assert "columns: id <- pid, title <- product_name; attributes: none" in err
    assert "not used: uniq_id" in err and "product_category_tree" in err


def test_columns_and_attributes_choose_what_a_record_holds() -> None:
    record = {"sku": "7", "name": "oak table", "colour": "brown", "category": "Furniture"}
    chosen = Columns.parse("id=sku,title=name", "colour")
    assert chosen.select(record) == {"id": "7", "title": "oak table", "colour": "brown"}
    assert Columns.parse("id=sku").select(record) == {"id": "7"}  # a mapping names every field
    # fields by their own names, and the common names of a title and an id
    assert Columns().select(record) == {"id": "7", "title": "oak table"}
    everything = Columns.parse("id=sku,title=name", "*").select(record)
    assert everything == {
        "id": "7",
        "title": "oak table",
        "colour": "brown",
        "category": "Furniture",
    }
    for bad in ("title", "colour=x", "title=a,title=b"):
        with pytest.raises(ConfigError):
            Columns.parse(bad)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            ['{"id": "a", "title": "x"}', '{"id": "", "title": "y"}'],
            ["ok", "line 2: the id is empty"],
        ),
        (
            ['{"id": "a", "title": "x"}', '{"id": "a", "title": "y"}'],
            ["ok", "line 2: id 'a' is already line 1's"],
        ),
        (
            ['{"title": "x"}', '{"id": "1", "title": "y"}'],
            ["ok", "line 2: id '1' is already line 1's"],
        ),
    ],
)
def test_empty_or_duplicate_ids_are_error_records_naming_the_line(
    lines: list[str], expected: list[str], tmp_path: Path
) -> None:
    src, out = tmp_path / "p.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = ["classify", "--input", str(src), "--output", str(out), "--labels", "A,B"]
    assert main([*argv, "--backend", "fake", "--no-progress"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    got = ["ok" if r["error"] is None else r["error"]["message"] for r in records]
    assert got == expected


def test_classify_frame_takes_the_same_column_choice() -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {"pid": ["X1", "X2"], "product_name": ["oak table", "red shoe"], "gold": ["F", "S"]}
    )
    backend = FakeBackend()
    clf = Classifier(["Furniture", "Shoes"], backend=backend)
    out = clf.classify_frame(frame, columns=Columns.parse("title=product_name,id=pid"))
    assert list(out.index) == [0, 1] and list(out["category_id"]) == ["Furniture", "Furniture"]
    prompts = [" ".join(m.content for m in r.messages) for r in backend.requests]
    assert len(prompts) == 2 and not any("gold" in p for p in prompts)
    assert any("oak table" in p for p in prompts)


# -- resume checks identity ------------------------------------------------------------------------


def _interrupted(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    """Run a batch that is stopped just before it commits: every record is in the partial file."""

    def stop(self: ResultWriter) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(ResultWriter, "commit", stop)
        assert main(argv) == 130


@pytest.mark.parametrize("stopped", [True, False], ids=["stopped", "finished"])
@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("another file of the same length without ids", "the input changed"),
        ("changed titles with the same ids", "the input changed"),
        ("--min-confidence", "min_confidence: None -> 0.4"),
        ("--strategy", "strategy"),
        ("--attributes", "attributes: None -> 'colour'"),
    ],
)
def test_resume_refuses_what_would_mix_two_runs_in_one_file(
    change: str,
    named: str,
    stopped: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A stopped run's partial file, or a finished output (issue 41: a finished output was
    resumed unchecked, another --min-confidence or input accepted), resumed with another
    input or options: exit 2 naming the change, the output as it was."""
    src, out = tmp_path / "p.jsonl", tmp_path / "out.jsonl"
    with_ids = "without ids" not in change
    rows = [{"title": f"hammer {i}", "colour": "red"} for i in range(10)]
    for i, row in enumerate(rows):
        if with_ids:
            row["id"] = f"p{i}"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    argv = ["classify", "--input", str(src), "--output", str(out), "--labels", "Tools,Fruit"]
    argv += ["--backend", "fake", "--no-progress"]
    if stopped:
        _interrupted(monkeypatch, argv)
    else:
        assert main(argv) == 0
    before = out.read_bytes() if out.exists() else None
    again = list(argv)
    if "input" in named:
        other = [{**r, "title": f"apple {i}"} for i, r in enumerate(rows)]
        src.write_text("".join(json.dumps(r) + "\n" for r in other), encoding="utf-8")
    elif change == "--min-confidence":
        again += ["--min-confidence", "0.4"]
    elif change == "--strategy":
        again += ["--strategy", "embedding", "--embedding-model", "hashing"]
    else:
        again += ["--attributes", "colour"]
    capsys.readouterr()
    assert main([*again, "--resume"]) == 2
    assert named in capsys.readouterr().err
    assert (out.read_bytes() if out.exists() else None) == before
    assert not out.with_name(out.name + ".partial").exists() or stopped
    assert main([*argv, "--resume"]) == (0 if "input" not in named else 2)


@pytest.mark.parametrize("state", ["finished", "stopped"])
def test_a_resume_that_cannot_check_what_it_keeps_is_refused(
    state: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Records without their run record (an output from before run records, a partial file
    whose run file was lost) cannot be checked against this run: exit 2 saying why, nothing
    changed. (Issue 41: they were kept unchecked.)"""
    src, out = tmp_path / "p.jsonl", tmp_path / "out.jsonl"
    write_products(src, 6)
    argv = ["classify", "--input", str(src), "--output", str(out), "--labels", "Tools,Fruit"]
    argv += ["--backend", "fake", "--no-progress"]
    assert main(argv) == 0
    out.with_name(out.name + ".run.json").unlink()
    if state == "stopped":
        out.rename(out.with_name(out.name + ".partial"))
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 2
    err = capsys.readouterr().err
    assert "no run record" in err and "cannot be checked" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == files


@pytest.mark.parametrize("torn", ['{"model": ', "", "[1, 2]", "\x00\xff"])
def test_a_corrupt_run_record_refuses_the_resume_without_a_traceback(
    torn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 41: a corrupt OUTPUT.partial.run.json ended --resume in a JSONDecodeError."""
    src, out = tmp_path / "p.jsonl", tmp_path / "out.jsonl"
    write_products(src, 6)
    argv = ["classify", "--input", str(src), "--output", str(out), "--labels", "Tools,Fruit"]
    argv += ["--backend", "fake", "--no-progress"]
    _interrupted(monkeypatch, argv)
    run = out.with_name(out.name + ".partial.run.json")
    run.write_bytes(torn.encode("latin-1"))
    partial = out.with_name(out.name + ".partial").read_bytes()
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"{run} (the run record" in err and "corrupt" in err and "Traceback" not in err
    assert out.with_name(out.name + ".partial").read_bytes() == partial and not out.exists()


def test_resume_with_the_same_input_and_options_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, out = tmp_path / "p.jsonl", tmp_path / "out.jsonl"
    write_products(src, 12)
    argv = ["classify", "--input", str(src), "--output", str(out), "--labels", "Tools,Fruit"]
    argv += ["--backend", "fake", "--no-progress", "--min-confidence", "0.2"]
    _interrupted(monkeypatch, argv)
    assert main([*argv, "--resume"]) == 0
    assert len(out.read_text().splitlines()) == 12
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out.jsonl."))
    assert leftovers == ["out.jsonl.run.json"]  # no partial or lock: the output's run record


# -- deadlines on every probe ----------------------------------------------------------------------


class TricklingServer:
    """Answers every request with headers at once, then one byte of body every 0.5 s (for at
    most 60 s): a server that never times out a per-read timeout."""

    def __init__(self, *, in_headers: bool = False) -> None:
        self.in_headers = in_headers  # trickle a header line instead of the body
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)
                if self.in_headers:
                    connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                else:
                    connection.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 100000\r\n\r\n{"
                    )
                for _ in range(120):
                    if self.stop.wait(0.5):
                        return
                    connection.sendall(b" ")
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.socket.close()


@pytest.mark.allow_model_requests
def test_probes_have_a_deadline_against_a_trickling_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = TricklingServer()
    try:
        base = f"http://127.0.0.1:{server.port}"
        started = time.monotonic()
        assert fetch_json(f"{base}/version", deadline=1.5) is None
        assert fetch_json(f"{base}/tokenize", data=b"{}", deadline=1.5) is None
        assert time.monotonic() - started < 10  # each gave up at its deadline, not the server's
        argv = ["classify", "x", "--labels", "A,B", "--base-url", f"{base}/v1", "--timeout", "2"]
        started = time.monotonic()
        assert main([*argv, "--no-cache"]) != 0
        # five tries of GET /models, each cut at 2 s, and the waits between them (it was >150 s)
        assert time.monotonic() - started < 45
        assert "did not finish within 2s" in capsys.readouterr().err
    finally:
        server.close()
    slow_headers = TricklingServer(in_headers=True)
    try:
        started = time.monotonic()
        assert VLLMServer(port=slow_headers.port).healthy(deadline=1.5) is False
        assert time.monotonic() - started < 5
    finally:
        slow_headers.close()


# -- issue 41: setup errors, not silent drops or tracebacks ---------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--labels", "Shoes,,Toys"], "label 2 of 3 is blank"),
        (["--labels", "Shoes,Toys,"], "label 3 of 3 is blank"),
        (["--label", "Shoes", "--label", " "], "label 2 of 2 is blank"),
        (["--label", "Shoes\nToys", "--label", "Garden"], "holds a line break"),
        (["--label", "Shoes\u2028Boots", "--label", "Garden"], "holds a line break"),
    ],
)
def test_a_blank_label_or_one_with_a_line_break_is_refused(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A label holding a newline reached the prompt as two label lines; blank labels were
    dropped silently."""
    assert main(["classify", "x", *argv, "--backend", "fake"]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    with pytest.raises(ConfigError, match=says.split(" of ")[0]):
        Classifier(argv[1::2] if argv[0] == "--label" else argv[1].split(","), backend="fake")


def test_a_million_labels_are_refused_at_once() -> None:
    """A Classifier with 1,000,000 labels neither answered nor refused within 150 s."""
    labels = [f"label {i}" for i in range(1_000_000)]
    with pytest.raises(ConfigError, match=r"1,000,000 labels: at most 100,000"):
        Classifier(labels, backend="fake")


@pytest.mark.parametrize(
    ("columns", "attributes", "says"),
    [
        ("id=sku", None, "--columns id=sku maps no title column"),
        ("title=name,brand=maker", None, "--columns brand=maker names columns it does not have"),
        ("title=name", "colour,weight", "--attributes weight names columns it does not have"),
    ],
)
def test_columns_a_file_cannot_give_are_a_setup_error_naming_its_columns(
    columns: str,
    attributes: str | None,
    says: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--columns without a title column made every row an error record (exit 3); --attributes
    naming a missing column was ignored silently."""
    src, out = tmp_path / "in.csv", tmp_path / "out.jsonl"
    src.write_text("sku,name,title,colour\n1,oak table,oak,brown\n2,pine chair,pine,white\n")
    argv = ["classify", "--input", str(src), "--output", str(out), "--labels", "Tools,Furniture"]
    argv += ["--backend", "fake", "--columns", columns]
    if attributes is not None:
        argv += ["--attributes", attributes]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and "columns here: sku, name, title, colour" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    lines = tmp_path / "in.jsonl"  # a JSON record has no header: the title rule still holds
    lines.write_text(json.dumps({"sku": "1", "name": "oak table"}) + "\n")
    if "title" not in columns:
        assert main([*argv[:2], str(lines), *argv[3:]]) == 2
        assert "maps no title column" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["folder", "symlink"])
def test_a_lock_path_that_is_a_folder_or_a_link_is_a_setup_error(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An OUTPUT.lock that is a folder gave exit 1 with a raw errno; a lock path that is a
    symbolic link was followed (and the file it points at created and deleted)."""
    src, out = tmp_path / "p.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps({"id": "1", "title": "oak table"}) + "\n")
    lock = tmp_path / "out.jsonl.lock"
    elsewhere = tmp_path / "precious.txt"
    if kind == "folder":
        lock.mkdir()
    else:
        elsewhere.write_text("keep me\n")
        lock.symlink_to(elsewhere)
    argv = ["classify", "--input", str(src), "--output", str(out), "--labels", "Tools,Fruit"]
    assert main([*argv, "--backend", "fake"]) == 2
    err = capsys.readouterr().err
    assert f"the lock file {lock} is a " in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    assert kind == "folder" or (lock.is_symlink() and elsewhere.read_text() == "keep me\n")
