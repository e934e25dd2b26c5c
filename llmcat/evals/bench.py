"""Throughput and validity of ``classify_many`` on Flipkart products: cold (empty cache) and cached.

    python -m evals bench [--n 100] [--depth 1] [--strategy auto] [--taxonomy FILE] [--base-url URL]
                      [--backend vllm] [--labels-out FILE]
    python -m evals bench --raw --base-url URL ...    # llmcat against the raw engine (scaling.py)
    python -m evals bench --ray-workers N ...         # one process against Ray (scaling.py)

Without ``--taxonomy`` the taxonomy is the Flipkart tree cut at ``--depth``; with it, any taxonomy
file (e.g. Google's), in which case every answer is checked to be a real node.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from llmcat import Classifier, Settings, Taxonomy
from llmcat.config.flags import SubParsers, add_flags, given
from llmcat.config.options import ClassifyOptions
from llmcat.evals import scaling
from llmcat.evals.flipkart import load_flipkart
from llmcat.evals.paths import flipkart_csv
from llmcat.evals.suites import ClassificationRecord, Gold, stratified

#: the classifier's options bench takes
BENCH_OPTIONS = ("strategy", "beam", "embedding_model", "embedding_batch")


def run_bench(args: argparse.Namespace) -> int:
    rows = list(
        load_flipkart(Path(args.data) if args.data else flipkart_csv(), max_depth=args.depth)
    )
    if args.taxonomy:
        taxonomy = Taxonomy.from_file(args.taxonomy)
    else:
        taxonomy = Taxonomy.from_paths(sorted({" > ".join(g) for _, g in rows}))
    records = [
        ClassificationRecord(id=p.id, product=p, gold=Gold(path=g), group=g[0]) for p, g in rows
    ]
    products = [r.product for r in stratified(records, args.n)]
    if args.raw or args.ray_workers:
        settings = Settings(**given(args, Settings), progress=False)
        options = ClassifyOptions(**given(args, ClassifyOptions))
        if args.raw:
            return scaling.run_raw(taxonomy, products, options, settings, args.rounds)
        return scaling.run_ray_workers(taxonomy, products, options, settings, args.ray_workers)
    with tempfile.TemporaryDirectory() as cache_dir:
        settings = Settings(**given(args, Settings), cache_dir=Path(cache_dir), progress=False)
        clf = Classifier(
            taxonomy, ClassifyOptions(**given(args, ClassifyOptions)), settings=settings
        )
        clf.classify("warm-up: load the model and embed the taxonomy")
        for label in ("cold", "cached"):
            start = time.perf_counter()
            results = clf.classify_many(products)
            elapsed = time.perf_counter() - start
            errors = sum(r.error is not None for r in results)
            valid = sum(
                r.category_id is not None
                and r.category_id in taxonomy
                and list(taxonomy.get(r.category_id).path) == r.path
                for r in results
            )
            tokens = sum(r.usage.prompt_tokens for r in results) / max(len(results), 1)
            peak = max((r.usage.prompt_tokens / max(r.usage.calls, 1) for r in results), default=0)
            if label == "cold" and args.labels_out:
                with Path(args.labels_out).open("w", encoding="utf-8") as out:
                    for product, result in zip(products, results, strict=True):
                        row = {
                            "id": product.id,
                            "path": result.path,
                            "confidence": result.confidence,
                        }
                        out.write(json.dumps(row, ensure_ascii=False) + "\n")
            print(
                f"{label:>6}: {len(results)} items in {elapsed:.1f}s = {len(results) / elapsed:.2f} items/s; "
                f"strategy {clf.strategy}; {len(taxonomy)} nodes / {len(taxonomy.leaves())} leaves; "
                f"valid nodes {valid}/{len(results)}; errors {errors}; prompt tokens/item {tokens:.0f} "
                f"(largest single prompt {peak:.0f}); model {clf.backend.model}"
            )
    return 0


def add_parser(sub: SubParsers) -> None:
    p = sub.add_parser("bench", help="items/s and validity of classify_many, cold and cached")
    p.add_argument(
        "--n", type=int, default=100, help="products, stratified over Flipkart's top level"
    )
    p.add_argument(
        "--depth", type=int, default=1, help="depth of the Flipkart tree used as taxonomy"
    )
    p.add_argument("--taxonomy", type=Path, help="a taxonomy file instead (Google, Shopify, paths)")
    add_flags(p, ClassifyOptions, "evals", only=BENCH_OPTIONS)
    add_flags(p, Settings, "evals", only=("backend", "base_url", "model", "concurrency"))
    p.add_argument(
        "--data", help="Flipkart-format CSV (default ../shared/datasets/flipkart_1050.csv)"
    )
    p.add_argument(
        "--labels-out", type=Path, help="write the cold run's answers here (JSONL: id, path)"
    )
    p.add_argument(
        "--raw",
        action="store_true",
        help="llmcat against its own recorded requests replayed straight to the server "
        "(--base-url): items/s of each and the ratio",
    )
    p.add_argument("--rounds", type=int, default=2, help="--raw rounds (sides alternate)")
    p.add_argument(
        "--ray-workers",
        type=int,
        metavar="N",
        help="items/s of one process, then of llmcat.integrations.ray_data with 1 and N actors (local cluster)",
    )
    p.set_defaults(func=run_bench)
