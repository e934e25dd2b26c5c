"""``run --task extract --without-examples``: an attribute suite read with Shopify's taxonomy
and attributes and no examples (what ``llmcat extract --taxonomy shopify`` does), beside the
value list built from Shopify's allowed values.

Scored on the suite's gold (product, key) pairs whose key names a Shopify attribute: the
attribute of that name, or one whose name ends with it (``Bag/Case material`` for Material).

- llmcat's answer: the value of the attribute of that name among those of the Shopify category
  the classifier chose for the product.
- The value list's answer: the longest allowed value of any Shopify attribute of that name that
  the title, else the description, states as whole words (``allowed_value``, the rule llmcat's
  own method follows, without the category).

A value is right when it equals a gold value with case folded (Shopify writes ``Black``, a shop
``black``). Precision is over the answers given on those pairs, recall over the pairs.

The Shopify files come from ``LLMCAT_TAXONOMY_DIR``, else the shared folder's ``taxonomies``.
The run folder holds ``records.jsonl`` (one line per product), ``summary.json`` and
``summary.md``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

from llmcat.attributes.answers import allowed_value
from llmcat.attributes.extractor import Extractor
from llmcat.attributes.schema import AttributeSpec, read_json
from llmcat.attributes.shopify import find_shopify_attributes, shopify_schema
from llmcat.backends import Backend
from llmcat.classify.classifier import Classifier
from llmcat.config.settings import Settings
from llmcat.errors import ConfigError
from llmcat.evals.attribute_suites import ExtractSuite
from llmcat.evals.extract_scoring import Counts, judged
from llmcat.evals.paths import shared_dir
from llmcat.evals.suite_runner import git_state
from llmcat.taxonomy import Taxonomy
from llmcat.types import Extraction

#: the two methods, as the summary names them
METHODS = ("llmcat --taxonomy shopify", "Shopify value list")


def shopify_folder() -> Path:
    """Where Shopify's categories and attributes files are read."""
    given = os.environ.get("LLMCAT_TAXONOMY_DIR", "").split(os.pathsep)[0]
    return Path(given) if given else shared_dir() / "taxonomies"


def names(attribute: str, key: str) -> bool:
    """Whether a Shopify attribute's name names the suite's ``key``."""
    name, wanted = attribute.casefold(), key.casefold()
    return name == wanted or name.endswith(f" {wanted}")


def run_without_examples(
    suite: ExtractSuite,
    out: Path,
    *,
    backend: Backend | str | None = None,
    settings: Settings | None = None,
    limit: int | None = None,
) -> str:
    """Classify into Shopify's taxonomy, extract its attributes, judge both methods on the
    gold pairs; write the run folder and return summary.md."""
    folder = shopify_folder()
    categories = sorted(folder.glob("shopify_categories*.txt"))
    if not categories:
        raise ConfigError(f"no shopify_categories*.txt in {folder}: set LLMCAT_TAXONOMY_DIR")
    attributes_file = find_shopify_attributes([folder])
    data = read_json(attributes_file)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{attributes_file}: not Shopify's attributes file")
    classifier = Classifier(Taxonomy.from_file(categories[-1]), settings=settings)
    extractor = Extractor(
        shopify_schema(data, attributes_file),
        backend=backend,
        settings=settings,
        categorizer=classifier,
    )
    started = time.perf_counter()
    results = extractor.extract_many([s.product for s in suite.scored], progress=False)
    seconds = time.perf_counter() - started
    listed = _allowed_by_key(data, {key for s in suite.scored for key in s.gold})
    counts: dict[str, dict[str, Counts]] = {}
    total = {method: Counts() for method in METHODS}
    with_pairs = 0
    out.mkdir(parents=True, exist_ok=True)
    with (out / "records.jsonl").open("w", encoding="utf-8") as handle:
        for item, result in zip(suite.scored, results, strict=True):
            product = item.product
            fields = [("title", product.title), ("description", product.description)]
            record: dict[str, object] = {
                "id": product.id,
                "title": product.title,
                "category": result.category,
                "error": result.error.message if result.error else None,
            }
            pairs: dict[str, object] = {}
            for key, gold in item.gold.items():
                if key not in listed:
                    continue
                answers = (
                    _answer(result, key),
                    allowed_value(fields, AttributeSpec(name=key, values=listed[key])).value,
                )
                tally = counts.setdefault(key, {method: Counts() for method in METHODS})
                for method, value in zip(METHODS, answers, strict=True):
                    kind = judged(gold, value, fold_case=True)
                    tally[method].add(kind)
                    total[method].add(kind)
                pairs[key] = {"gold": list(gold), **dict(zip(METHODS, answers, strict=True))}
            with_pairs += bool(pairs)
            record["pairs"] = pairs
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    git = git_state()
    summary: dict[str, object] = {
        "suite": suite.name,
        "task": "extract",
        "mode": "without examples: Shopify's taxonomy and attributes",
        "commit": git.commit,
        "dirty": git.dirty,
        "limit": limit,
        "products": len(results),
        "products_with_pairs": with_pairs,
        "errors": sum(1 for r in results if r.error is not None),
        "seconds": seconds,
        "pairs": _pairs(total[METHODS[0]]),
        "methods": {method: _scores(total[method]) for method in METHODS},
        "per_key": {
            key: {"pairs": _pairs(tally[METHODS[0]]), **{m: _scores(tally[m]) for m in METHODS}}
            for key, tally in sorted(counts.items(), key=lambda kv: -_pairs(kv[1][METHODS[0]]))
        },
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    markdown = summary_markdown(summary)
    (out / "summary.md").write_text(markdown, encoding="utf-8")
    return markdown


def _allowed_by_key(data: Mapping[str, object], keys: set[str]) -> dict[str, tuple[str, ...]]:
    """Per suite key, the allowed values (``Other`` left out) of every Shopify attribute that
    names it; keys no attribute names are left out."""
    found: dict[str, set[str]] = {}
    attributes = data.get("attributes")
    for spec in attributes.values() if isinstance(attributes, Mapping) else ():
        if not isinstance(spec, Mapping):
            continue
        values = spec.get("values")
        if not isinstance(values, list):
            continue
        for key in keys:
            if names(str(spec.get("name", "")), key):
                found.setdefault(key, set()).update(str(v) for v in values if v != "Other")
    return {key: tuple(sorted(values)) for key, values in found.items() if values}


def _answer(result: Extraction, key: str) -> str | None:
    return next(
        (value.value for name, value in result.attributes.items() if names(name, key)), None
    )


def _pairs(counted: Counts) -> int:
    return counted.VN + counted.VC + counted.VW


def _scores(counted: Counts) -> dict[str, float]:
    """Every pair has a gold value, so precision is right / given and recall right / pairs."""
    return {"given": counted.VC + counted.VW, "right": counted.VC, **counted.as_dict()}


def summary_markdown(summary: Mapping[str, object]) -> str:
    """The run's headline and per-key table."""
    methods = summary["methods"]
    per_key = summary["per_key"]
    assert isinstance(methods, Mapping) and isinstance(per_key, Mapping)
    lines = [
        f"## llmcat eval: `{summary['suite']}` without examples (Shopify's taxonomy and attributes)",
        "",
        f"{summary['pairs']} gold pairs whose key names a Shopify attribute, "
        f"{summary['products_with_pairs']} of {summary['products']} products; "
        f"{summary['errors']} errors; {float(str(summary['seconds'])):.1f} s",
        "",
        "| method | given | right | precision | recall | F1 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [_row(method, methods[method]) for method in METHODS]
    lines += ["", "| key | pairs | " + " | ".join(f"{m}: right / given" for m in METHODS) + " |"]
    lines += ["| --- | ---: | ---: | ---: |"]
    for key, block in per_key.items():
        cells = [f"{block[m]['right']} / {block[m]['given']}" for m in METHODS]
        lines.append(f"| {key} | {block['pairs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _row(method: str, block: Mapping[str, float]) -> str:
    return (
        f"| {method} | {block['given']:.0f} | {block['right']:.0f} | {block['precision']:.3f} "
        f"| {block['recall']:.3f} | {block['f1']:.3f} |"
    )


__all__ = ["METHODS", "names", "run_without_examples", "shopify_folder"]
