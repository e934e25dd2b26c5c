"""Labelled examples: loading in every accepted form, clear errors naming the row, and the knn
strategy beating zero-shot where only the examples know the categories."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from llmcat import Classifier, ConfigError, FakeBackend, HashingEmbedder, Product, Taxonomy
from llmcat.cli import main
from llmcat.learning.examples import load_examples

TAX = Taxonomy.from_paths(["Fruit > Apples", "Fruit > Pears", "Tools > Hammers", "Tools > Saws"])

# Opaque category names: zero-shot has nothing to go on, examples do.
CODES = Taxonomy.from_labels(["K-101", "K-202", "K-303", "K-404"])
WORDS = {
    "K-101": ["apple", "orchard", "crisp", "cider", "gala"],
    "K-202": ["hammer", "claw", "nail", "steel", "forge"],
    "K-303": ["puzzle", "jigsaw", "pieces", "board", "game"],
    "K-404": ["kettle", "boil", "spout", "tea", "stove"],
}


def products(n: int, seed: int) -> list[tuple[Product, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        code = rng.choice(list(WORDS))
        words = [*rng.sample(WORDS[code], 3), rng.choice(["big", "small", "new", "classic"])]
        out.append((Product(id=f"p{seed}-{i}", title=" ".join(words)), code))
    return out


def test_examples_raise_accuracy_where_zero_shot_cannot_win() -> None:
    pool, test = products(80, seed=1), products(60, seed=2)
    common: dict[str, Any] = {
        "backend": FakeBackend(),
        "embedder": HashingEmbedder(),
        "cache": False,
    }
    knn = Classifier(CODES, strategy="knn", examples=[(p, [c]) for p, c in pool], **common)
    zero = Classifier(CODES, strategy="embedding", **common)

    def accuracy(clf: Classifier) -> float:
        results = clf.classify_many([p for p, _ in test])
        return sum(r.path == [c] for r, (_, c) in zip(results, test, strict=True)) / len(test)

    assert accuracy(knn) >= 0.9
    assert accuracy(zero) <= 0.5


def test_a_leaf_without_examples_keeps_its_zero_shot_mass() -> None:
    examples = [(Product(title="granny smith apple"), "Fruit > Apples")] * 3
    clf = Classifier(
        TAX,
        strategy="knn",
        examples=examples,
        backend=FakeBackend(),
        embedder=HashingEmbedder(),
        cache=False,
    )
    assert clf.classify("granny smith apple").path == ["Fruit", "Apples"]
    assert clf.classify("hammers").path == ["Tools", "Hammers"]  # only its path text knows it


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(Product(title="x"), "Fruit > Plums")], "row 1: category 'Fruit > Plums' is not a node"),
        ([(Product(title="x"), "Fruit > Apples"), ({"title": "y"}, ["Nope"])], "row 2"),
        ([{"title": "x"}], "row 1: no category"),
        ([{"title": "   ", "category": "Fruit"}], "row 1: .*empty title"),
        ([42], "row 1: expected a record"),
        ([], "holds no examples"),
    ],
)
def test_a_bad_example_is_a_clear_error_naming_the_row(rows: list[Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_examples(rows, TAX)


def test_examples_come_as_pairs_records_files_and_dataframes(tmp_path: Path) -> None:
    as_pairs = load_examples([(Product(title="gala apple"), ["Fruit", "Apples"])], TAX)
    as_eval = tmp_path / "eval.jsonl"
    as_eval.write_text(
        json.dumps(
            {"id": "1", "product": {"title": "gala apple"}, "gold": {"path": ["Fruit", "Apples"]}}
        )
        + "\n"
    )
    as_csv = tmp_path / "ex.csv"
    as_csv.write_text("title,brand,category\ngala apple,Orchard,Fruit > Apples\n")

    class Frame:  # what load_examples needs of a pandas DataFrame
        columns = ("title", "path")

        def to_dict(self, orient: str) -> list[dict[str, Any]]:
            assert orient == "records"
            return [{"title": "gala apple", "path": "Fruit > Apples", "brand": float("nan")}]

    for loaded in (
        as_pairs,
        load_examples(as_eval, TAX),
        load_examples(as_csv, TAX),
        load_examples(Frame(), TAX),
    ):
        assert [(e.product.title, e.category.path) for e in loaded] == [
            ("gala apple", ("Fruit", "Apples"))
        ]
    assert load_examples(as_csv, TAX)[0].product.brand == "Orchard"
    by_id = load_examples([({"title": "x"}, TAX.find_path(["Tools"]).id)], TAX)  # type: ignore[union-attr]
    assert by_id[0].category.path == ("Tools",)


def test_knn_needs_examples_and_the_cli_takes_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match="examples"):
        Classifier(TAX, strategy="knn", backend=FakeBackend(), embedder=HashingEmbedder())
    labels = tmp_path / "labelled.csv"
    labels.write_text("title,category\ngala apple,Fruit > Apples\nclaw hammer,Tools > Hammers\n")
    tax = tmp_path / "tax.txt"
    tax.write_text("Fruit > Apples\nFruit > Pears\nTools > Hammers\nTools > Saws\n")
    argv = [
        "classify",
        "claw hammer steel",
        "--taxonomy",
        str(tax),
        "--strategy",
        "knn",
        "--examples",
        str(labels),
        "--embedding-model",
        "hashing",
        "--backend",
        "fake",
        "--json",
    ]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["path"] == ["Tools", "Hammers"]
    labels.write_text("title,category\ngala apple,Fruit > Figs\n")
    assert main(argv) == 2
    assert "row 1" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_the_review_file_round_trips_into_examples(
    suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "new.jsonl"
    rows = [
        {"id": "a", "title": "claw hammer", "brand": "Stanley", "attributes": {"weight": "500 g"}},
        {"id": "b", "title": "gala apple"},
        {"id": "c", "title": "hand saw"},
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tax = tmp_path / "tax.txt"
    tax.write_text("Fruit > Apples\nFruit > Pears\nTools > Hammers\nTools > Saws\n")
    review = tmp_path / f"review{suffix}"
    argv = ["classify", "--input", str(src), "--output", str(tmp_path / "out.jsonl")]
    argv += ["--taxonomy", str(tax), "--backend", "fake", "--review-threshold", "1.0"]
    argv += ["--strategy", "embedding", "--embedding-model", "hashing"]
    assert main([*argv, "--review-out", str(review)]) == 0  # every confidence is below 1.0
    assert "3 results to review" in capsys.readouterr().err
    # A person corrects two rows and leaves one; the file is then used as it is.
    if suffix == ".csv":
        text = review.read_text().splitlines()
        text[1] = text[1][: text[1].rfind(",")] + ",Tools > Hammers"
        text[3] = text[3][: text[3].rfind(",")] + ",Tools > Saws"
        review.write_text("\n".join(text) + "\n")
    else:
        records = [json.loads(x) for x in review.read_text().splitlines()]
        records[0]["category"], records[2]["category"] = "Tools > Hammers", ["Tools", "Saws"]
        review.write_text("".join(json.dumps(r) + "\n" for r in records))
    examples = load_examples(review, Taxonomy.from_file(tax))
    assert [(e.product.id, e.category.path) for e in examples] == [
        ("a", ("Tools", "Hammers")),
        ("c", ("Tools", "Saws")),
    ]
    first = examples[0].product
    assert first.brand == "Stanley" and first.attributes == {"weight": "500 g"}  # no review columns
