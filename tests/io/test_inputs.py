from pathlib import Path

import pytest

from llmcat import InputError, Product
from llmcat.io.inputs import MAX_DESCRIPTION, MAX_TITLE, clean_product, coerce_product, read_records


def test_string_becomes_title_and_index_becomes_id() -> None:
    p = coerce_product("  Red   shoe ", 7)
    assert p.title == "Red shoe" and p.id == "8"


def test_empty_and_binary_titles_are_input_errors() -> None:
    with pytest.raises(InputError, match="empty title"):
        coerce_product("   ", 0)
    with pytest.raises(InputError, match="empty title"):
        coerce_product("\x00\x01\x02\x7f", 0)


def test_huge_fields_are_cut_by_the_documented_rule() -> None:
    p = clean_product(Product(id="x", title="word " * 200, description="a" * 1_000_000))
    assert len(p.title) <= MAX_TITLE and p.title.endswith("…")
    assert len(p.description) <= MAX_DESCRIPTION and p.description.endswith("…")


def test_mapping_aliases_and_extra_columns_become_attributes() -> None:
    p = coerce_product({"product_name": "Mug", "id": 5, "colour": "blue", "brand": "Acme"}, 0)
    assert (p.id, p.title, p.brand, p.attributes) == ("5", "Mug", "Acme", {"colour": "blue"})


def test_not_a_product() -> None:
    with pytest.raises(InputError, match="item 4"):
        coerce_product(42, 3)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="title"):
        coerce_product({"description": "no title"}, 0)


def test_read_jsonl_keeps_bad_lines_as_errors(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text('{"id": "a", "title": "Mug"}\nnot json\n\n[1, 2]\n"Just a title"\n')
    items = list(read_records(f))
    assert items[0] == {"id": "a", "title": "Mug"}
    assert isinstance(items[1], InputError) and "line 2" in str(items[1])
    assert isinstance(items[2], InputError)
    assert items[3] == {"title": "Just a title", "id": "5"}


def test_read_csv(tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text('id,title,colour\n1,"Mug, large",blue\n2,Plate,\n')
    assert list(read_records(f)) == [
        {"id": "1", "title": "Mug, large", "colour": "blue"},
        {"id": "2", "title": "Plate"},
    ]


def test_a_parquet_map_column_reads_the_same_after_a_pandas_round_trip(tmp_path: Path) -> None:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    attributes = pa.array(
        [[("Colour", "Red"), ("Material", "Cotton")]], pa.map_(pa.string(), pa.string())
    )
    original = tmp_path / "original.parquet"
    pq.write_table(pa.table({"title": ["Red cotton shirt"], "attributes": attributes}), original)
    again = tmp_path / "again.parquet"
    pd.read_parquet(original).to_parquet(again)  # the map becomes a list of [name, value] pairs
    products = [coerce_product(r, n) for n, r in enumerate(read_records(again))]  # type: ignore[arg-type]
    assert products[0].attributes == {"Colour": "Red", "Material": "Cotton"}
    first = [coerce_product(r, n) for n, r in enumerate(read_records(original))]  # type: ignore[arg-type]
    assert first[0].attributes == products[0].attributes
