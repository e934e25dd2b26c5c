"""``python -m evals run --task extract --without-examples``: a suite read with Shopify's
taxonomy and attributes, beside the value list of Shopify's allowed values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmcat import FakeBackend
from llmcat.evals.commands import main
from llmcat.evals.extract_without_examples import METHODS, names
from tests.attributes.test_shopify import ATTRIBUTES, CATEGORIES


def test_a_key_is_named_by_the_attribute_or_its_last_words() -> None:
    assert names("Color", "color") and names("Bag/Case material", "Material")
    assert not names("Colorway", "Color") and not names("Material", "Bag material")


def test_the_run_scores_both_methods_on_the_pairs_shopify_names(
    shared_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMCAT_SHARED_DIR", str(shared_dir))
    folder = tmp_path / "taxonomies"
    folder.mkdir()
    (folder / "shopify_categories_2024-10.txt").write_text(CATEGORIES, encoding="utf-8")
    (folder / "shopify_attributes_2025-03.json").write_text(json.dumps(ATTRIBUTES), "utf-8")
    monkeypatch.setenv("LLMCAT_TAXONOMY_DIR", str(folder))
    out = tmp_path / "run"
    argv = ["run", "--task", "extract", "--suite", "flipkart-attributes", "--limit", "30",
            "--without-examples", "--out", str(out)]  # fmt: skip
    assert main(argv, backend=FakeBackend()) == 0
    summary = json.loads((out / "summary.json").read_text())
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert summary["products"] == len(records) == 30 and summary["errors"] == 0
    # Only Color, Size and Fabric are named by the file's attributes.
    pairs = [(key, p) for r in records for key, p in r["pairs"].items()]
    assert pairs and {key for key, _ in pairs} <= {"Color", "Size", "Fabric"}
    assert summary["pairs"] == len(pairs)
    allowed = {v for a in ATTRIBUTES["attributes"].values() for v in a["values"]}  # type: ignore[attr-defined]
    for method in METHODS:
        given = [p[method] for _, p in pairs if p[method] is not None]
        assert set(given) <= allowed - {"Other"}
        scores = summary["methods"][method]
        assert scores["given"] == len(given)
        right = sum(
            1
            for _, p in pairs
            if p[method] is not None and p[method].casefold() in {g.casefold() for g in p["gold"]}
        )
        assert scores["right"] == right and scores["recall"] == right / len(pairs)
    assert (out / "summary.md").read_text().startswith("## llmcat eval: `flipkart-attributes`")


def test_without_examples_is_for_attribute_suites(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", "--suite", "golden", "--without-examples", "--out", "x"]
    assert main(argv, backend=FakeBackend()) == 2
    assert "--without-examples" in capsys.readouterr().err
