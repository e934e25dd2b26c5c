"""Describer behaviour on the fake backend: schema, limits, grounding re-ask, errors."""

import json

import pytest

from llmcat import ConfigError, Describer, FakeBackend, Product
from llmcat.config.options import CopyLimits
from llmcat.listing.schema import copy_schema, count_words, cut_to_words, parse_copy
from llmcat.llm.completions import JsonConstraint

PRODUCT = Product(
    id="p1",
    title="Nike Air Zoom Pegasus 40 running shoes",
    brand="Nike",
    attributes={"colour": "black"},
)


def answer(
    title: str = "Nike Pegasus 40",
    bullets: list[str] | None = None,
    body: str = "Black running shoes by Nike.",
) -> str:
    return json.dumps(
        {
            "title": title,
            "bullets": bullets
            if bullets is not None
            else [
                "Black colourway",
                "Built by Nike for everyday running",
                "Air Zoom cushioning in the Pegasus 40",
            ],
            "body": body,
        }
    )


def test_schema_constraint_and_result_fields() -> None:
    backend = FakeBackend([answer()])
    d = Describer(backend=backend).describe(PRODUCT)
    assert d.ok and d.title == "Nike Pegasus 40" and len(d.bullets) == 3 and d.body
    assert d.used_attributes == ["colour"] and d.findings == [] and not d.flagged
    constraint = backend.requests[0].constraint
    assert isinstance(constraint, JsonConstraint)
    assert constraint.json_schema == copy_schema(CopyLimits(), "en")
    assert "Nike" in backend.requests[0].messages[-1].content


def test_invented_number_triggers_one_reask_with_the_finding() -> None:
    backend = FakeBackend([answer(body="Weighs 250 g."), answer()])
    d = Describer(backend=backend).describe(PRODUCT)
    assert d.findings == [] and d.usage.calls == 2
    assert "'250 g'" in backend.requests[1].messages[-1].content


def test_still_invented_after_reask_is_flagged_not_passed() -> None:
    backend = FakeBackend([answer(body="Weighs 250 g."), answer(body="Black shoes, only 250 g!")])
    d = Describer(backend=backend, fallback=None).describe(PRODUCT)
    assert d.flagged and [f.text for f in d.findings] == ["250 g"] and d.source == "model"


def test_still_invented_after_reask_falls_back_to_composed_copy() -> None:
    backend = FakeBackend([answer(body="Weighs 250 g."), answer(body="Black shoes, only 250 g!")])
    d = Describer(backend=backend).describe(PRODUCT)
    assert d.source == "composed" and not d.flagged and d.findings == []
    assert [f.text for f in d.rejected_findings] == ["250 g"] and d.usage.calls == 2
    assert d.title == PRODUCT.title and "Colour: black" in d.bullets
    assert "250" not in d.body


def test_limits_hold_even_when_the_model_ignores_them() -> None:
    long = " ".join(["word"] * 300)
    backend = FakeBackend([answer(title=long, body=long, bullets=[long] * 5)] * 2)
    d = Describer(backend=backend).describe(
        PRODUCT, max_words=50, bullets=2, title_words=8, bullet_words=6
    )
    assert count_words(d.title) <= 8 and count_words(d.body) <= 50
    assert len(d.bullets) == 2 and all(count_words(b) <= 6 for b in d.bullets)


def test_invalid_json_reasks_then_errors() -> None:
    d = Describer(backend=FakeBackend(["not json", "still not"]), fallback=None).describe(PRODUCT)
    assert d.error is not None and d.error.type == "OutputError"
    d = Describer(backend=FakeBackend(["not json", "still not"])).describe(PRODUCT)
    assert d.ok and d.source == "composed" and d.rejected_findings[0].kind == "unusable_answer"
    d = Describer(backend=FakeBackend(["oops", "```json\n" + answer() + "\n```"])).describe(PRODUCT)
    assert d.ok and d.title == "Nike Pegasus 40"


def test_batch_order_and_bad_items() -> None:
    results = Describer(backend=FakeBackend(responder=lambda r: answer())).describe_many(
        ["Mug", "", PRODUCT]
    )
    assert [r.product_id for r in results] == ["1", "2", "p1"]
    assert [r.error.type if r.error else None for r in results] == [None, "InputError", None]


def test_unknown_language_and_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="language"):
        Describer(backend=FakeBackend()).describe(PRODUCT, language="xx")
    with pytest.raises(ConfigError, match="unknown describe option"):
        Describer(backend=FakeBackend()).describe_many([PRODUCT], colour="red")


def test_chinese_word_counting_and_cutting() -> None:
    assert count_words("耐克跑鞋") == 2
    assert count_words(cut_to_words("耐克跑鞋黑色轻便透气", 3)) <= 3


def test_parse_copy_accepts_bullets_as_text() -> None:
    parsed = parse_copy('{"title": "T", "bullets": "- a\\n- b", "body": "B"}')
    assert parsed.bullets == ("a", "b")


def test_styles_are_templates_and_unknown_styles_are_config_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    versions = {
        s: Describer(backend=FakeBackend(), style=s).template.version
        for s in ("marketplace", "seo", "concise")
    }
    assert len(set(versions.values())) == 3
    backend = FakeBackend([answer()])
    Describer(backend=backend, style="seo").describe(PRODUCT)
    assert "search-engine-friendly" in backend.requests[0].messages[0].content
    (tmp_path / "describe_luxury.j2").write_text(
        "{% block system %}Write like a luxury catalogue.{% endblock %}{% block user %}{{ product.title }}{% endblock %}"
    )
    backend = FakeBackend([answer()])
    Describer(backend=backend, style="luxury", template_dir=tmp_path).describe(PRODUCT)
    assert backend.requests[0].messages[0].content == "Write like a luxury catalogue."
    with pytest.raises(ConfigError, match="not found"):
        Describer(backend=FakeBackend(), style="nonexistent")


def test_character_limits_hold_and_reach_the_schema() -> None:
    long = "A very long sentence about running shoes " * 10
    backend = FakeBackend([answer(title=long, body=long, bullets=[long] * 3)] * 2)
    d = Describer(backend=backend).describe(PRODUCT, title_chars=40, bullet_chars=30, body_chars=80)
    assert len(d.title) <= 40 and len(d.body) <= 80 and all(len(b) <= 30 for b in d.bullets)
    schema = backend.requests[0].constraint.json_schema  # type: ignore[union-attr]
    assert (
        schema["properties"]["title"]["maxLength"] == 40
        and schema["properties"]["body"]["maxLength"] == 80
    )


def test_category_from_a_classification_steers_the_prompt() -> None:
    from llmcat import Classification

    backend = FakeBackend([answer()])
    c = Classification(product_id="p1", category_id="x", path=["Apparel", "Shoes"])
    Describer(backend=backend).describe(PRODUCT, category=c)
    assert '"Apparel > Shoes"' in backend.requests[0].messages[0].content


def test_wrong_brand_and_invented_material_are_flagged_after_the_reask() -> None:
    bad = answer(body="Genuine leather shoes by Adidas.")
    d = Describer(backend=FakeBackend([bad, bad]), known_brands=["Asics"], fallback=None).describe(
        PRODUCT
    )
    assert d.flagged and {f.text for f in d.findings} == {"genuine leather", "adidas"}
    assert all(f.kind == "unsupported_term" for f in d.findings)


def test_a_reask_that_breaks_the_json_keeps_the_first_answer() -> None:
    first = answer(body="Weighs 250 g.")
    d = Describer(backend=FakeBackend([first, "{broken"]), fallback=None).describe(PRODUCT)
    assert d.ok and d.body == "Weighs 250 g." and d.flagged


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"title": "T", "bullets": ["a", "b"], "body": "27.94 cm, 27.94 cm, 27.9',
            {"title": "T", "bullets": ["a", "b"], "body": "27.94 cm, 27.94 cm, 27.9"},
        ),
        ('{"title": "T", "bullets": ["a", "b', {"title": "T", "bullets": ["a", "b"]}),
        ('{"title": "T", "bullets": ["a"], ', {"title": "T", "bullets": ["a"]}),
        ('{"title": "T", "bul', {"title": "T"}),
        # A key without its value (the hand-written repair gave up on it).
        ('{"title": "T", "body":', {"title": "T"}),
        ("no json at all", None),
    ],
)
def test_truncated_json_is_closed_at_its_last_complete_point(text: str, expected: object) -> None:
    from llmcat.listing.schema import close_truncated_json

    assert close_truncated_json(text) == expected


def test_a_cut_escape_keeps_the_complete_values() -> None:
    from llmcat.listing.schema import close_truncated_json

    # pydantic-core 2.50 keeps the string's complete part, 2.33 (the lower bound) drops it; either way
    # the title survives (the hand-written repair returned nothing).
    found = close_truncated_json('{"title": "T", "body": "caf\\u00')
    assert found["title"] == "T" and found.get("body", "caf") == "caf"


def test_a_looping_model_cut_by_max_tokens_still_gives_valid_copy() -> None:
    looping = (
        '{"title": "Brass Buddha Showpiece", "bullets": ["Brass", "Gold", "27.94 cm"], "body": "'
        + "27.94 cm, " * 200
    )
    d = Describer(backend=FakeBackend([looping, looping]), fallback=None).describe(
        PRODUCT, max_words=50
    )
    assert d.ok and d.title == "Brass Buddha Showpiece" and count_words(d.body) <= 50


def test_an_input_error_keeps_the_callers_id() -> None:
    results = Describer(backend=FakeBackend()).describe_many(
        [{"id": "sku-1", "title": "  "}, {"title": "  "}]
    )
    assert [r.product_id for r in results] == ["sku-1", "2"]
    assert all(r.error is not None and r.error.type == "InputError" for r in results)


def test_options_are_typed_and_per_call_overrides_win() -> None:
    from llmcat import CopyOptions

    backend = FakeBackend(responder=lambda r: answer())
    describer = Describer(CopyOptions(bullets=2, language="en"), backend=backend, max_words=40)
    assert describer.options.bullets == 2 and describer.options.body_words == 40
    describer.describe(PRODUCT, bullets=3)
    schema = backend.requests[-1].constraint.json_schema  # type: ignore[union-attr]
    assert schema["properties"]["bullets"]["minItems"] == 3
    assert describer.options.bullets == 2  # the call's override did not stick
