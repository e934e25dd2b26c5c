"""Judge ``Extractor`` on an extraction suite (``attribute_suites``):

    python -m evals run --task extract --suite oa-mine|flipkart-attributes [--limit N] --out DIR

The extractor learns from the suite's examples and answers its scored products; every (product,
attribute of its category in the examples) is judged by the benchmarks' rule
(``extract_scoring``), beside the value-list baseline learned from the same examples.

The run folder:

- ``records.jsonl``: a line per scored product: its text, category and gold values, the
  ``Extraction`` as returned, the kind (NN/NV/VN/VC/VW) of each answer, the value list's
  answers and their kinds;
- ``summary.json``: both methods' figures (``extract_scoring.scores``), the grounding counts
  (values not in the product's text, values whose source does not read them, ``dropped``),
  the paired comparison, timing and identity;
- ``summary.md`` (also printed): the headline table, per attribute, the review coverage and the
  first wrong answers; ``report.html``: the same with per-category figures, the reliability
  plot and the first 200 wrong answers.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from llmcat.attributes.examples import attributes_by_category
from llmcat.attributes.extractor import Extractor
from llmcat.backends import Backend
from llmcat.config.settings import Settings
from llmcat.evals import plots
from llmcat.evals.attribute_suites import ExtractSuite, ScoredProduct
from llmcat.evals.extract_scoring import Answer, ValueList, reliability_bins, scores
from llmcat.evals.report import Figure, PageView, figure, page_html
from llmcat.evals.stats import mcnemar_exact
from llmcat.evals.suite_runner import git_state
from llmcat.evals.summary import Section
from llmcat.types import AttributeValue, Extraction, Product

#: the two methods judged, as the summary names them
METHODS = ("extractor", "value list")
#: wrong answers printed in summary.md (the page lists up to ``WRONG_ON_PAGE``)
WRONG_SHOWN = 25
WRONG_ON_PAGE = 200


def _texts(product: Product) -> dict[str, str]:
    return {"title": product.title, "description": product.description}


def in_text(value: str, product: Product) -> bool:
    """Whether ``value`` is written in the product's title or description."""
    return any(value in text for text in _texts(product).values())


def reads(answer: AttributeValue, product: Product) -> bool:
    """Whether the answer's source points at its value (or, normalised, at what was read)."""
    source = answer.source
    if source is None:
        return False
    found = _texts(product).get(source.field, "")[source.start : source.end]
    return found == answer.value or (source.read is not None and found == source.read)


def judged_answers(
    suite: ExtractSuite,
    results: Sequence[Extraction],
    baseline: ValueList,
    max_description_chars: int,
) -> tuple[list[Answer], list[Answer]]:
    """Every (product, attribute of its category in the examples), answered by the extractor
    and by the value list (which reads the same text: the title and the description as far
    as the extractor reads it)."""
    names = attributes_by_category(suite.examples)
    ours: list[Answer] = []
    theirs: list[Answer] = []
    for item, result in zip(suite.scored, results, strict=True):
        product = item.product
        texts = [product.title, product.description[:max_description_chars]]
        for name in names.get(item.category, []):
            gold = item.gold.get(name, ())
            got = result.attributes.get(name) if result.ok else None
            ours.append(
                Answer(
                    product.id,
                    item.category,
                    name,
                    gold,
                    got.value if got else None,
                    got.confidence if got else None,
                    got.needs_review if got else None,
                )
            )
            theirs.append(
                Answer(
                    product.id,
                    item.category,
                    name,
                    gold,
                    baseline.answer(texts, item.category, name),
                )
            )
    return ours, theirs


def _record(
    item: ScoredProduct, result: Extraction, ours: list[Answer], theirs: list[Answer]
) -> str:
    record = {
        "id": item.product.id,
        "category": item.category,
        "title": item.product.title,
        "description": item.product.description,
        "gold": {name: list(values) for name, values in item.gold.items()},
        "extraction": result.model_dump(mode="json", exclude={"usage"}),
        "kinds": {a.attribute: a.kind() for a in ours},
        "kinds_case_insensitive": {a.attribute: a.kind(fold_case=True) for a in ours},
        "value_list": {a.attribute: a.value for a in theirs},
        "value_list_kinds": {a.attribute: a.kind() for a in theirs},
    }
    return json.dumps(record, ensure_ascii=False)


def run_extract_suite(
    suite: ExtractSuite,
    out: Path,
    *,
    backend: Backend | str | None = None,
    settings: Settings | None = None,
    limit: int | None = None,
) -> str:
    """Learn, extract, judge; write the run folder (module docstring) and return summary.md."""
    extractor = Extractor(examples=suite.examples, backend=backend, settings=settings)
    started = time.perf_counter()
    tagger = asyncio.run(extractor.tagger())
    learned = time.perf_counter()
    # the category is an input field the extractor reads as such, never as product text
    field = extractor.options.category_field
    products = [
        s.product.model_copy(update={"attributes": {**s.product.attributes, field: s.category}})
        for s in suite.scored
    ]
    results = extractor.extract_many(products, progress=False)
    seconds = {"learn": learned - started, "extract": time.perf_counter() - learned}
    options = extractor.options
    ours, theirs = judged_answers(
        suite, results, ValueList.learned(suite.examples), options.max_description_chars
    )
    calibration = tagger.calibration if tagger is not None else None
    git = git_state()
    summary: dict[str, object] = {
        "suite": suite.name,
        "task": "extract",
        "description": suite.description,
        "dataset_sha256": suite.dataset_sha256,
        "commit": git.commit,
        "dirty": git.dirty,
        "limit": limit,
        "review_threshold": options.review_threshold,
        "decision_threshold": calibration.threshold if calibration else None,
        "held_out_f1": calibration.held_out_f1 if calibration else None,
        "seconds": seconds,
        "items_per_s": len(results) / seconds["extract"] if seconds["extract"] > 0 else None,
        **summarised(suite, results, ours, theirs),
    }
    by_product: dict[str, tuple[list[Answer], list[Answer]]] = {
        s.product.id: ([], []) for s in suite.scored
    }
    for a, b in zip(ours, theirs, strict=True):
        by_product[a.product_id][0].append(a)
        by_product[b.product_id][1].append(b)
    out.mkdir(parents=True, exist_ok=True)
    with (out / "records.jsonl").open("w", encoding="utf-8") as handle:
        for item, result in zip(suite.scored, results, strict=True):
            handle.write(_record(item, result, *by_product[item.product.id]) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    wrong = [a for a in ours if not a.right]
    markdown = summary_markdown(summary, wrong)
    (out / "summary.md").write_text(markdown, encoding="utf-8")
    (out / "report.html").write_text(report_page(summary, ours, wrong), encoding="utf-8")
    return markdown


def summarised(
    suite: ExtractSuite,
    results: Sequence[Extraction],
    ours: Sequence[Answer],
    theirs: Sequence[Answer],
) -> dict[str, object]:
    """The run's counts and both methods' figures: what was scored, what was not, the
    grounding counts, the paired comparison (right: VC or NN) and ``scores`` per method."""
    names = attributes_by_category(suite.examples)
    by_id = {s.product.id: s.product for s in suite.scored}
    values = [
        (value, item.product)
        for item, result in zip(suite.scored, results, strict=True)
        for value in result.attributes.values()
        if value.value is not None
    ]
    only_ours = sum(a.right and not b.right for a, b in zip(ours, theirs, strict=True))
    only_theirs = sum(b.right and not a.right for a, b in zip(ours, theirs, strict=True))
    return {
        "examples": len(suite.examples),
        "products": len(suite.scored),
        "answers": len(ours),
        "gold_values": sum(bool(a.gold) for a in ours),
        "unscored_gold_values": sum(
            bool(v)
            for item in suite.scored
            for name, v in item.gold.items()
            if name not in names.get(item.category, [])
        ),
        "errors": sum(not r.ok for r in results),
        "values_given": len(values),
        "not_in_text": sum(not in_text(v.value or "", p) for v, p in values),
        "source_not_reading_value": sum(not reads(v, p) for v, p in values),
        "dropped": sum(r.dropped for r in results),
        "value_list_not_in_text": sum(
            not in_text(b.value, by_id[b.product_id]) for b in theirs if b.value is not None
        ),
        "paired": {
            "right_only_extractor": only_ours,
            "right_only_value_list": only_theirs,
            "mcnemar_p": mcnemar_exact(only_theirs, only_ours),
        },
        "methods": {METHODS[0]: scores(ours), METHODS[1]: scores(theirs)},
    }


def _f(value: object) -> str:
    """A figure as the tables print it: counts whole, shares with 3 decimals, n/a for None."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _method(summary: Mapping[str, object], name: str) -> Mapping[str, object]:
    methods = summary["methods"]
    assert isinstance(methods, Mapping)
    block = methods[name]
    assert isinstance(block, Mapping)
    return block


def _get(block: Mapping[str, object], *keys: str) -> object:
    value: object = block
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def identity_line(summary: Mapping[str, object]) -> str:
    seconds = summary["seconds"]
    assert isinstance(seconds, Mapping)
    commit = str(summary.get("commit") or "?")[:10] + (" (dirty)" if summary.get("dirty") else "")
    limited = f", --limit {summary['limit']}" if summary.get("limit") else ""
    speed = summary["items_per_s"]
    return (
        f"{summary['description']} (dataset sha256 {str(summary['dataset_sha256'])[:12]}"
        f"{limited}): {_f(summary['examples'])} examples, {_f(summary['products'])} products "
        f"scored, {_f(summary['answers'])} answers ({_f(summary['gold_values'])} with a gold "
        f"value); commit {commit}; learned in {seconds['learn']:.0f} s (or read from the "
        f"cache), extracted in {seconds['extract']:.1f} s"
        + (f" ({speed:.1f} products/s)" if isinstance(speed, float) else "")
    )


def headline(summary: Mapping[str, object]) -> Section:
    """Both methods side by side: micro F1 exact and case-insensitive, P, R, the kinds,
    calibration, review and grounding."""
    a, b = (_method(summary, m) for m in METHODS)
    rows = [
        ["micro F1 (exact)", *(_f(_get(m, "exact", "f1")) for m in (a, b))],
        ["micro F1 (case-insensitive)", *(_f(_get(m, "case_insensitive", "f1")) for m in (a, b))],
        ["precision (exact)", *(_f(_get(m, "exact", "precision")) for m in (a, b))],
        ["recall (exact)", *(_f(_get(m, "exact", "recall")) for m in (a, b))],
        *(
            [f"{kind}", *(_f(_get(m, "exact", kind)) for m in (a, b))]
            for kind in ("NN", "NV", "VN", "VC", "VW")
        ),
        ["ECE of the values' confidence (10 bins)", _f(a.get("ece")), "n/a"],
        ["ECE of every answer's confidence", _f(a.get("ece_every_answer")), "n/a"],
        ["answers flagged (needs_review)", _f(a.get("flagged")), "n/a"],
        [
            "values not in the product's text",
            _f(summary["not_in_text"]),
            _f(summary["value_list_not_in_text"]),
        ],
        ["values whose source does not read them", _f(summary["source_not_reading_value"]), "n/a"],
        ["dropped (neither in the text nor allowed)", _f(summary["dropped"]), "n/a"],
        ["error records", _f(summary["errors"]), "0"],
    ]
    paired = summary["paired"]
    assert isinstance(paired, Mapping)
    notes = [
        f"Paired over the same answers (right: VC or NN): {paired['right_only_extractor']} right "
        f"only for the extractor, {paired['right_only_value_list']} only for the value list, "
        f"exact McNemar p={paired['mcnemar_p']:.2g}. Decision threshold "
        f"{_f(summary['decision_threshold'])}, held-out F1 on the examples "
        f"{_f(summary['held_out_f1'])}; {summary['unscored_gold_values']} gold values of "
        "attributes their category has no example of are not scored."
    ]
    return Section("Extraction", ["metric", *METHODS], rows, notes)


def per_group(summary: Mapping[str, object], key: str, title: str) -> Section:
    """Per attribute (``per_attribute``) or category: gold values, P/R/F1, the baseline's F1."""
    a, b = (_method(summary, m) for m in METHODS)
    ours, theirs = a.get(key), b.get(key)
    assert isinstance(ours, Mapping) and isinstance(theirs, Mapping)
    rows = []
    for name, block in ours.items():
        gold = sum(int(block[kind]) for kind in ("VN", "VC", "VW"))
        rows.append(
            [
                name,
                _f(gold),
                *(_f(block[k]) for k in ("precision", "recall", "f1", "f1_case_insensitive")),
                _f(theirs[name]["f1"]),
            ]
        )
    headers = [title, "gold values", "P", "R", "F1", "F1 (case-insensitive)", "value list F1"]
    return Section(f"Per {title}", headers, rows)


def coverage_section(summary: Mapping[str, object]) -> Section:
    """The review coverage table: the run's flag, then confidence thresholds."""
    rows = []
    coverage = _method(summary, METHODS[0]).get("review_coverage")
    for row in coverage if isinstance(coverage, list) else []:
        threshold = row["threshold"]
        rule = (
            f"needs_review (confidence < {summary['review_threshold']})"
            if threshold is None
            else f"confidence < {threshold}"
        )
        rows.append(
            [
                rule,
                *(
                    _f(row[f"{scope}_{what}"])
                    for scope in ("answers", "values")
                    for what in ("flagged", "kept_accuracy", "flagged_accuracy")
                ),
            ]
        )
    headers = [
        "flag",
        "answers flagged",
        "accuracy of the rest",
        "accuracy of the flagged",
        "values flagged",
        "value accuracy of the rest",
        "value accuracy of the flagged",
    ]
    notes = [
        "An answer is right when its value is a gold one, or there is none and none was given; "
        "'values' are the answers that give one."
    ]
    return Section("Review coverage", headers, rows, notes)


def wrong_section(wrong: Sequence[Answer], count: int) -> Section:
    rows = [
        [
            a.product_id,
            a.category,
            a.attribute,
            " | ".join(a.gold) or "(none)",
            a.value if a.value is not None else "(none)",
            a.kind(),
            _f(a.confidence),
        ]
        for a in wrong[:count]
    ]
    notes = [f"The first {count} in the suite's order."] if len(wrong) > count else []
    headers = ["product", "category", "attribute", "gold", "answer", "kind", "confidence"]
    return Section(f"Wrong answers ({len(wrong)})", headers, rows, notes)


def _markdown(section: Section) -> list[str]:
    lines = [f"### {section.title}", ""]
    for note in section.notes:
        lines += [note, ""]
    lines.append("| " + " | ".join(section.headers) + " |")
    lines.append("| --- |" + " ---: |" * (len(section.headers) - 1))
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in section.rows]
    return [*lines, ""]


def summary_markdown(summary: Mapping[str, object], wrong: Sequence[Answer]) -> str:
    lines = [f"## llmcat eval: `{summary['suite']}`, attribute extraction", ""]
    lines += [identity_line(summary), ""]
    for section in (
        headline(summary),
        per_group(summary, "per_attribute", "attribute"),
        coverage_section(summary),
        wrong_section(wrong, WRONG_SHOWN),
    ):
        lines += _markdown(section)
    return "\n".join(lines).rstrip() + "\n"


def report_page(
    summary: Mapping[str, object], ours: Sequence[Answer], wrong: Sequence[Answer]
) -> str:
    """report.html: the summary's tables, per category, the reliability plot, the wrong answers."""
    figures: list[Figure] = []
    bins = reliability_bins(ours)
    if plots.available() and bins:
        figures.append(
            figure(
                "reliability",
                plots.reliability(bins),
                "The values given: share right per confidence bin (top) and values per bin.",
            )
        )
    view: PageView = {
        "heading": f"{summary['suite']}: attribute extraction",
        "identity": identity_line(summary),
        "summary": [headline(summary)],
        "plots": figures,
        "plots_missing": "" if figures else "No plots: pip install 'llmcat[report]' (matplotlib).",
        "tables": [
            per_group(summary, "per_attribute", "attribute"),
            per_group(summary, "per_category", "category"),
            coverage_section(summary),
            wrong_section(wrong, WRONG_ON_PAGE),
        ],
    }
    return page_html(f"llmcat extract eval: {summary['suite']}", view)


__all__ = [
    "METHODS",
    "in_text",
    "judged_answers",
    "reads",
    "run_extract_suite",
    "summarised",
    "summary_markdown",
]
