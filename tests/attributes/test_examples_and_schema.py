"""Labelled products in both layouts, and schemas from names, files and examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmcat.attributes.examples import completed, read_examples
from llmcat.attributes.schema import Schema
from llmcat.attributes.shopify import schema_from
from llmcat.errors import ConfigError, InputError


def test_the_benchmark_format_and_llmcats_own_are_read(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    lines = [
        {
            "input": "Acme Red Loafer",
            "category": "Shoes",
            "target_scores": {"Brand": {"Acme": 1}, "Color": {"n/a": 1}},
        },
        {
            "title": "Borealis tea",
            "category": "Tea",
            "values": {"Brand": "Borealis", "Flavor": None, "Form": ["Bags", "Tea Bags"]},
        },
        {},
    ]
    path.write_text("\n".join(json.dumps(r) for r in lines[:2]) + "\n\n", encoding="utf-8")
    first, second = read_examples(path)
    assert (first.title, first.category, dict(first.values)) == (
        "Acme Red Loafer",
        "Shoes",
        {"Brand": ("Acme",), "Color": ()},
    )
    assert dict(second.values) == {
        "Brand": ("Borealis",),
        "Flavor": (),
        "Form": ("Bags", "Tea Bags"),
    }
    path.write_text(
        json.dumps(lines[0]) + "\n" + json.dumps({"title": "x"}) + "\n", encoding="utf-8"
    )
    with pytest.raises(InputError, match=r"train.jsonl, line 2"):
        read_examples(path)
    with pytest.raises(InputError, match="no such examples file"):
        read_examples(tmp_path / "missing.jsonl")


def test_an_attribute_an_example_leaves_out_states_no_value(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    rows = [
        {"input": "Acme Loafer", "category": "Shoes", "target_scores": {"Brand": {"Acme": 1}}},
        {"input": "Red Boot", "category": "Shoes", "target_scores": {"Color": {"Red": 1}}},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    first, second = completed(read_examples(path))
    assert dict(first.values) == {"Brand": ("Acme",), "Color": ()}
    assert dict(second.values) == {"Brand": (), "Color": ("Red",)}


def test_schemas_from_names_files_and_examples(tmp_path: Path) -> None:
    assert [s.name for s in Schema.from_names("color, material,").for_category("x")] == [
        "color",
        "material",
    ]
    with pytest.raises(ConfigError, match="no attribute"):
        Schema.from_names(" , ")
    path = tmp_path / "schema.json"
    path.write_text(
        json.dumps(
            {
                "attributes": [{"name": "color", "values": ["Red", "Black"]}],
                "categories": {"Shoes": ["color", {"name": "size"}]},
            }
        ),
        encoding="utf-8",
    )
    schema = schema_from(str(path))
    assert [s.name for s in schema.for_category("Shoes")] == ["color", "size"]
    assert [s.name for s in schema.for_category("Tea")] == ["color"]
    assert schema.for_category("Shoes")[0].values == ("Red", "Black")
    path.write_text(
        json.dumps({"attributes": [{"name": "color", "values": "Red"}]}), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"schema.json: attributes\[0\].values"):
        Schema.from_file(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not JSON"):
        Schema.from_file(path)
    with pytest.raises(ConfigError, match="cannot read"):
        Schema.from_file(tmp_path / "absent.json")
