"""On real products (OA-Mine, ../shared): the tagger beats the value list it is measured
against (the longest value known from the examples found in the title)."""

from __future__ import annotations

import json
from pathlib import Path

from llmcat.attributes.examples import attributes_by_category, read_examples
from llmcat.attributes.extractor import Extractor
from tests.attributes.test_extractor import micro_f1


def test_the_tagger_beats_the_value_list_on_oa_mine(shared_dir: Path) -> None:
    folder = shared_dir / "datasets" / "oa-mine"
    examples = read_examples(folder / "train.jsonl")[::2]  # 726 examples: a quicker test
    rows = [json.loads(line) for line in (folder / "test.jsonl").read_text().splitlines()][::2]
    names = attributes_by_category(examples)
    known: dict[tuple[str, str], set[str]] = {}
    for example in examples:
        for name, values in example.values.items():
            known.setdefault((example.category, name), set()).update(values)
    value_list = []
    for row in rows:
        title, category = row["input"], row["category"]
        answers: dict[str, str | None] = {}
        for name in names.get(category, []):
            found = [v for v in known.get((category, name), ()) if v in title]
            answers[name] = max(found, key=len) if found else None
        value_list.append(answers)
    extractor = Extractor(examples=examples, backend="fake")
    products = [{"title": r["input"], "attributes": {"category": r["category"]}} for r in rows]
    results = extractor.extract_many(products, progress=False)
    tagged = [{k: v.value for k, v in r.attributes.items()} for r in results]
    baseline, ours = micro_f1(rows, value_list), micro_f1(rows, tagged)
    assert ours >= baseline + 0.05, (ours, baseline)
    assert sum(r.dropped for r in results) == 0
