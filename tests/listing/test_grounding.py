from llmcat.listing.grounding import check_copy, quantities, used_attributes


def test_units_are_normalised() -> None:
    assert quantities("1 kg")[0].value == quantities("1000 g")[0].value
    assert quantities("15.6-inch")[0].dimension == "length"
    assert quantities("2 公斤")[0].value == quantities("2000克")[0].value
    assert quantities("1,299 rupees")[0].value == 1299.0


def test_supported_numbers_pass_and_invented_ones_are_flagged() -> None:
    source = "Weight: 1 kg\nScreen: 15.6 inch\nModel: Pegasus 40"
    ok = check_copy({"title": "Pegasus 40 at 1000 g", "body": 'A 15.6" screen'}, source)
    assert ok == []
    bad = check_copy({"title": "Weighs 2 kg", "body": "Battery lasts 10 hours"}, source)
    assert [f.text for f in bad] == ["2 kg", "10 hours"]
    assert all(f.kind == "unsupported_number" for f in bad)


def test_same_number_in_another_dimension_is_flagged() -> None:
    findings = check_copy({"body": "1 litre bottle"}, "Weight: 1 kg")
    assert [f.text for f in findings] == ["1 litre"]


def test_missing_must_mention_and_used_attributes() -> None:
    fields = {"title": "Black running shoe by Nike"}
    findings = check_copy(fields, "Nike black", must_mention=["Nike", "mesh"])
    assert [(f.kind, f.text) for f in findings] == [("missing_attribute", "mesh")]
    assert used_attributes(fields, {"brand": "Nike", "colour": "black", "upper": "mesh"}) == [
        "brand",
        "colour",
    ]
