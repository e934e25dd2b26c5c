"""Throughput of ``classify_many``: items/s cold (empty cache) and cached, on Flipkart products.

python -m evals bench [--n 100] [--backend local] [--base-url URL] [--depth 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from llmcat import Classifier, Settings, Taxonomy

from .flipkart import load_flipkart
from .paths import flipkart_csv


def run_bench(args: argparse.Namespace) -> int:
    rows = list(
        load_flipkart(Path(args.data) if args.data else flipkart_csv(), max_depth=args.depth)
    )
    taxonomy = Taxonomy.from_paths(sorted({" > ".join(g) for _, g in rows}))
    products = [p for p, _ in rows[: args.n]]
    with tempfile.TemporaryDirectory() as cache_dir:
        settings = Settings(
            backend=args.backend,
            base_url=args.base_url,
            model=args.model,
            cache_dir=Path(cache_dir),
            concurrency=args.concurrency,
            progress=False,
        )
        clf = Classifier(taxonomy, settings=settings)
        clf.classify("warm-up: load the model")
        for label in ("cold", "cached"):
            start = time.perf_counter()
            results = clf.classify_many(products)
            elapsed = time.perf_counter() - start
            errors = sum(r.error is not None for r in results)
            tokens = sum(r.usage.prompt_tokens for r in results) / max(len(results), 1)
            print(
                f"{label:>6}: {len(results)} items in {elapsed:.2f}s = {len(results) / elapsed:.1f} items/s "
                f"({len(taxonomy.leaves())} labels, {tokens:.0f} prompt tokens/item, {errors} errors, "
                f"backend {clf.backend.name}, model {clf.backend.model})"
            )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("bench", help="items/s of classify_many, cold and cached")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--depth", type=int, default=1, help="taxonomy depth taken from the gold paths")
    p.add_argument(
        "--data", help="Flipkart-format CSV (default ../shared/datasets/flipkart_1050.csv)"
    )
    p.add_argument("--backend")
    p.add_argument("--base-url")
    p.add_argument("--model")
    p.add_argument("--concurrency", type=int)
    p.set_defaults(func=run_bench)
