"""Accuracy against the number of labelled examples per leaf: the learning curve.

    python -m evals curve [--suite flipkart] [--shots 0,1,3,5,all] [--split 0.5] [--seed 0]
                          [--out runs/curve]

The suite is split once into a labelled pool and a test half (stratified, seeded, as
``run --example-split``). For each number of shots, up to that many pool products per category
become the examples of ``knn`` (0 shots: the zero-shot ``embedding`` strategy), and the test half
is classified. No model calls; writes ``curve.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from pathlib import Path
from typing import Any

from llmcat import Classifier, Settings
from llmcat.errors import ConfigError

from . import metrics as M
from .runner import outcome_of, split_examples
from .suites import ClassificationRecord, load_suite


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
    rows: list[dict[str, Any]] = []
    for shots in steps:
        examples = pick_shots(pool, shots, args.seed)
        strategy = "embedding" if shots == 0 else "knn"
        labelled = [(r.product, r.gold.path) for r in examples] if shots != 0 else None
        clf = Classifier(suite.taxonomy, strategy=strategy, settings=settings, examples=labelled)
        results = clf.classify_many([r.product for r in test])
        asyncio.run(clf.aclose())
        outcomes = []
        for record, result in zip(test, results, strict=True):
            sample = {
                "gold": record.gold.path,
                "output": result.model_dump(),
                "scores": M.score_classification(
                    record.gold.path, result, suite.taxonomy, suite.max_level
                ),
            }
            outcomes.append(outcome_of(sample))
        block = M.classification_metrics(outcomes, suite.max_level)
        rows.append(
            {
                "shots": "all" if shots is None else shots,
                "strategy": strategy,
                "examples": len(examples),
                **block,
            }
        )
    header = "| shots per category | strategy | examples | acc L1 | acc L2 | acc L3 | ECE |"
    print(
        f"{suite.name}: {len(test)} test products, a pool of {len(pool)} (split {args.split}, seed {args.seed})"
    )
    print(header + "\n|" + " ---: |" * 7)
    for row in rows:
        cells = [
            M.format_metric("classify", k, row.get(k))
            for k in ("accuracy_level_1", "accuracy_level_2", "accuracy_level_3", "ece")
        ]
        print(
            f"| {row['shots']} | {row['strategy']} | {row['examples']} | "
            + " | ".join(cells)
            + " |"
        )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "curve.json").write_text(
            json.dumps({"suite": suite.name, "test_items": len(test), "rows": rows}, indent=1)
            + "\n"
        )
        print(f"wrote {args.out}/curve.json")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("curve", help="accuracy against labelled examples per category (knn)")
    p.add_argument("--suite", default="flipkart", help="a labelled suite (default flipkart)")
    p.add_argument("--data", type=Path, help="a JSONL or Flipkart-format CSV instead")
    p.add_argument("--shots", default="0,1,3,5,all", help="examples per category to try")
    p.add_argument("--split", type=float, default=0.5, help="share of the suite used as the pool")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="folder for curve.json")
    p.set_defaults(func=run_curve)
