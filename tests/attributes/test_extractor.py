"""The extractor learns values from labelled products and answers with text it can point at."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmcat.attributes.examples import AttributeExample, read_examples
from llmcat.attributes.extractor import Extractor
from llmcat.attributes.schema import AttributeSpec, Schema
from llmcat.attributes.spans import Span
from llmcat.attributes.tagger import Scored, SpanTagger, decoded
from llmcat.errors import ConfigError
from tests.conftest import require


def micro_f1(rows: list[dict[str, object]], extracted: list[dict[str, str | None]]) -> float:
    """The benchmark's rule: VC / (NV + VC + VW) and VC / (VN + VC + VW)."""
    right = given = gold = 0
    for row, answers in zip(rows, extracted, strict=True):
        scores = row["target_scores"]
        assert isinstance(scores, dict)
        for name, value in answers.items():
            accepted = set(scores.get(name, {}))
            given += value is not None
            gold += bool(accepted)
            right += value is not None and value in accepted
    precision, recall = right / max(given, 1), right / max(gold, 1)
    return 2 * precision * recall / max(precision + recall, 1e-9)


def test_values_learned_from_examples_are_runs_of_the_text(shoe_files: tuple[Path, Path]) -> None:
    train, test = shoe_files
    rows = [json.loads(line) for line in test.read_text().splitlines()]
    extractor = Extractor(examples=train, backend="fake", cache=False)
    products = [{"title": r["input"], "attributes": {"category": r["category"]}} for r in rows]
    results = extractor.extract_many(products, progress=False)
    assert [r.product_id for r in results] == [str(n) for n in range(1, len(rows) + 1)]
    for row, result in zip(rows, results, strict=True):
        assert result.ok and result.category == "Shoes" and result.dropped == 0
        assert set(result.attributes) == {"Brand", "Gender", "Shoe type", "Color", "Size"}
        for answer in result.attributes.values():
            assert 0.0 <= answer.confidence <= 1.0
            if answer.value is not None:
                assert answer.source is not None and answer.source.field == "title"
                assert row["input"][answer.source.start : answer.source.end] == answer.value
    answers = [{k: v.value for k, v in r.attributes.items()} for r in results]
    assert micro_f1(rows, answers) >= 0.9  # a regular catalogue: the tagger must get it
    # A title with no colour gets none (every third synthetic title has none).
    assert answers[0]["Color"] is None


def test_joint_decoding_gives_each_run_to_one_attribute() -> None:
    def scored(text: str, start: int, score: float) -> Scored:
        return Scored(Span("title", start, start + len(text), 0, 0, text), score)

    ranked = {
        "Brand": [scored("Acme Men's", 0, 0.9), scored("Acme", 0, 0.8)],
        "Gender": [scored("Men's", 5, 0.85)],
        "Color": [scored("Red", 11, 0.05)],
    }
    chosen = decoded(ranked, threshold=0.1)
    assert {name: c.span.text for name, c in chosen.items()} == {"Brand": "Acme Men's"}
    ranked["Brand"] = ranked["Brand"][1:]
    chosen = decoded(ranked, threshold=0.1)
    assert {name: c.span.text for name, c in chosen.items()} == {"Brand": "Acme", "Gender": "Men's"}


def test_a_saved_tagger_answers_as_the_learned_one(
    shoe_files: tuple[Path, Path], tmp_path: Path
) -> None:
    examples = read_examples(shoe_files[0])
    tagger = SpanTagger.trained(examples)
    path = tmp_path / "tagger.json"
    tagger.save(path)
    again = SpanTagger.load(path)
    assert again is not None and again.calibration == tagger.calibration
    fields = [("title", "Acme Men's Loafer,Red,9 D US")]
    assert [s.score for s in again.scored(fields, "Shoes", "Color")] == pytest.approx(
        [s.score for s in tagger.scored(fields, "Shoes", "Color")]
    )
    path.write_text("{broken", encoding="utf-8")
    assert SpanTagger.load(path) is None


def test_allowed_values_are_found_as_written_and_ask_for_review() -> None:
    schema = Schema(common=(AttributeSpec(name="color", values=("Navy Blue", "Blue", "Red")),))
    extractor = Extractor(schema, backend="fake")
    result = extractor.extract({"title": "Acme loafer in NAVY BLUE suede"})
    answer = result.attributes["color"]
    assert answer.value == "Navy Blue" and answer.needs_review
    assert answer.source is not None and answer.source.read == "NAVY BLUE"
    assert extractor.extract({"title": "Acme loafer"}).attributes["color"].value is None


def test_free_text_attributes_need_examples() -> None:
    with pytest.raises(ConfigError, match="examples"):
        Extractor("color,material", backend="fake")
    with pytest.raises(ConfigError, match="examples"):
        Extractor(backend="fake")
    with pytest.raises(ConfigError, match="at least 2"):
        SpanTagger.trained([AttributeExample("Acme", "Shoes", {"Brand": ("Acme",)})])


def test_a_frame_gets_a_value_column_per_attribute(shoe_files: tuple[Path, Path]) -> None:
    try:
        import pandas as pd
    except ImportError:
        pd = None
    require(pd is not None, "pandas (pip install 'llmcat[data]')")
    frame = pd.DataFrame(
        {
            "title": ["Acme Men's Loafer,Red,9 D US", "Borealis Women's Sneaker"],
            "category": "Shoes",
        },
        index=[10, 11],
    )
    extractor = Extractor(examples=shoe_files[0], backend="fake", cache=False)
    out = extractor.extract_frame(frame, progress=False)
    assert list(out.index) == [10, 11] and list(frame.columns) == ["title", "category"]
    assert out.loc[10, "value_Color"] == "Red" and out.loc[10, "value_Brand"] == "Acme"
    assert pd.isna(out.loc[11, "value_Color"])
    assert out.loc[10, "extract_attributes"]["Color"]["source"]["field"] == "title"
    assert out.loc[11, "extract_category"] == "Shoes"
    with pytest.raises(ConfigError, match="already has column"):
        extractor.extract_frame(out, progress=False)


def test_a_product_without_a_category_takes_the_one_its_words_match(
    caplog: pytest.LogCaptureFixture,
) -> None:
    examples = Path(__file__).parents[2] / "examples" / "attributes-train.jsonl"
    extractor = Extractor(examples=examples, backend="fake", cache=False)
    with caplog.at_level("WARNING", logger="llmcat"):
        tea, shoe = extractor.extract_many(
            ["Yogi Chamomile Tea Bags, 20 Count", "Vans Men's Sneaker, Black"], progress=False
        )
    assert (tea.category, shoe.category) == ("Tea", "Shoes")
    assert set(tea.attributes) == {"Brand", "Flavor", "Item form", "Pack size"}
    assert tea.attributes["Flavor"].value == "Chamomile"
    assert sum("no 'category' field" in r.message for r in caplog.records) == 1
    # the answer says the category was guessed, and asks for review of every value
    assert tea.category_guessed and shoe.category_guessed
    assert all(a.needs_review for a in tea.attributes.values())
    given = extractor.extract(
        {"title": "Vans Men's Sneaker, Black", "attributes": {"category": "Shoes"}}
    )
    assert not given.category_guessed


def test_sources_count_characters_in_the_input_as_given(shoe_files: tuple[Path, Path]) -> None:
    extractor = Extractor(examples=shoe_files[0], backend="fake", cache=False)
    title = "  Acme   Men's\tLoafer  -  Red,  10 D US"
    for result in (
        extractor.extract({"title": title, "attributes": {"category": "Shoes"}}),
        extractor.extract_many([{"title": title, "attributes": {"category": "Shoes"}}])[0],
    ):
        given = {k: v for k, v in result.attributes.items() if v.value is not None}
        assert {"Brand", "Color", "Size"} <= set(given)
        for answer in given.values():
            assert answer.source is not None
            assert title[answer.source.start : answer.source.end] == (
                answer.source.read or answer.value
            )
        assert given["Size"].value == "10 D US"


def test_examples_of_the_wrong_kind_are_a_config_error() -> None:
    for wrong in (123, ["a title"], {"title": "x"}):
        with pytest.raises(ConfigError, match="examples= takes"):
            Extractor(examples=wrong, backend="fake")  # type: ignore[arg-type]


def test_an_attribute_no_example_states_cannot_be_asked_for(shoe_files: tuple[Path, Path]) -> None:
    with pytest.raises(ConfigError, match="no example states a value of warranty"):
        Extractor("Color,warranty", examples=shoe_files[0], backend="fake")


def test_a_category_the_examples_lack_is_the_items_error(shoe_files: tuple[Path, Path]) -> None:
    extractor = Extractor(examples=shoe_files[0], backend="fake", cache=False)
    result = extractor.extract({"title": "Teapot", "attributes": {"category": "Teapots"}})
    assert result.error is not None and "'Teapots' has no attributes" in result.error.message
