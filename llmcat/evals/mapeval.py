"""Judge ``llmcat map`` against a published mapping (Shopify's, to Google).

    python -m evals map --from SOURCE --to TARGET --pairs GOLD [--known-share 0.5] [--seed 0]
                        [--verticals even|odd|all] [--structure W] [--temperature T]
                        [--out DIR]

Every source category is scored against its gold target (a source category the gold file does
not list is gold *unmapped*). ``--known-share`` gives that share of the gold pairs (seeded) to the
mapper as known pairs and scores only the rest, beside the zero-shot mapping of the same
categories. ``--verticals`` scores the even or odd top-level categories of the source (in sorted
order): constants are fitted on one half and reported on the other.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from llmcat import Taxonomy
from llmcat.calibration import expected_calibration_error
from llmcat.embeddings import default_embedder
from llmcat.mapping import CategoryMapping, MapOptions, TaxonomyMapper, read_pairs
from llmcat.settings import default_cache_dir

from .stats import mcnemar_exact


def scores(
    results: Sequence[CategoryMapping], gold: dict[str, str | None], target: Taxonomy
) -> dict[str, float]:
    """Accuracy (exact node, unmapped counted as an answer), on the pairs whose paths differ,
    at the top level; unmapped precision and recall; ECE and NLL of the confidence; the flagged
    share and the accuracy of the rest."""
    right = [r.target_id == gold[r.source_id] for r in results]
    differ = [
        ok
        for r, ok in zip(results, right, strict=True)
        if gold[r.source_id] is None
        or target.get(gold[r.source_id] or "").path_text != r.source_path
    ]
    top = [
        (r.target_id is None and gold[r.source_id] is None)
        or (
            r.target_id is not None
            and gold[r.source_id] is not None
            and target.get(r.target_id).path[0] == target.get(gold[r.source_id] or "").path[0]
        )
        for r in results
    ]
    said_unmapped = [r for r in results if r.target_id is None]
    truly_unmapped = [r for r in results if gold[r.source_id] is None]
    scored = [(r.confidence, ok) for r, ok in zip(results, right, strict=True) if r.confidence]
    kept = [ok for r, ok in zip(results, right, strict=True) if not r.needs_review]
    n = max(len(results), 1)
    return {
        "categories": float(len(results)),
        "accuracy": sum(right) / n,
        "accuracy_paths_differ": sum(differ) / max(len(differ), 1),
        "paths_differ": float(len(differ)),
        "accuracy_top_level": sum(top) / n,
        "unmapped_precision": (
            sum(gold[r.source_id] is None for r in said_unmapped) / len(said_unmapped)
            if said_unmapped
            else float("nan")
        ),
        "unmapped_recall": (
            sum(r.target_id is None for r in truly_unmapped) / len(truly_unmapped)
            if truly_unmapped
            else float("nan")
        ),
        "ece": expected_calibration_error([c for c, _ in scored], [ok for _, ok in scored]),
        # how surprised the confidence was by whether the answer was right (lower is better)
        "nll": sum(-math.log(max(c if ok else 1 - c, 1e-9)) for c, ok in scored)
        / max(len(scored), 1),
        "flagged": 1 - len(kept) / n,
        "unflagged_accuracy": sum(kept) / max(len(kept), 1),
    }


def run_map_eval(args: argparse.Namespace) -> int:
    source, target = Taxonomy.from_file(args.source), Taxonomy.from_file(args.target)
    gold: dict[str, str | None] = {c.id: None for c in source}
    for left, right in read_pairs(args.pairs):
        s, t = source.find_path(left), target.find_path(right) if right else None
        if s is not None:
            gold[s.id] = t.id if t is not None else None
    verticals = sorted({c.path[0] for c in source})
    if args.verticals != "all":
        chosen = set(verticals[0 if args.verticals == "even" else 1 :: 2])
        scope = {c.id for c in source if c.path[0] in chosen}
    else:
        scope = {c.id for c in source}
    known: list[tuple[str, str | None]] = []
    if args.known_share > 0:
        ids = sorted(scope)
        random.Random(args.seed).shuffle(ids)
        given = set(ids[: int(len(ids) * args.known_share)])
        scope -= given
        known = [
            (source.get(i).path_text, target.get(g).path_text if (g := gold[i]) else None)
            for i in sorted(given)
        ]
    embedder = default_embedder(base_url=None, embedding_model=args.embedding_model, api_key=None)
    cache = default_cache_dir()
    options = MapOptions(structure=args.structure, temperature=args.temperature)
    runs = {
        "zero-shot": TaxonomyMapper(
            source, target, embedder=embedder, cache_dir=cache, options=options
        ).map()
    }
    if known:
        runs["with known pairs"] = TaxonomyMapper(
            source, target, known=known, embedder=embedder, cache_dir=cache, options=options
        ).map()
    lines = [
        f"{args.source.name} -> {args.target.name}: {len(scope)} categories scored"
        + (f", {len(known)} given as known pairs (seed {args.seed})" if known else "")
        + (f", {args.verticals} verticals" if args.verticals != "all" else "")
    ]
    judged = {}
    for name, results in runs.items():
        chosen_results = [r for r in results if r.source_id in scope]
        judged[name] = chosen_results
        block = scores(chosen_results, gold, target)
        methods = Counter(r.method for r in chosen_results)
        lines.append(
            f"{name}: "
            + ", ".join(f"{k} {v:.3f}" for k, v in block.items())
            + f"; methods {dict(methods)}"
        )
    if len(judged) == 2:
        a, b = judged["zero-shot"], judged["with known pairs"]
        only_a = sum(
            x.target_id == gold[x.source_id] != y.target_id for x, y in zip(a, b, strict=True)
        )
        only_b = sum(
            y.target_id == gold[y.source_id] != x.target_id for x, y in zip(a, b, strict=True)
        )
        lines.append(
            f"same categories, exact McNemar: {only_b} right only with known pairs, {only_a} only "
            f"zero-shot, p={mcnemar_exact(only_a, only_b):.4f}"
        )
    print("\n".join(lines))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, results in judged.items():
            file = args.out / f"{name.replace(' ', '-')}.jsonl"
            file.write_text("".join(r.model_dump_json() + "\n" for r in results), encoding="utf-8")
        (args.out / "summary.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (args.out / "scores.json").write_text(
            json.dumps({n: scores(r, gold, target) for n, r in judged.items()}, indent=2) + "\n",
            encoding="utf-8",
        )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("map", help="judge llmcat map against a published mapping")
    p.add_argument("--from", dest="source", type=Path, required=True, help="source taxonomy")
    p.add_argument("--to", dest="target", type=Path, required=True, help="target taxonomy")
    p.add_argument("--pairs", type=Path, required=True, help="the gold mapping (→/⇒, CSV, JSONL)")
    p.add_argument("--known-share", type=float, default=0.0, help="share given as known pairs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verticals", choices=["all", "even", "odd"], default="all")
    p.add_argument("--embedding-model")
    p.add_argument(
        "--structure", type=float, help="the structure bonus (default: the fitted one; 0: off)"
    )
    p.add_argument("--temperature", type=float, help="the scores' softmax temperature")
    p.add_argument("--out", type=Path, help="folder for the mappings and scores")
    p.set_defaults(func=run_map_eval)
