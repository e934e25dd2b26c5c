"""Inputs that mean what the user meant: one writer per output, labels as given, encodings that
are said rather than guessed."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from llmcat import ConfigError
from llmcat.cli import _taxonomy, build_parser, main
from llmcat.inputs import read_records

from .fake_server import FakeServer
from .test_resume import answering, cli, write_products


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
