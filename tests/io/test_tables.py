"""Columnar data: DataFrames come back with result columns, their index, order and columns kept;
Parquet goes in and out of the CLI and round-trips every field, alternatives and error records
included."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmcat import Classifier, ConfigError, Describer, FakeBackend
from llmcat.cli import main

LABELS = ["Shoes", "Phones", "Toys"]
PROBABILITIES = {"Shoes": 0.6, "Phones": 0.3, "Toys": 0.1}


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "title": ["running shoes", "   ", "smart phone", "teddy bear"],
            "brand": ["Nike", None, "Acme", None],
            "sku": ["s-1", "s-2", "s-3", "s-4"],
        },
        index=pd.Index([40, 10, 30, 20], name="row"),
    )


def test_a_dataframe_comes_back_with_result_columns_index_and_order_kept() -> None:
    clf = Classifier(LABELS, backend=FakeBackend(choice_probabilities=PROBABILITIES))
    df = frame()
    out = clf.classify_frame(df)
    assert list(out.index) == [40, 10, 30, 20] and out.index.name == "row"
    assert list(out.columns[:3]) == ["title", "brand", "sku"]
    assert out[["title", "brand", "sku"]].equals(df)  # the caller's columns, untouched
    assert list(df.columns) == ["title", "brand", "sku"]  # and the caller's frame too
    assert out.loc[40, "path"] == "Shoes" and out.loc[40, "confidence"] == pytest.approx(0.6)
    assert out.loc[40, "alternatives"][0]["path"] == ["Shoes"]
    assert pd.isna(out.loc[40, "error"]) and not out.loc[40, "needs_review"]
    # Typed columns: describe() and filters work on them.
    assert str(out["confidence"].dtype) == "float64" and out["needs_review"].dtype == bool
    assert str(out["path"].dtype) == "string" and str(out["category_id"].dtype) == "string"
    assert out["confidence"].describe()["count"] == 3
    # The row with an empty title is an error record in its own place, not a lost row.
    assert pd.isna(out.loc[10, "category_id"]) and "empty title" in out.loc[10, "error"]
    assert pd.isna(out.loc[10, "confidence"]) and not out.loc[10, "needs_review"]
    with pytest.raises(ConfigError, match="already has column"):
        clf.classify_frame(out)
    again = clf.classify_frame(out, prefix="llmcat_")
    assert list(again["llmcat_path"]) == list(out["path"])


def test_copy_for_a_dataframe() -> None:
    describer = Describer(backend=FakeBackend())
    out = describer.describe_frame(frame().drop(index=10))
    assert list(out.index) == [40, 30, 20]
    assert {"copy_title", "copy_bullets", "copy_body", "copy_flagged", "error"} <= set(out.columns)
    assert out["title"].tolist() == ["running shoes", "smart phone", "teddy bear"]


def test_parquet_in_and_out_of_the_cli_round_trips_every_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "products.parquet"
    table = pa.table(
        {
            "id": ["a", "b", "c"],
            "title": ["running shoes", "", "smart phone"],
            "attributes": pa.array(
                [[("colour", "red")], [], [("memory", "128 GB")]],
                type=pa.map_(pa.string(), pa.string()),
            ),
        }
    )
    pq.write_table(table, source)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    common = ["classify", "--input", str(source), "--taxonomy", str(labels), "--backend", "fake"]
    # Separate caches: both runs are cold, so usage and cached are comparable too.
    assert main([*common, "--output", str(tmp_path / "out.jsonl"), "--cache-dir", "c1"]) == 0
    assert main([*common, "--output", str(tmp_path / "out.parquet"), "--cache-dir", "c2"]) == 0
    expected = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    got = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["product_id"] for r in got] == ["a", "b", "c"]
    assert got[1]["error"]["type"] == expected[1]["error"]["type"] == "InputError"
    for mine, theirs in zip(got, expected, strict=True):
        assert mine == theirs
    assert not (tmp_path / "out.parquet.partial").exists()
    # A finished Parquet output resumes as a JSONL one does: nothing left to run, same file.
    resume = ["--output", str(tmp_path / "out.parquet"), "--resume", "--cache-dir", "c2"]
    assert main([*common, *resume]) == 0
    assert pq.read_table(tmp_path / "out.parquet").to_pylist() == got


def test_a_file_that_is_not_parquet_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "products.parquet"
    bad.write_text("title\nshoes\n")
    labels = tmp_path / "labels.txt"
    labels.write_text("Shoes\n")
    argv = ["classify", "--input", str(bad), "--taxonomy", str(labels), "--backend", "fake"]
    assert main(argv) == 2


def test_experts_keyed_by_category_round_trip_as_json(tmp_path: Path) -> None:
    from llmcat.io.tables import read_parquet_results, write_parquet

    records = [
        {"product_id": "a", "experts": {"llm": {"A > B": 0.5, "C": 0.5}}, "path": ["A", "B"]},
        {"product_id": "b", "experts": None, "path": []},
    ]
    write_parquet(records, tmp_path / "r.parquet")
    assert pq.read_table(tmp_path / "r.parquet").schema.field("experts").type == pa.string()
    assert read_parquet_results(tmp_path / "r.parquet") == records
