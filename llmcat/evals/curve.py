"""Accuracy against the number of labelled examples per leaf: the learning curve.

    python -m evals curve [--suite flipkart] [--shots 0,1,3,5,all] [--split 0.5] [--seed 0]
                          [--out runs/curve]

The suite is split once into a labelled pool and a test half (stratified, seeded, as
``run --example-split``). For each number of shots, up to that many pool products per category
become the examples of ``knn``, ``supervised`` and ``auto`` (every expert fused, its weights
fitted on those examples by cross-validation); at 0 shots the rows are the zero-shot ``embedding``
baseline and the zero-shot default (``auto``). The test half is classified by each. Prints a
Markdown table; with ``--out`` writes ``curve.json``, ``summary.md`` and ``report.html`` (plots
of level-1 and level-3 accuracy). The LLM is asked only where its trust is above zero (the
embedded SmolLM2's shipped fit mutes it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from pathlib import Path

from llmcat import Classification, Classifier, Settings
from llmcat.config.flags import SubParsers
from llmcat.errors import ConfigError
from llmcat.evals import metrics as M
from llmcat.evals import plots
from llmcat.evals.records import ClassificationSample
from llmcat.evals.report import PageView, figure, page_html
from llmcat.evals.suite_runner import split_examples
from llmcat.evals.suites import ClassificationRecord, Suite, load_suite
from llmcat.evals.summary import Section


def pick_shots(
    pool: list[ClassificationRecord], shots: int | None, seed: int
) -> list[ClassificationRecord]:
    """Up to ``shots`` records per gold category (all when None), seeded."""
    if shots is None:
        return pool
    by_category: dict[str, list[ClassificationRecord]] = {}
    for r in pool:
        by_category.setdefault(" > ".join(r.gold.path), []).append(r)
    rng = random.Random(seed)
    chosen: list[ClassificationRecord] = []
    for members in by_category.values():
        chosen += rng.sample(members, min(shots, len(members)))
    return chosen


#: the strategies of each row: zero-shot ones at 0 shots, those that learn from examples after
#: one point of the curve: shots, strategy, examples and the classification metrics
CurveRow = dict[str, str | float | None]
ZERO_SHOT = ("embedding", "auto")
WITH_EXAMPLES = ("knn", "supervised", "auto")


def run_curve(args: argparse.Namespace) -> int:
    try:
        steps = [None if s == "all" else int(s) for s in args.shots.split(",")]
    except ValueError:
        raise ConfigError(
            f"--shots takes numbers and 'all', e.g. 0,1,3,5,all; got {args.shots}"
        ) from None
    suite = load_suite(args.suite, data=args.data)
    pool, test = split_examples(suite.classify, args.split, args.seed)
    settings = Settings(progress=False)
    rows: list[CurveRow] = []
    for shots in steps:
        examples = pick_shots(pool, shots, args.seed)
        labelled = [(r.product, r.gold.path) for r in examples] if shots != 0 else None
        for strategy in ZERO_SHOT if shots == 0 else WITH_EXAMPLES:
            clf = Classifier(
                suite.taxonomy,
                strategy=strategy,
                settings=settings,
                examples=labelled,
                backend=args.backend,
            )
            results = clf.classify_many([r.product for r in test])
            asyncio.run(clf.aclose())
            block = M.classification_metrics(
                [sample_of(r, res, suite).outcome() for r, res in zip(test, results, strict=True)],
                suite.max_level,
            )
            name = f"{strategy} ({clf.strategy})" if strategy == "auto" else strategy
            rows.append(
                {
                    "shots": "all" if shots is None else shots,
                    "strategy": name,
                    "examples": len(examples),
                    **block,
                }
            )
    table = curve_table(suite.name, len(test), len(pool), args, rows)
    print(table, end="")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "curve.json").write_text(
            json.dumps({"suite": suite.name, "test_items": len(test), "rows": rows}, indent=1)
            + "\n"
        )
        (args.out / "summary.md").write_text(table, encoding="utf-8")
        (args.out / "report.html").write_text(curve_html(table, rows), encoding="utf-8")
        print(f"wrote {args.out}/curve.json, summary.md, report.html")
    return 0


def sample_of(
    record: ClassificationRecord, result: Classification, suite: Suite
) -> ClassificationSample:
    """The scored sample of one test product, as ``run`` writes it."""
    return ClassificationSample(
        strategy=result.strategy,
        id=record.id,
        input=record.product.model_dump(mode="json", exclude_defaults=True),
        gold=list(record.gold.path),
        output=result,
        scores=M.score_classification(record.gold.path, result, suite.taxonomy, suite.max_level),
    )


COLUMNS = ("accuracy_level_1", "accuracy_level_2", "accuracy_level_3", "ece", "error_rate")


def curve_table(
    suite: str, tests: int, pool: int, args: argparse.Namespace, rows: list[CurveRow]
) -> str:
    """The Markdown table of the curve, one row per (shots, strategy)."""
    lines = [
        f"{suite}: {tests} test products, a pool of {pool} (split {args.split}, seed {args.seed})",
        "",
        "| shots per category | strategy | examples | acc L1 | acc L2 | acc L3 | ECE | errors |",
        "|" + " ---: |" * 8,
    ]
    for row in rows:
        cells = [M.format_metric("classify", k, row.get(k)) for k in COLUMNS]
        lines.append(
            f"| {row['shots']} | {row['strategy']} | {row['examples']} | {' | '.join(cells)} |"
        )
    return "\n".join(lines) + "\n"


def curve_html(table: str, rows: list[CurveRow]) -> str:
    """A self-contained page: the learning curves at levels 1 and 3, and the table."""
    figures = []
    if plots.available():
        figures = [
            figure(
                f"curve-{metric}",
                plots.learning_curve(rows, metric),
                f"{metric.replace('_', ' ')} of each strategy against examples per category.",
            )
            for metric in ("accuracy_level_1", "accuracy_level_3")
        ]
    lines = [line for line in table.splitlines() if line.startswith("|")]
    headers = [c.strip() for c in lines[0].strip("|").split("|")] if lines else []
    body = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    view: PageView = {
        "heading": "learning curve",
        "identity": table.splitlines()[0] if table else "",
        "summary": [Section("Learning curve", headers, body)],
        "plots": figures,
        "plots_missing": "" if figures else "No plots: pip install 'llmcat[report]' (matplotlib).",
    }
    return page_html("llmcat learning curve", view)


def add_parser(sub: SubParsers) -> None:
    p = sub.add_parser("curve", help="accuracy against labelled examples per category (knn)")
    p.add_argument("--suite", default="flipkart", help="a labelled suite (default flipkart)")
    p.add_argument("--data", type=Path, help="a JSONL or Flipkart-format CSV instead")
    p.add_argument("--shots", default="0,1,3,5,all", help="examples per category to try")
    p.add_argument("--split", type=float, default=0.5, help="share of the suite used as the pool")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default=None, help="the LLM of the auto rows (default: local)")
    p.add_argument("--out", type=Path, help="folder for curve.json, summary.md, report.html")
    p.set_defaults(func=run_curve)
