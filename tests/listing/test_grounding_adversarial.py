"""Hand-made adversarial listing copy, English and Chinese, with the problems a checker must flag.
The checker's precision and recall over the set are pinned: a change that moves them must
update the numbers here on purpose."""

from __future__ import annotations

import pytest

from llmcat.listing.grounding import check_copy

SHOE = "Title: Nike Air Zoom Pegasus 40 running shoes\nBrand: Nike\ncolour: black\nupper: mesh\nweight: 280 g"
BOTTLE = "Title: Insulated water bottle 750 ml\nBrand: Hydro Flask\nmaterial: stainless steel\ncolour: green"
LAPTOP = "Title: Dell Inspiron 15 laptop\nBrand: Dell\nscreen: 15.6 inch\nmemory: 16 GB\nstorage: 512 GB SSD\nweight: 1.8 kg"
RICE = "Title: Basmati rice 5 kg\nBrand: Tilda\norigin: India"
TEE = "Title: 纯棉短袖T恤\n品牌: 优衣库\n材质: 纯棉\n颜色: 白色\n尺码: L"
KETTLE = "Title: 电热水壶 1.7升\n品牌: 美的\n功率: 1800瓦\n材质: 不锈钢"
PHONE = "Title: 小米 13 手机 256GB\n品牌: 小米\n屏幕: 6.36英寸\n电池: 4500毫安时"

# (source, {field: text}, must_mention, expected flagged texts, lower-case)
CASES: list[tuple[str, dict[str, str], list[str], set[str]]] = [
    # English: invented numbers
    (SHOE, {"body": "Weighs only 250 g."}, [], {"250 g"}),
    (SHOE, {"body": "Lasts 500 km of running."}, [], {"500 km"}),
    (SHOE, {"title": "Nike Pegasus 40, 2 pairs"}, [], {"2 pairs"}),
    (BOTTLE, {"body": "Keeps drinks cold for 24 hours."}, [], {"24 hours"}),
    (BOTTLE, {"body": "Holds 1 litre."}, [], {"1 litre"}),
    (LAPTOP, {"body": "32 GB of memory for heavy work."}, [], {"32 gb"}),
    (LAPTOP, {"body": "A bright 17 inch screen."}, [], {"17 inch"}),
    (LAPTOP, {"body": "Battery lasts 10 hours."}, [], {"10 hours"}),
    (RICE, {"body": "A 10 kg family pack."}, [], {"10 kg"}),
    # English: wrong units (right number, wrong dimension or magnitude)
    (SHOE, {"body": "Weighs 280 kg."}, [], {"280 kg"}),
    (BOTTLE, {"body": "Holds 750 g."}, [], {"750 g"}),
    (LAPTOP, {"body": "A 15.6 cm display."}, [], {"15.6 cm"}),
    # English: invented codes (sockets, model numbers) and dotted numbers
    (
        "Title: BFTCW6 LED bulb 6 W\nbase: B22",
        {"title": "BFTCW6 LED Bulb B22 B23 B24"},
        [],
        {"b23", "b24"},
    ),
    (
        "Title: Eureka GSEB Class VII guide",
        {"body": "Chapters 1.1.1.1 and 1.1.2.1."},
        [],
        {"1.1.1.1", "1.1.2.1"},
    ),
    (LAPTOP, {"body": "Model 3520-X with 16 GB."}, [], {"3520-x"}),
    # English: clean codes the input has
    (
        "Title: Action camera 1080p\nrating: IP67\nnetwork: 5G\nmodel: HX-200",
        {"body": "1080p, IP67, 5G, model HX-200."},
        [],
        set(),
    ),
    # English: invented materials, certifications, brands
    (SHOE, {"body": "Genuine leather upper."}, [], {"genuine leather"}),
    (SHOE, {"body": "Fully waterproof for rainy runs."}, [], {"waterproof"}),
    (SHOE, {"body": "Designed with Adidas technology."}, [], {"adidas"}),
    (BOTTLE, {"body": "BPA-free and FDA approved."}, [], {"bpa-free", "fda approved"}),
    (BOTTLE, {"body": "Made of titanium."}, [], {"titanium"}),
    (RICE, {"body": "USDA Organic certified rice."}, [], {"usda organic"}),
    # English: missing must-mention attribute
    (SHOE, {"body": "A comfortable running shoe."}, ["Nike", "black"], {"nike", "black"}),
    (LAPTOP, {"body": "A fast Dell laptop."}, ["512 GB"], {"512 gb"}),
    # English: clean copy, rewritten units (must not be flagged)
    (
        SHOE,
        {"title": "Nike Air Zoom Pegasus 40", "body": "Black mesh upper, 0.28 kg."},
        ["Nike"],
        set(),
    ),
    (BOTTLE, {"body": "A 0.75 L stainless steel bottle in green."}, [], set()),
    (LAPTOP, {"body": '1800 g, 15.6" screen, 16 GB memory.'}, [], set()),
    (RICE, {"body": "5000 g of Tilda basmati rice from India."}, ["Tilda"], set()),
    # Chinese: invented numbers and wrong units
    (TEE, {"body": "两件装，每件重200克。"}, [], {"200克"}),
    (KETTLE, {"body": "容量2升，快速烧水。"}, [], {"2升"}),
    (KETTLE, {"body": "功率1800千瓦。"}, [], {"1800千瓦"}),
    (PHONE, {"body": "512GB大存储。"}, [], {"512gb"}),
    (PHONE, {"body": "电池容量5000毫安时。"}, [], {"5000毫安时"}),
    # Chinese: invented materials, certifications, brands
    (TEE, {"body": "真丝面料，柔软亲肤。"}, [], {"真丝"}),
    (KETTLE, {"body": "食品级材质，防水设计。"}, [], {"食品级", "防水"}),
    (PHONE, {"body": "华为同款芯片。"}, [], {"华为"}),
    # Chinese: missing must-mention
    (TEE, {"body": "舒适的短袖T恤。"}, ["优衣库", "白色"], {"优衣库", "白色"}),
    # Chinese: clean copy, rewritten units (must not be flagged)
    (TEE, {"body": "优衣库纯棉短袖T恤，白色，L码。"}, ["优衣库"], set()),
    (KETTLE, {"body": "美的不锈钢电热水壶，1700毫升，1.8千瓦。"}, [], set()),
    (PHONE, {"body": "小米13，256GB，6.36英寸屏幕，4500毫安时电池。"}, ["小米"], set()),
]

PINNED_PRECISION = 1.0
PINNED_RECALL = 1.0


def _flagged(source: str, fields: dict[str, str], must: list[str]) -> set[str]:
    return {f.text.lower().replace(" ", "") for f in check_copy(fields, source, must_mention=must)}


def test_the_set_is_large_and_covers_both_languages() -> None:
    assert len(CASES) >= 30
    assert sum(any("\u4e00" <= ch <= "\u9fff" for ch in c[0]) for c in CASES) >= 10


def test_checker_precision_and_recall_are_pinned() -> None:
    tp = fp = fn = 0
    misses = []
    for source, fields, must, expected in CASES:
        want = {e.replace(" ", "") for e in expected}
        got = _flagged(source, fields, must)
        tp += len(got & want)
        fp += len(got - want)
        fn += len(want - got)
        if got != want:
            misses.append((fields, sorted(got), sorted(want)))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    assert (precision, recall) == (pytest.approx(PINNED_PRECISION), pytest.approx(PINNED_RECALL)), (
        misses
    )
