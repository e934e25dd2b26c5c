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
import html
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


#: the strategies of each row: zero-shot ones at 0 shots, those that learn from examples after
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
    rows: list[dict[str, Any]] = []
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
                [
                    outcome_of(sample_of(r, res, suite))
                    for r, res in zip(test, results, strict=True)
                ],
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


def sample_of(record: ClassificationRecord, result: Any, suite: Any) -> dict[str, Any]:
    """The scored sample of one test product, as ``run`` writes it."""
    return {
        "gold": record.gold.path,
        "output": result.model_dump(),
        "scores": M.score_classification(record.gold.path, result, suite.taxonomy, suite.max_level),
    }


COLUMNS = ("accuracy_level_1", "accuracy_level_2", "accuracy_level_3", "ece", "error_rate")


def curve_table(
    suite: str, tests: int, pool: int, args: argparse.Namespace, rows: list[dict[str, Any]]
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


def curve_svg(rows: list[dict[str, Any]], metric: str = "accuracy_level_3") -> str:
    """Accuracy against shots per category, one line per strategy (zero-shot rows start each
    line that learns from examples at 0 shots)."""
    shots = list(dict.fromkeys(str(r["shots"]) for r in rows))
    lines: dict[str, list[tuple[int, float]]] = {}
    zero = [r for r in rows if str(r["shots"]) == "0"]
    for r in rows:
        if str(r["shots"]) == "0" or r.get(metric) is None:
            continue
        name = r["strategy"].split(" ")[0]
        if not lines.get(name) and zero:  # each learner starts from the zero-shot default
            base = next((z for z in zero if z["strategy"].startswith(name)), zero[-1])
            lines[name] = [(0, float(base[metric]))]
        lines.setdefault(name, []).append((shots.index(str(r["shots"])), float(r[metric])))
    lines["embedding (zero-shot)"] = [
        (i, float(z[metric])) for i, z in enumerate(zero[:1]) if z.get(metric) is not None
    ]
    width, height, pad = 460, 260, 40
    values = [v for points in lines.values() for _, v in points] or [0.0, 1.0]
    low, high = max(0.0, min(values) - 0.05), min(1.0, max(values) + 0.05)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad + i * (width - 2 * pad) / max(len(shots) - 1, 1)
        y = height - pad - (v - low) / max(high - low, 1e-9) * (height - 2 * pad)
        return x, y

    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>"]
    parts.append(
        f"<text x='{pad}' y='16' font-size='12'>{html.escape(metric)} against shots per category</text>"
    )
    for i, label in enumerate(shots):
        x, _ = xy(i, low)
        parts.append(
            f"<text x='{x:.0f}' y='{height - 15}' font-size='11' text-anchor='middle'>{html.escape(label)}</text>"
        )
    for v in (low, (low + high) / 2, high):
        _, y = xy(0, v)
        parts.append(f"<text x='4' y='{y:.0f}' font-size='10'>{v:.2f}</text>")
        parts.append(
            f"<line x1='{pad}' x2='{width - pad}' y1='{y:.0f}' y2='{y:.0f}' stroke='#ddd'/>"
        )
    for n, (name, points) in enumerate(lines.items()):
        colour = colours[n % len(colours)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in points))
        parts.append(f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{path}'/>")
        parts.append(
            f"<text x='{width - pad - 110}' y='{30 + 14 * n}' font-size='11' fill='{colour}'>{html.escape(name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def curve_html(table: str, rows: list[dict[str, Any]]) -> str:
    """A self-contained page: the plot (level 1 and level 3) and the table."""
    plots = curve_svg(rows, "accuracy_level_1") + curve_svg(rows, "accuracy_level_3")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>llmcat learning curve</title>"
        "</head><body><h1>Accuracy against labelled examples</h1>"
        f"{plots}<pre>{html.escape(table)}</pre></body></html>\n"
    )


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("curve", help="accuracy against labelled examples per category (knn)")
    p.add_argument("--suite", default="flipkart", help="a labelled suite (default flipkart)")
    p.add_argument("--data", type=Path, help="a JSONL or Flipkart-format CSV instead")
    p.add_argument("--shots", default="0,1,3,5,all", help="examples per category to try")
    p.add_argument("--split", type=float, default=0.5, help="share of the suite used as the pool")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default=None, help="the LLM of the auto rows (default: local)")
    p.add_argument("--out", type=Path, help="folder for curve.json, summary.md, report.html")
    p.set_defaults(func=run_curve)
