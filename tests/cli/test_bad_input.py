"""Bad input, table-driven: a setup mistake is a clear exit-2 error (never a traceback); a bad item
is an error record at its position and the batch goes on; odd but valid input just works."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from llmcat import Classifier, FakeBackend, Product
from llmcat.cli import main
from llmcat.io.inputs import coerce_product
from llmcat.llm.labels import match_label

TAXONOMY_OK = "Apparel > Shoes\nApparel > Shirts\nToys\n"

# -- setup mistakes: exit 2 with a message ---------------------------------------------------------

#: name -> (argv after "llmcat", files to create {name: bytes}, a fragment of the message)
CONFIG_CASES: dict[str, tuple[list[str], dict[str, bytes], str]] = {
    "concurrency 0": (
        ["classify", "x", "--labels", "A,B", "--concurrency", "0"],
        {},
        "concurrency",
    ),
    "concurrency -1": (
        ["classify", "x", "--labels", "A,B", "--concurrency", "-1"],
        {},
        "concurrency",
    ),
    "timeout 0": (["classify", "x", "--labels", "A,B", "--timeout", "0"], {}, "timeout"),
    "timeout -5": (["classify", "x", "--labels", "A,B", "--timeout", "-5"], {}, "timeout"),
    "timeout nan": (["classify", "x", "--labels", "A,B", "--timeout", "nan"], {}, "timeout"),
    "timeout inf": (["classify", "x", "--labels", "A,B", "--timeout", "inf"], {}, "timeout"),
    "input is a folder": (["classify", "--input", "{tmp}", "--labels", "A,B"], {}, "folder"),
    "input missing": (
        ["classify", "--input", "{tmp}/none.jsonl", "--labels", "A,B"],
        {},
        "does not exist",
    ),
    "input binary": (
        ["classify", "--input", "{tmp}/bin.jsonl", "--labels", "A,B"],
        {"bin.jsonl": b"\x00\x01\x02"},
        "binary",
    ),
    "input wrong suffix": (
        ["classify", "--input", "{tmp}/p.xlsx", "--labels", "A,B"],
        {"p.xlsx": b"x"},
        ".jsonl",
    ),
    "json not json": (
        ["classify", "--input", "{tmp}/p.json", "--labels", "A,B"],
        {"p.json": b"{oops"},
        "not JSON",
    ),
    "latin-1 bytes in jsonl": (
        ["classify", "--input", "{tmp}/p.jsonl", "--labels", "A,B"],
        {"p.jsonl": b'{"title": "caf\xe9"}\n'},
        "byte 14 (0xe9)",
    ),
    "latin-1 bytes in csv": (
        ["classify", "--input", "{tmp}/p.csv", "--labels", "A,B"],
        {"p.csv": b"id,title\n1,caf\xe9\n"},
        "--encoding",
    ),
    "unknown encoding": (
        ["classify", "--input", "{tmp}/p.jsonl", "--labels", "A,B", "--encoding", "nope"],
        {"p.jsonl": b'{"title": "x"}\n'},
        "unknown encoding",
    ),
    "output is a folder": (
        ["classify", "--input", "{tmp}/p.jsonl", "--output", "{tmp}", "--labels", "A,B"],
        {"p.jsonl": b'{"title":"x"}\n'},
        "folder",
    ),
    "output under a file": (
        [
            "classify",
            "--input",
            "{tmp}/p.jsonl",
            "--output",
            "{tmp}/p.jsonl/out.jsonl",
            "--labels",
            "A,B",
        ],
        {"p.jsonl": b'{"title":"x"}\n'},
        "output",
    ),
    "output is the input": (
        ["classify", "--input", "{tmp}/p.jsonl", "--output", "{tmp}/p.jsonl", "--labels", "A,B"],
        {"p.jsonl": b'{"title":"x"}\n'},
        "is the same file as --input",
    ),
    "output is the taxonomy": (
        [
            "classify",
            "--input",
            "{tmp}/p.jsonl",
            "--taxonomy",
            "{tmp}/t.txt",
            "--output",
            "{tmp}/t.txt",
        ],
        {"p.jsonl": b'{"title":"x"}\n', "t.txt": b"A > B\nC\n"},
        "is the same file as --taxonomy",
    ),
    "review-out is the examples": (
        [
            "classify",
            "--input",
            "{tmp}/p.jsonl",
            "--labels",
            "A,B",
            "--examples",
            "{tmp}/e.jsonl",
            "--review-out",
            "{tmp}/e.jsonl",
        ],
        {"p.jsonl": b'{"title":"x"}\n', "e.jsonl": b'{"title":"y","category":"A"}\n'},
        "is the same file as --examples",
    ),
    "resume without output": (
        ["classify", "--input", "{tmp}/p.jsonl", "--resume", "--labels", "A,B"],
        {"p.jsonl": b'{"title":"x"}\n'},
        "--output",
    ),
    "taxonomy binary": (
        ["classify", "x", "--taxonomy", "{tmp}/t.txt"],
        {"t.txt": b"\x89PNG\x00\x00\x1a"},
        "binary",
    ),
    "taxonomy latin-1": (
        ["classify", "x", "--taxonomy", "{tmp}/t.txt"],
        {"t.txt": "Caf\xe9 > Th\xe9\n".encode("latin-1")},
        "not UTF-8",
    ),
    "taxonomy missing": (["classify", "x", "--taxonomy", "{tmp}/none.txt"], {}, "cannot read"),
    "taxonomy empty": (
        ["classify", "x", "--taxonomy", "{tmp}/t.txt"],
        {"t.txt": b"\n# only a comment\n"},
        "taxonomy",
    ),
    "show binary taxonomy": (["taxonomy", "show", "{tmp}/t.txt"], {"t.txt": b"\x00\x00"}, "binary"),
    "show latin-1 taxonomy": (
        ["taxonomy", "show", "{tmp}/t.txt"],
        {"t.txt": "\xe9t\xe9\n".encode("latin-1")},
        "not UTF-8",
    ),
    "labels only commas": (["classify", "x", "--labels", ",,"], {}, "label"),
    "labels and taxonomy": (
        ["classify", "x", "--labels", "A", "--taxonomy", "{tmp}/t.txt"],
        {"t.txt": TAXONOMY_OK.encode()},
        "not both",
    ),
    "no categories": (["classify", "x"], {}, "--labels"),
    "no product": (["classify", "--labels", "A,B"], {}, "--input"),
    "title and input": (
        ["classify", "x", "--input", "{tmp}/p.jsonl", "--labels", "A"],
        {"p.jsonl": b"{}\n"},
        "not both",
    ),
    "beam 0": (["classify", "x", "--labels", "A,B", "--beam", "0"], {}, "beam"),
    "shortlist-k 0": (
        ["classify", "x", "--labels", "A,B", "--shortlist-k", "0"],
        {},
        "shortlist_k",
    ),
    "review threshold 2": (
        ["classify", "x", "--labels", "A,B", "--review-threshold", "2"],
        {},
        "review_threshold",
    ),
    "min confidence -1": (
        ["classify", "x", "--labels", "A,B", "--min-confidence", "-1"],
        {},
        "min_confidence",
    ),
    "calibration missing file": (
        ["classify", "x", "--labels", "A,B", "--calibration", "{tmp}/none.json"],
        {},
        "calibration",
    ),
    "base url without scheme": (
        ["classify", "x", "--labels", "A,B", "--base-url", "127.0.0.1:8000/v1"],
        {},
        "not an http",
    ),
    "base url ftp": (
        ["classify", "x", "--labels", "A,B", "--base-url", "ftp://host/v1"],
        {},
        "not an http",
    ),
    "base url password hidden": (
        ["classify", "x", "--labels", "A,B", "--base-url", "ftp://me:hunter2@host/v1"],
        {},
        "***@host",
    ),
    "template dir missing": (
        ["classify", "x", "--labels", "A,B", "--template-dir", "{tmp}/nope"],
        {},
        "template folder",
    ),
    "template include parent": (
        ["classify", "x", "--labels", "A,B", "--template-dir", "{tmp}/tpl"],
        {
            "tpl/classify.j2": b'{% block system %}{% include "../secret.j2" %}{% endblock %}{% block user %}u{% endblock %}'
        },
        "not found",
    ),
    "template include absolute": (
        ["classify", "x", "--labels", "A,B", "--template-dir", "{tmp}/tpl"],
        {
            "tpl/classify.j2": b'{% block system %}{% include "/etc/passwd" %}{% endblock %}{% block user %}u{% endblock %}'
        },
        "not found",
    ),
    "template syntax error": (
        ["classify", "x", "--labels", "A,B", "--template-dir", "{tmp}/tpl"],
        {"tpl/classify.j2": b"{% block system %}{{ oops"},
        "line",
    ),
    "template lacks a block": (
        ["classify", "x", "--labels", "A,B", "--template-dir", "{tmp}/tpl"],
        {"tpl/classify.j2": b"{% block system %}s{% endblock %}"},
        "lacks",
    ),
    "describe unknown style": (["describe", "x", "--style", "nonexistent"], {}, "not found"),
    "describe max words 0": (["describe", "x", "--max-words", "0"], {}, "body_words"),
    "describe bullets 11": (["describe", "x", "--bullets", "11"], {}, "bullets"),
    "describe title chars 5": (["describe", "x", "--title-chars", "5"], {}, "title_chars"),
    "describe attr without =": (["describe", "x", "--attr", "colour"], {}, "KEY=VALUE"),
    "flat too wide": (
        ["classify", "x", "--taxonomy", "{tmp}/t.txt", "--strategy", "flat"],
        {"t.txt": "\n".join(f"label {i}" for i in range(2500)).encode()},
        "too many",
    ),
    "hierarchical level too wide": (
        ["classify", "x", "--taxonomy", "{tmp}/t.txt", "--strategy", "hierarchical"],
        {"t.txt": "\n".join(f"label {i}" for i in range(10_000)).encode()},
        "too many",
    ),
    "shortlist k too large": (
        [
            "classify",
            "x",
            "--taxonomy",
            "{tmp}/t.txt",
            "--strategy",
            "shortlist",
            "--shortlist-k",
            "3000",
        ],
        {"t.txt": "\n".join(f"label {i}" for i in range(3000)).encode()},
        "too many",
    ),
}


@pytest.mark.parametrize("name", sorted(CONFIG_CASES))
def test_setup_mistakes_exit_2_with_a_clear_message(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, files, fragment = CONFIG_CASES[name]
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--base-url" not in argv and argv[0] != "taxonomy":
        argv += ["--backend", "fake"]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2, err
    assert fragment in err, err
    assert "Traceback" not in err
    if name == "base url password hidden":
        assert "hunter2" not in err


def test_auto_without_an_embedder_refuses_a_level_too_wide(monkeypatch: pytest.MonkeyPatch) -> None:
    import llmcat.classify.classifier
    from llmcat import ConfigError

    monkeypatch.setattr(llmcat.classify.classifier, "local_embedder_available", lambda: False)
    with pytest.raises(ConfigError, match=r"too many.*shortlist"):
        Classifier([f"label {i}" for i in range(10_000)], backend=FakeBackend())


# -- bad items: an error record at its position, the batch goes on ---------------------------------

#: name -> (file name, content, expected per record: "ok" or the error type)
ITEM_CASES: dict[str, tuple[str, bytes, list[str]]] = {
    "jsonl not json": (
        "p.jsonl",
        b'{"title":"a"}\n{oops\n{"title":"b"}\n',
        ["ok", "InputError", "ok"],
    ),
    "jsonl a number": ("p.jsonl", b"42\n", ["InputError"]),
    "jsonl a list": ("p.jsonl", b'["a"]\n', ["InputError"]),
    "jsonl null": ("p.jsonl", b"null\n", ["InputError"]),
    "jsonl bare string": ("p.jsonl", b'"Nike shoes"\n', ["ok"]),
    "empty title": ("p.jsonl", b'{"title": ""}\n', ["InputError"]),
    "blank title": ("p.jsonl", b'{"title": "   \\t "}\n', ["InputError"]),
    "zero-width title": (
        "p.jsonl",
        '{"title": "\u200b\u200c\u200d\ufeff"}\n'.encode(),
        ["InputError"],
    ),
    "null title": ("p.jsonl", b'{"title": null}\n', ["InputError"]),
    "no title": ("p.jsonl", b'{"name_of_thing": "x"}\n', ["InputError"]),
    "title a number": ("p.jsonl", b'{"title": 1234}\n', ["ok"]),
    "null brand": ("p.jsonl", b'{"title": "x", "brand": null}\n', ["ok"]),
    "null description": ("p.jsonl", b'{"title": "x", "description": null}\n', ["ok"]),
    "null attributes": ("p.jsonl", b'{"title": "x", "attributes": null}\n', ["ok"]),
    "null image urls": ("p.jsonl", b'{"title": "x", "image_urls": null}\n', ["ok"]),
    "null attribute value": (
        "p.jsonl",
        b'{"title": "x", "attributes": {"a": null, "b": 1}}\n',
        ["ok"],
    ),
    "attributes bad json text": (
        "p.jsonl",
        b'{"title": "x", "attributes": "{bad"}\n',
        ["InputError"],
    ),
    "attributes a list": ("p.jsonl", b'{"title": "x", "attributes": [1, 2]}\n', ["InputError"]),
    "numeric id": ("p.jsonl", b'{"id": 5, "title": "x"}\n', ["ok"]),
    "byte-order mark jsonl": (
        "p.jsonl",
        b'\xef\xbb\xbf{"title": "x"}\n{"title": "y"}\n',
        ["ok", "ok"],
    ),
    "crlf lines": ("p.jsonl", b'{"title": "x"}\r\n{"title": "y"}\r\n', ["ok", "ok"]),
    "blank lines skipped": ("p.jsonl", b'\n{"title": "x"}\n\n\n{"title": "y"}\n', ["ok", "ok"]),
    "control characters": ("p.jsonl", b'{"title": "Nike\\u0000 \\u0007shoes"}\n', ["ok"]),
    "very long title": ("p.jsonl", json.dumps({"title": "word " * 5000}).encode() + b"\n", ["ok"]),
    "emoji and rtl": ("p.jsonl", '{"title": "👟 حذاء רץ"}\n'.encode(), ["ok"]),
    "latin-1 bytes read as latin-1": ("p.jsonl", b'{"title": "caf\xe9"}\n', ["ok"]),
    "json array": ("p.json", b'[{"title": "a"}, {"title": "b"}]', ["ok", "ok"]),
    "json array with a bad item": (
        "p.json",
        b'[{"title": "a"}, 7, "c", {"title": ""}]',
        ["ok", "InputError", "ok", "InputError"],
    ),
    "json single object": ("p.json", b'{"title": "a"}', ["ok"]),
    "json with bom": ("p.json", b'\xef\xbb\xbf[{"title": "a"}]', ["ok"]),
    "csv": ("p.csv", b"id,title,brand,colour\n1,Nike shoes,Nike,black\n", ["ok"]),
    "csv byte-order mark": (
        "p.csv",
        b"\xef\xbb\xbfid,title\n1,Nike shoes\n2,Toy car\n",
        ["ok", "ok"],
    ),
    "csv empty title cell": ("p.csv", b"id,title\n1,\n2,Toy car\n", ["InputError", "ok"]),
    "csv quoted newline": ("p.csv", b'id,title\n1,"Nike\nshoes"\n', ["ok"]),
    "tsv": ("p.tsv", b"id\ttitle\n1\tNike shoes\n", ["ok"]),
}


@pytest.mark.parametrize("name", sorted(ITEM_CASES))
def test_bad_items_become_records_at_their_position(name: str, tmp_path: Path) -> None:
    filename, content, expected = ITEM_CASES[name]
    src, out = tmp_path / filename, tmp_path / "out.jsonl"
    src.write_bytes(content)
    encoding = ["--encoding", "latin-1"] if "latin-1" in name else []
    argv = [
        "classify",
        "--input",
        str(src),
        "--output",
        str(out),
        "--labels",
        "A,B",
        "--backend",
        "fake",
        *encoding,
    ]
    every_item_failed = "ok" not in expected
    assert main(argv) == (3 if every_item_failed else 0)  # the records are written either way
    # a batch of error records only goes beside the output, never over it
    written = tmp_path / "out.failed.jsonl" if every_item_failed else out
    assert not (every_item_failed and out.exists())
    records = [json.loads(line) for line in written.read_text().splitlines()]
    got = ["ok" if r["error"] is None else r["error"]["type"] for r in records]
    assert got == expected


# -- the Python API and the answer matcher ---------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"brand": None},
        {"description": None},
        {"attributes": None},
        {"image_urls": None},
        {"id": None},
        {"brand": math.nan},
        {"description": math.nan, "brand": math.nan},
    ],
)
def test_missing_values_mean_not_given(fields: dict[str, Any]) -> None:
    product = Product(title="x", **fields)
    assert product.brand == "" and product.attributes == {}
    assert coerce_product({"title": "x", **fields}, 0).title == "x"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Not Toys", None),
        ("not toys", None),
        ("It isn't Toys", None),
        ("Neither Toys", None),
        ("anything except Toys", None),
        ("It is not Shoes, it is Toys", "Toys"),
        ("Toys", "Toys"),
        ("The answer is: Toys.", "Toys"),
    ],
)
def test_negations_are_not_mapped_to_a_label(answer: str, expected: str | None) -> None:
    assert match_label(answer, ["Shoes", "Mobile Phones", "Toys"]) == expected
