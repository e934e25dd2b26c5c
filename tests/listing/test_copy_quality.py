"""Degenerate-copy findings and composed copy: pure functions, no model."""

from __future__ import annotations

import pytest

from llmcat.config.options import CopyLimits
from llmcat.listing.composed import compose_copy
from llmcat.listing.degenerate import attributes_to_mention, body_floor, degenerate_findings
from llmcat.listing.grounding import check_copy, input_text
from llmcat.listing.schema import copy_fields, count_words
from llmcat.types import Product

SHOE = Product(
    title="Nike Air Zoom Pegasus 40 running shoes",
    brand="Nike",
    attributes={"colour": "black", "size": "UK 9", "closure": "lace-up"},
    description="Responsive road running shoe with a breathable mesh upper.",
)
GOOD = {
    "title": "Nike Air Zoom Pegasus 40 running shoes in black",
    "bullets": [
        "Black colourway, size UK 9",
        "Lace-up closure for a secure fit",
        "Breathable mesh upper for road running",
    ],
    "body": "The Nike Air Zoom Pegasus 40 is a responsive road running shoe in black. Its "
    "breathable mesh upper and lace-up closure keep the fit secure mile after mile, and the "
    "UK 9 size suits everyday training runs on the road.",
}


def findings(copy: dict[str, object], product: Product = SHOE, language: str = "en") -> list:  # type: ignore[type-arg]
    source = input_text(
        {"title": product.title, "brand": product.brand, "description": product.description},
        product.attributes,
    )
    return degenerate_findings(
        copy_fields(copy),
        title=product.title,
        brand=product.brand,
        source=source,
        language=language,
        attributes=attributes_to_mention(product.attributes, 3),
        given=product.attributes,
    )


def kinds(copy: dict[str, object], **kw: object) -> set[str]:
    return {f.kind for f in findings(copy, **kw)}  # type: ignore[arg-type]


def with_(**fields: object) -> dict[str, object]:
    return {**GOOD, **fields}


def test_good_copy_has_no_findings() -> None:
    assert findings(GOOD) == []


CHINESE_GOOD = {
    "title": "Nike Air Zoom Pegasus 40 跑鞋",
    "bullets": [
        "颜色：black，尺码：UK 9",
        "lace-up 系带设计，贴合脚型",
        "透气网面鞋面，适合公路跑",
    ],
    "body": "这款 Nike Air Zoom Pegasus 40 跑鞋回弹灵敏，适合日常公路训练。透气网面鞋面保持双脚干爽，"
    "lace-up 系带让脚感稳固，black 配色百搭，UK 9 尺码合脚，日常慢跑与长距离训练都能应付。",
}

DEGENERATE: list[tuple[str, dict[str, object], str, str]] = [
    # (what, copy, language, expected kind)
    ("word twice in a row", with_(body=GOOD["body"] + " Nike Nike."), "en", "repetition"),
    ("word three times", with_(title="Nike Nike Nike Air Zoom Pegasus 40"), "en", "repetition"),
    (
        "phrase twice in the body",
        with_(body=GOOD["body"] + " Great for long runs, and great for long days."),
        "en",
        "repetition",
    ),
    (
        "phrase twice in a bullet",
        with_(bullets=["Mesh upper breathes, mesh upper breathes", *GOOD["bullets"][1:]]),  # type: ignore[index]
        "en",
        "repetition",
    ),
    (
        "two bullets the same",
        with_(bullets=["Black colourway", "Black colourway", GOOD["bullets"][2]]),  # type: ignore[index]
        "en",
        "repetition",
    ),
    (
        "a product phrase three times",
        with_(body=GOOD["body"] + " A responsive road running shoe, a responsive road runner."),
        "en",
        "repetition",
    ),
    (
        "a looping body",
        with_(body="Running shoes for running. " * 6),
        "en",
        "repetition",
    ),
    (
        "Chinese phrase twice",
        {**CHINESE_GOOD, "body": CHINESE_GOOD["body"] + "透气网面鞋面透气网面鞋面。"},
        "zh",
        "repetition",
    ),
    ("bullet is the brand", with_(bullets=["Nike", *GOOD["bullets"][1:]]), "en", "restated_title"),  # type: ignore[index]
    (
        "bullet is the title",
        with_(bullets=[SHOE.title, *GOOD["bullets"][1:]]),  # type: ignore[index]
        "en",
        "restated_title",
    ),
    (
        "bullet is part of the title",
        with_(bullets=["Nike Air Zoom Pegasus 40", *GOOD["bullets"][1:]]),  # type: ignore[index]
        "en",
        "restated_title",
    ),
    (
        "bullet is the title with stop words",
        with_(bullets=["The Air Zoom Pegasus 40 by Nike", *GOOD["bullets"][1:]]),  # type: ignore[index]
        "en",
        "restated_title",
    ),
    ("body is the title", with_(body=SHOE.title + "."), "en", "restated_title"),
    ("body of three words", with_(body="Black running shoes."), "en", "short_body"),
    ("empty body", with_(body=""), "en", "short_body"),
    (
        "colour left out",
        with_(
            title="Nike Air Zoom Pegasus 40 running shoes",
            bullets=["Size UK 9", "Lace-up closure", "Breathable mesh upper"],
            body=GOOD["body"].replace(" in black", "").replace("black", "").replace("  ", " "),  # type: ignore[attr-defined]
        ),
        "en",
        "missing_attribute",
    ),
    (
        "size left out",
        with_(
            bullets=["Black colourway", "Lace-up closure", "Breathable mesh upper"],
            body=GOOD["body"].replace("UK 9 size", "size"),  # type: ignore[attr-defined]
        ),
        "en",
        "missing_attribute",
    ),
    ("English when Chinese was asked", GOOD, "zh", "wrong_language"),
    (
        "Japanese when Chinese was asked",
        {
            **CHINESE_GOOD,
            "body": "このランニングシューズはとても軽くて、毎日のトレーニングにぴったりです。"
            "通気性のよいメッシュで、足をさわやかに保ちます。",
        },
        "zh",
        "wrong_language",
    ),
    ("Chinese when English was asked", CHINESE_GOOD, "en", "wrong_language"),
    (
        "the English data copied when Chinese was asked",
        {"title": SHOE.title, "bullets": ["black", "UK 9", "lace-up"], "body": SHOE.description},
        "zh",
        "wrong_language",
    ),
    (
        "Spanish when English was asked",
        with_(
            body="Las zapatillas de running con una parte superior de malla transpirable y el "
            "cierre con cordones para los entrenamientos del día a día, muy cómodas para su uso."
        ),
        "en",
        "wrong_language",
    ),
    (
        "English when German was asked",
        with_(
            body="These are the shoes for your daily runs, with a breathable upper that is light "
            "and comfortable for the road and the track."
        ),
        "de",
        "wrong_language",
    ),
    (
        "Hindi asked, English written",
        GOOD,
        "hi",
        "wrong_language",
    ),
]


@pytest.mark.parametrize(
    ("copy", "language", "kind"), [c[1:] for c in DEGENERATE], ids=[c[0] for c in DEGENERATE]
)
def test_each_degenerate_output_raises_its_finding(
    copy: dict[str, object], language: str, kind: str
) -> None:
    assert kind in kinds(copy, language=language)


def test_there_are_at_least_twenty_degenerate_cases() -> None:
    assert len(DEGENERATE) >= 20


def test_the_readme_example_copy_has_every_kind_it_should() -> None:
    product = Product(
        title="Nike Air Zoom Pegasus 40 running shoes",
        brand="Nike",
        attributes={"brand": "Nike", "colour": "black"},
    )
    copy = {
        "title": "Nike Air Zoom Pegasus 40 running shoes",
        "bullets": ["Nike", "Nike Air Zoom Pegasus 40", "Nike Air Zoom Pegasus 40 running shoes"],
        "body": "Nike Nike Nike Air Zoom Pegasus 40 running shoes",
    }
    assert kinds(copy, product=product) == {"repetition", "restated_title", "missing_attribute"}


def test_good_chinese_copy_keeping_values_as_given_passes() -> None:
    assert findings(CHINESE_GOOD, language="zh") == []


def test_a_product_with_nothing_but_a_title_is_flagged_thin_not_asked_for_more() -> None:
    # Nothing to write about: one finding that says so (a person adds facts), and no demand
    # to pad (no short body, no restated title).
    product = Product(title="Stainless steel water bottle")
    copy = {"title": product.title, "bullets": [], "body": "Stainless steel water bottle."}
    assert [f.kind for f in findings(copy, product=product)] == ["thin"]


def test_body_floor_never_asks_more_than_the_data_or_the_limit_holds() -> None:
    assert body_floor(25, 120, "one two three four") == 2
    assert body_floor(25, 20, " ".join(["w"] * 200)) == 10
    assert body_floor(25, 120, " ".join(["w"] * 200)) == 25


def test_attributes_to_mention_skips_long_and_yes_no_values() -> None:
    attributes = {"waterproof": "yes", "notes": "a very long value with many many words", "a": "b"}
    assert attributes_to_mention(attributes, 3) == ["b"]


# -- composed copy ------------------------------------------------------------------------------

PRODUCTS = {
    "with attributes": SHOE,
    "without attributes": Product(title="Cotton crew neck t-shirt", brand="Uniqlo"),
    "title only": Product(title="1000 piece jigsaw puzzle"),
    "many attributes": Product(
        title="Men's slim fit casual shirt",
        brand="Roadster",
        attributes={
            "Pattern": "Checkered",
            "Sleeve": "Full Sleeve",
            "Fabric": "Cotton",
            "Ideal For": "Men's",
            "Occasion": "Casual",
            "Fit": "Slim",
            "Collar": "Spread",
            "Pack of": "1",
        },
    ),
}


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("name", list(PRODUCTS))
def test_composed_copy_is_grounded_and_has_no_findings(name: str, language: str) -> None:
    product = PRODUCTS[name]
    limits = CopyLimits()
    copy = compose_copy(product, limits, language)
    source = input_text(
        {"title": product.title, "brand": product.brand, "description": product.description},
        product.attributes,
    )
    assert check_copy(copy_fields(copy), source) == []
    # A title (and brand) alone is thin: said once, never padded with the title again
    thin = name in ("without attributes", "title only")
    expected = ["thin"] if thin else []
    if name == "title only" and language == "zh":  # an English title is all there is to say
        expected.append("wrong_language")
    assert [f.kind for f in findings(copy, product=product, language=language)] == expected
    assert copy.title and (copy.body or thin)
    assert len(copy.bullets) <= limits.bullets
    assert count_words(copy.body) <= limits.body_words
    for value in product.attributes.values():  # every value as given, in a bullet or the body
        assert value in " ".join(copy_fields(copy).values())


def test_composed_english_and_chinese_label_the_common_keys() -> None:
    en = compose_copy(SHOE, CopyLimits(), "en")
    zh = compose_copy(SHOE, CopyLimits(), "zh")
    assert list(en.bullets) == ["Colour: black", "Size: UK 9", "Closure: lace-up"]
    assert list(zh.bullets) == ["颜色：black", "尺码：UK 9", "闭合方式：lace-up"]
    assert en.title == zh.title == SHOE.title  # the brand is already in the title
    assert "Responsive road running shoe" in en.body


def test_composed_copy_names_the_brand_and_category_and_keeps_limits() -> None:
    product = PRODUCTS["without attributes"]
    copy = compose_copy(product, CopyLimits(), "en", category="Apparel > Shirts")
    assert copy.title == "Cotton crew neck t-shirt by Uniqlo"
    assert list(copy.bullets) == ["Category: Apparel > Shirts", "Brand: Uniqlo"]
    short = compose_copy(PRODUCTS["many attributes"], CopyLimits(bullets=2, bullet_words=6), "en")
    assert len(short.bullets) == 2
    assert all(count_words(b) <= 6 for b in short.bullets)


def test_other_languages_get_values_without_english_labels() -> None:
    copy = compose_copy(SHOE, CopyLimits(), "de")
    assert list(copy.bullets) == ["black", "UK 9", "lace-up"]
    assert "Colour" not in copy.body


@pytest.mark.parametrize(
    ("language", "product", "bullets"),
    [
        (
            "en",
            Product(
                title="Steel water bottle 1 L",
                brand="Milton",
                description="Price: Rs. 499 only. Keeps water cold for 24 hours. Made of steel.",
            ),
            # the price is the shop's: never copy (llmcat.listing.boilerplate)
            ["Keeps water cold for 24 hours.", "Made of steel.", "Brand: Milton"],
        ),
        (
            "de",
            Product(
                title="Trinkflasche aus Stahl",
                brand="Emsa",
                description="Hält Getränke z.B. Wasser bis zu 24 Std. kalt. Aus Edelstahl.",
            ),
            ["Hält Getränke z.B. Wasser bis zu 24 Std. kalt.", "Aus Edelstahl."],
        ),
    ],
)
def test_composed_bullets_never_end_at_an_abbreviation(
    language: str, product: Product, bullets: list[str]
) -> None:
    # The regex splitter this replaced made "Price: Rs." and "499 only." two bullets.
    assert list(compose_copy(product, CopyLimits(), language).bullets) == bullets
