"""``python -m evals run --task extract``: the benchmarks' scoring rule on hand-made answers, the
value-list baseline, the flipkart-attributes builder, and the command end to end."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from llmcat import FakeBackend, Product
from llmcat.attributes.examples import AttributeExample, attributes_by_category
from llmcat.evals.attribute_suites import (
    SPEC_DUMP,
    ExtractSuite,
    ScoredProduct,
    cut_specifications,
    load_extract_suite,
    occurs,
    round_robin,
    stated_pairs,
)
from llmcat.evals.commands import main
from llmcat.evals.extract_scoring import (
    Answer,
    ValueList,
    answer_ece,
    counted,
    judged,
    review_coverage,
    value_ece,
)
from llmcat.evals.extracteval import in_text, reads, run_extract_suite
from llmcat.types import AttributeValue, ValueSource


def test_each_answer_is_one_of_the_five_kinds() -> None:
    assert judged((), None) == "NN"
    assert judged((), "Red") == "NV"
    assert judged(("Red",), None) == "VN"
    assert judged(("Red", "red"), "red") == "VC"  # any accepted spelling
    assert judged(("Red",), "Blue") == "VW"
    # exact after trimming, on both sides; an empty answer is no answer
    assert judged((" Red ",), "Red  ") == "VC"
    assert judged(("Red",), "  ") == "VN"
    assert judged(("",), "Red") == "NV"
    # case counts, unless folded
    assert judged(("Red",), "RED") == "VW"
    assert judged(("Red",), "RED", fold_case=True) == "VC"
    assert judged(("Straße",), "STRASSE", fold_case=True) == "VC"


def answers(*rows: tuple[tuple[str, ...], str | None]) -> list[Answer]:
    return [Answer(str(n), "Shoes", "Color", gold, value) for n, (gold, value) in enumerate(rows)]


def test_micro_precision_recall_and_f1_follow_the_published_rule() -> None:
    judged_rows = answers(
        ((), None),  # NN
        ((), None),  # NN
        ((), "Red"),  # NV
        (("Red",), None),  # VN
        (("Red",), "Red"),  # VC
        (("Red",), "Red"),  # VC
        (("Navy Blue",), "navy blue"),  # VW exact, VC folded
        (("Black",), "White"),  # VW
    )
    counts = counted(judged_rows)
    assert (counts.NN, counts.NV, counts.VN, counts.VC, counts.VW) == (2, 1, 1, 2, 2)
    assert counts.precision == pytest.approx(2 / 5)  # VC / (NV + VC + VW)
    assert counts.recall == pytest.approx(2 / 5)  # VC / (VN + VC + VW)
    assert counts.f1 == pytest.approx(0.4)
    folded = counted(judged_rows, fold_case=True)
    assert (folded.VC, folded.VW) == (3, 1)
    assert folded.precision == pytest.approx(3 / 5) and folded.recall == pytest.approx(3 / 5)
    assert counted([]).f1 == 0.0  # nothing given, nothing to find: no division by zero


def with_confidence(
    gold: tuple[str, ...], value: str | None, confidence: float, review: bool = False
) -> Answer:
    return Answer("p", "Shoes", "Color", gold, value, confidence, review)


def test_ece_of_the_values_and_of_every_answer() -> None:
    given = [
        with_confidence(("Red",), "Red", 0.9),  # right, bin (0.8, 0.9]
        with_confidence(("Red",), "Blue", 0.9),  # wrong, same bin
        with_confidence(("Red",), "Red", 0.2),  # right, bin (0.1, 0.2]
        with_confidence((), None, 0.6),  # a right "no value": only in the second ECE
    ]
    # |0.5 - 0.9| * 2/3 + |1.0 - 0.2| * 1/3
    assert value_ece(given) == pytest.approx(0.4 * 2 / 3 + 0.8 / 3)
    # the same bins over 4 answers, plus |1.0 - 0.6| * 1/4 for the "no value"
    assert answer_ece(given) == pytest.approx(0.4 * 2 / 4 + 0.8 / 4 + 0.4 / 4)
    assert value_ece(answers((("Red",), "Red"))) is None  # no confidence: nothing to judge


def test_review_coverage_shows_the_flag_and_each_threshold() -> None:
    rows = review_coverage(
        [
            with_confidence(("Red",), "Red", 0.95),
            with_confidence(("Red",), "Blue", 0.4, review=True),
            with_confidence((), None, 0.65),
            with_confidence(("Red",), None, 0.3, review=True),
        ],
        thresholds=(0.5, 0.7),
    )
    flag, half, seventy = rows
    assert flag["threshold"] is None and half["threshold"] == 0.5
    assert flag["answers_flagged"] == 0.5 and flag["answers_kept_accuracy"] == 1.0
    assert flag["answers_flagged_accuracy"] == 0.0
    assert flag["values_flagged"] == 0.5 and flag["values_kept_accuracy"] == 1.0
    assert seventy["answers_flagged"] == 0.75
    assert seventy["answers_flagged_accuracy"] == pytest.approx(1 / 3)
    assert review_coverage(answers((("Red",), "Red"))) == []


def test_the_value_list_answers_the_longest_known_value_in_the_text() -> None:
    examples = [
        AttributeExample("Acme Navy Blue Shoe", "Shoes", {"Color": ("Navy Blue",)}),
        AttributeExample("Acme Blue Boot", "Shoes", {"Color": ("Blue",), "Brand": ("Acme",)}),
        AttributeExample("Zeta Red Cap", "Hats", {"Color": ("Red",)}),
    ]
    values = ValueList.learned(examples)
    assert values.answer(["Borea Navy Blue Loafer"], "Shoes", "Color") == "Navy Blue"
    assert values.answer(["Borea Loafer", "in blue and Blue"], "Shoes", "Color") == "Blue"
    assert values.answer(["Borea Red Loafer"], "Shoes", "Color") is None  # Hats' value
    assert values.answer(["Borea Loafer"], "Shoes", "Size") is None


def test_the_specification_dump_is_cut_and_values_are_kept_only_where_written() -> None:
    description = (
        "Soft cotton shorts.,Specifications of Alisha Shorts General Color Red Fabric Cotton"
    )
    assert cut_specifications(description) == "Soft cotton shorts."
    assert cut_specifications("No dump here") == "No dump here"
    product = Product(title="Alisha Red Cycling Shorts", description="Soft cotton shorts.")
    specs = {
        "Color": "Red",
        "Fabric": "Cotton",  # written "cotton": not as written
        "Brand": "Alisha",
        "Type": "Cycle",  # inside "Cycling": not a word of the text
        "Pattern": "No",  # says nothing
        "Weight": "200 g",  # not an attribute key
        "Ideal For": "Women's",  # not in the text
    }
    assert stated_pairs(specs, product) == {"Brand": "Alisha", "Color": "Red"}
    assert occurs("Navy Blue", "a Navy Blue cap")
    assert not occurs("Red", "Redmi phone")


def test_limited_runs_take_every_category_in_turn() -> None:
    items = [ScoredProduct(Product(id=f"{c}{n}", title="x"), c, {}) for c in "ab" for n in range(3)]
    assert [i.product.id for i in round_robin(items, 3)] == ["a0", "b0", "a1"]
    assert len(round_robin(items, 10)) == 6


def test_flipkart_attributes_is_built_from_values_the_text_states(
    shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMCAT_SHARED_DIR", str(shared_dir))
    suite = load_extract_suite("flipkart-attributes")
    again = load_extract_suite("flipkart-attributes")
    assert [s.product.id for s in suite.scored] == [s.product.id for s in again.scored]
    assert suite.dataset_sha256 == again.dataset_sha256
    learned_titles = {e.title + e.description for e in suite.examples}
    assert len(suite.examples) == len(suite.scored) == 525  # 1,050 products in halves
    assert not learned_titles & {s.product.title + s.product.description for s in suite.scored}
    assert Counter(s.category for s in suite.scored) == Counter(e.category for e in suite.examples)
    assert len({s.category for s in suite.scored}) == 7
    gold = 0
    for item in suite.scored:
        assert SPEC_DUMP not in item.product.description
        for values in item.gold.values():
            for value in values:
                gold += 1
                assert occurs(value, item.product.title) or occurs(
                    value, item.product.description
                ), (item.product.id, value)
    for example in suite.examples:
        assert SPEC_DUMP not in example.description
        for values in example.values.values():
            assert all(occurs(v, example.title) or occurs(v, example.description) for v in values)
    assert gold > 1000
    limited = load_extract_suite("flipkart-attributes", limit=14)
    assert Counter(s.category for s in limited.scored) == dict.fromkeys(
        {s.category for s in suite.scored}, 2
    )


SHOES = ["Acme", "Borealis", "Contoso", "Dunmore"]
COLOURS = ["Red", "Black", "Navy Blue", "White"]


def shoe(n: int) -> tuple[str, dict[str, tuple[str, ...]]]:
    brand, colour = SHOES[n % 4], COLOURS[(n // 4) % 4]
    if n % 3 == 0:
        return f"{brand} Running Shoe", {"Brand": (brand,), "Color": ()}
    return f"{brand} Running Shoe, {colour}", {"Brand": (brand,), "Color": (colour,)}


def test_a_run_writes_its_records_summary_and_page(tmp_path: Path) -> None:
    examples = [AttributeExample(shoe(n)[0], "Shoes", shoe(n)[1]) for n in range(40)]
    scored = [
        ScoredProduct(Product(id=f"s{n}", title=shoe(n)[0]), "Shoes", shoe(n)[1])
        for n in range(40, 52)
    ]
    suite = ExtractSuite("shoes", examples, scored, "0" * 64, "synthetic shoes")
    out = tmp_path / "run"
    printed = run_extract_suite(suite, out, backend=FakeBackend())
    assert {p.name for p in out.iterdir()} == {
        "records.jsonl",
        "summary.json",
        "summary.md",
        "report.html",
    }
    assert printed == (out / "summary.md").read_text()
    assert "micro F1 (exact)" in printed and "Review coverage" in printed
    summary = json.loads((out / "summary.json").read_text())
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [s.product.id for s in scored]
    assert summary["answers"] == 24 and summary["not_in_text"] == summary["dropped"] == 0
    kinds = Counter(k for r in records for k in r["kinds"].values())
    exact = summary["methods"]["extractor"]["exact"]
    assert {k: exact[k] for k in kinds} == kinds
    assert summary["methods"]["value list"]["answers"] == 24
    assert set(records[0]["extraction"]["attributes"]) == {"Brand", "Color"}


def test_other_flags_and_suites_are_refused(tmp_path: Path) -> None:
    out = str(tmp_path / "r")
    assert main(["run", "--task", "extract", "--suite", "golden", "--out", out]) == 2
    assert main(["run", "--task", "classify", "--suite", "oa-mine", "--out", out]) == 2
    refused = ["--baseline", str(tmp_path / "b.json")]
    assert main(["run", "--task", "extract", "--suite", "oa-mine", *refused, "--out", out]) == 2
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_the_command_runs_oa_mine_end_to_end(
    shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMCAT_SHARED_DIR", str(shared_dir))
    out = tmp_path / "oa"
    argv = ["run", "--task", "extract", "--suite", "oa-mine", "--limit", "20", "--out", str(out)]
    assert main(argv, backend=FakeBackend()) == 0
    summary = json.loads((out / "summary.json").read_text())
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == summary["products"] == 20
    assert len({r["category"] for r in records}) == 10  # two of each category
    assert summary["examples"] == 1452
    assert summary["not_in_text"] == summary["dropped"] == summary["errors"] == 0
    names = attributes_by_category(load_extract_suite("oa-mine").examples)
    assert summary["answers"] == sum(len(names[r["category"]]) for r in records)
    ours = summary["methods"]["extractor"]
    assert 0.0 <= ours["ece"] <= 1.0 and ours["review_coverage"]
    assert ours["exact"]["f1"] > 0.3  # learned from 1,452 titles, it finds values
    for record in records:
        for name, answer in record["extraction"]["attributes"].items():
            if answer["value"] is not None:
                source = answer["source"]
                assert record[source["field"]][source["start"] : source["end"]] == answer["value"]
                assert name in record["kinds"]
    assert (out / "summary.md").read_text().startswith("## llmcat eval: `oa-mine`")


def test_a_value_is_grounded_where_its_source_reads_it() -> None:
    value = AttributeValue(value="Red", source=ValueSource(field="title", start=5, end=8))
    product = Product(title="Acme Red Shoe")
    assert in_text("Red", product) and reads(value, product)
    assert not reads(value.model_copy(update={"source": None}), product)
    assert not in_text("Blue", product)
