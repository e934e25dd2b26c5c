"""Judge ``llmcat map`` against a published mapping (Shopify's, to Google): a mapping suite
(``python -m evals run --suite shopify-google --task map``, ``run_map_suite``) or ad hoc:

    python -m evals map --from SOURCE --to TARGET --pairs GOLD [--known-share 0.5] [--seed 0]
                        [--verticals even|odd|all] [--structure W] [--temperature T]
                        [--out DIR]

    python -m evals map-release --from SOURCE --to TARGET --pairs GOLD [--new-share 0.1] [--seed 0]
                                [--verticals even|odd|all] [--out DIR]

Every source category is scored against its gold target (a source category the gold file does
not list is gold *unmapped*). ``--known-share`` gives that share of the gold pairs (seeded) to the
mapper as known pairs and scores only the rest, beside the zero-shot mapping of the same
categories. ``--verticals`` scores the even or odd top-level categories of the source (in sorted
order): constants are fitted on one half and reported on the other. ``map-release`` simulates a
new release of the source: a seeded share of its leaves is held out as if new (their pairs are
not known, every other pair is) and the mapping of the new leaves is scored beside the rule
"take the parent's known target".
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from llmcat import Taxonomy
from llmcat.config.flags import SubParsers
from llmcat.config.settings import default_cache_dir
from llmcat.embeddings import default_embedder
from llmcat.evals import metrics as M
from llmcat.evals import plots
from llmcat.evals.report import PageView, figure, page_html
from llmcat.evals.stats import mcnemar_exact
from llmcat.evals.suites import MapSuite
from llmcat.evals.summary import Section
from llmcat.mapping import CategoryMapping, MapOptions, TaxonomyMapper, read_pairs

UNMAPPED = ("(unmapped)",)  # a gold or predicted "no counterpart", scored as a node of its own
RECALL_AT = (1, 3, 5)


def outcomes(
    results: Sequence[CategoryMapping], gold: Mapping[str, str | None], target: Taxonomy
) -> list[M.Outcome]:
    """The mappings as the classification metrics see them: gold and predicted target paths
    (``UNMAPPED`` for none), the confidence, whether the row is flagged."""

    def path(node: str | None) -> tuple[str, ...]:
        return target.get(node).path if node is not None else UNMAPPED

    return [
        M.Outcome(
            gold=path(gold[r.source_id]),
            pred=path(r.target_id),
            confidence=r.confidence,
            needs_review=r.needs_review,
        )
        for r in results
    ]


def scores(
    results: Sequence[CategoryMapping], gold: Mapping[str, str | None], target: Taxonomy
) -> dict[str, float]:
    """Exact node accuracy (unmapped counted as an answer), over all and over the categories
    whose gold path differs from their own; on the gold node's lineage (the gold node, an
    ancestor or a descendant); same top level; hierarchical F1; unmapped precision and recall;
    ECE and NLL of the confidence; recall at k (the answer, then its alternatives); the flagged
    share and the accuracy of the rest."""
    judged = outcomes(results, gold, target)
    right = [o.correct for o in judged]
    differ = [
        o.correct
        for r, o in zip(results, judged, strict=True)
        if o.gold == UNMAPPED or " > ".join(o.gold) != r.source_path
    ]
    lineage = [
        o.pred is not None and (o.pred[: len(o.gold)] == o.gold or o.gold[: len(o.pred)] == o.pred)
        for o in judged
    ]
    said_unmapped = [r for r in results if r.target_id is None]
    truly_unmapped = [r for r in results if gold[r.source_id] is None]
    scored = [(o.confidence, o.correct) for o in judged if o.confidence is not None]
    kept = [o.correct for o in judged if not o.needs_review]
    n = max(len(results), 1)
    out = {
        "categories": float(len(results)),
        "accuracy": sum(right) / n,
        "accuracy_paths_differ": sum(differ) / max(len(differ), 1),
        "paths_differ": float(len(differ)),
        "on_lineage": sum(lineage) / n,
        "accuracy_top_level": M.accuracy_per_level(judged, 1).get("level_1", 0.0),
        "hierarchical_f1": M.hierarchical_prf(judged)[2],
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
        "ece": M.ece_of(judged) or 0.0,
        # how surprised the confidence was by whether the answer was right (lower is better)
        "nll": sum(-math.log(max(c if ok else 1 - c, 1e-9)) for c, ok in scored)
        / max(len(scored), 1),
        "flagged": 1 - len(kept) / n,
        "unflagged_accuracy": sum(kept) / max(len(kept), 1),
    }
    for k in RECALL_AT:
        found = [gold[r.source_id] in _candidates(r)[:k] for r in results]
        out[f"recall_at_{k}"] = sum(found) / n
    return out


def _candidates(result: CategoryMapping) -> list[str | None]:
    """The answer first, then the alternatives not already listed."""
    ranked: list[str | None] = [result.target_id]
    ranked += [a.target_id for a in result.alternatives if a.target_id != result.target_id]
    return ranked


def _mcnemar_line(
    a: Sequence[CategoryMapping],
    b: Sequence[CategoryMapping],
    gold: Mapping[str, str | None],
    names: tuple[str, str],
) -> str:
    only_a = sum(x.target_id == gold[x.source_id] != y.target_id for x, y in zip(a, b, strict=True))
    only_b = sum(y.target_id == gold[y.source_id] != x.target_id for x, y in zip(a, b, strict=True))
    return (
        f"same categories, exact McNemar: {only_b} right only {names[1]}, {only_a} only "
        f"{names[0]}, p={mcnemar_exact(only_a, only_b):.2g}"
    )


def _gold(source: Taxonomy, target: Taxonomy, pairs: Path) -> dict[str, str | None]:
    gold: dict[str, str | None] = {c.id: None for c in source}
    for left, right in read_pairs(pairs):
        s, t = source.find_path(left), target.find_path(right) if right else None
        if s is not None:
            gold[s.id] = t.id if t is not None else None
    return gold


def _scope(source: Taxonomy, verticals: str) -> set[str]:
    """The categories of the even or odd top-level categories (sorted order), or all."""
    tops = sorted({c.path[0] for c in source})
    if verticals == "all":
        return {c.id for c in source}
    chosen = set(tops[0 if verticals == "even" else 1 :: 2])
    return {c.id for c in source if c.path[0] in chosen}


def release_split(source: Taxonomy, share: float, seed: int) -> list[str]:
    """About ``share`` of the source's leaves below the top level, as if a release added them:
    a release adds groups of siblings, so whole groups are taken (every leaf child of a seeded
    sample of parents), and a new leaf's siblings are often new too (sorted ids)."""
    leaves = [c for c in source.leaves() if c.parent_id is not None]
    groups: dict[str, list[str]] = {}
    for leaf in leaves:
        groups.setdefault(leaf.parent_id or "", []).append(leaf.id)
    parents = sorted(groups)
    random.Random(seed).shuffle(parents)
    wanted = round(len(leaves) * share)
    new: list[str] = []
    for parent in parents:
        if len(new) >= wanted:
            break
        new += groups[parent]
    return sorted(new)


def run_release_eval(args: argparse.Namespace) -> int:
    source, target = Taxonomy.from_file(args.source), Taxonomy.from_file(args.target)
    gold = _gold(source, target, args.pairs)
    new = release_split(source, args.new_share, args.seed)
    held = set(new)
    scope = [i for i in new if i in _scope(source, args.verticals)]
    known = [
        (c.path_text, target.get(g).path_text if (g := gold[c.id]) else None)
        for c in source
        if c.id not in held
    ]
    embedder = default_embedder(base_url=None, embedding_model=args.embedding_model, api_key=None)
    mapper = TaxonomyMapper(
        source, target, known=known, embedder=embedder, cache_dir=default_cache_dir()
    )
    mapped = {r.source_id: r for r in mapper.map()}
    rule = {i: gold[source.get(i).parent_id or ""] for i in scope}
    right = [mapped[i].target_id == gold[i] for i in scope]
    rule_right = [rule[i] == gold[i] for i in scope]
    where_wrong = [r for r, q in zip(right, rule_right, strict=True) if not q]
    n = max(len(scope), 1)
    figures = {
        "new_leaves": float(len(scope)),
        "known_pairs": float(len(known)),
        "accuracy": sum(right) / n,
        "parent_rule_accuracy": sum(rule_right) / n,
        "rule_wrong": float(len(where_wrong)),
        "accuracy_where_rule_wrong": sum(where_wrong) / max(len(where_wrong), 1),
        "right_only_mapping": float(
            sum(a and not b for a, b in zip(right, rule_right, strict=True))
        ),
        "right_only_rule": float(sum(b and not a for a, b in zip(right, rule_right, strict=True))),
    }
    # the new leaves whose path is no target node's: there, no exact match settles it
    differ = [n for n, i in enumerate(scope) if target.find_path(source.get(i).path) is None]
    figures["paths_differ"] = float(len(differ))
    figures["accuracy_paths_differ"] = sum(right[n] for n in differ) / max(len(differ), 1)
    figures["parent_rule_accuracy_paths_differ"] = sum(rule_right[n] for n in differ) / max(
        len(differ), 1
    )
    line = (
        f"{args.source.name} -> {args.target.name}: {len(scope)} of {len(new)} new leaves "
        f"scored ({args.verticals} verticals, seed {args.seed}), {len(known)} pairs known; "
        + ", ".join(
            f"{k} {v:.3f}" if "accuracy" in k else f"{k} {v:.0f}" for k, v in figures.items()
        )
    )
    print(line)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        rows = [mapped[i] for i in scope]
        (args.out / "new-leaves.jsonl").write_text(
            "".join(r.model_dump_json() + "\n" for r in rows), encoding="utf-8"
        )
        (args.out / "scores.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def run_map_eval(args: argparse.Namespace) -> int:
    source, target = Taxonomy.from_file(args.source), Taxonomy.from_file(args.target)
    gold = _gold(source, target, args.pairs)
    scope = _scope(source, args.verticals)
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
        lines.append(
            _mcnemar_line(
                judged["zero-shot"],
                judged["with known pairs"],
                gold,
                ("zero-shot", "with known pairs"),
            )
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


MAPPINGS = ("zero-shot", "with known pairs")


def run_map_suite(
    suite: MapSuite,
    out: Path,
    *,
    embedding_model: str | None = None,
    lexical_weight: float | None = None,
) -> str:
    """Map the whole source tree twice (zero-shot, and with the pool half as known pairs), score
    both on the test half, write the run folder and return its summary (markdown)."""
    source, target = suite.source, suite.target
    embedder = default_embedder(base_url=None, embedding_model=embedding_model, api_key=None)
    options = MapOptions(lexical_weight=lexical_weight)
    known = [
        (source.get(i).path_text, target.get(g).path_text if (g := suite.gold[i]) else None)
        for i in suite.pool
    ]
    runs: dict[str, list[CategoryMapping]] = {}
    seconds: dict[str, float] = {}
    for name, pairs in zip(MAPPINGS, ([], known), strict=True):
        mapper = TaxonomyMapper(
            source,
            target,
            known=pairs,
            embedder=embedder,
            cache_dir=default_cache_dir(),
            options=options,
        )
        started = time.perf_counter()
        mapped = {r.source_id: r for r in mapper.map()}
        seconds[name] = time.perf_counter() - started
        runs[name] = [mapped[i] for i in suite.test]
        embedder_name = mapper.embedder.name
    blocks = {name: scores(results, suite.gold, target) for name, results in runs.items()}
    identity = (
        f"suite {suite.name} (dataset sha256 {suite.dataset_sha256[:12]}), split seed "
        f"{suite.seed}: {len(suite.test)} test categories scored, {len(known)} pool pairs known; "
        f"embedder {embedder_name}; the whole tree ({len(source)} categories onto "
        f"{len(target)} nodes) mapped in "
        + ", ".join(f"{seconds[n]:.0f} s {n}" for n in MAPPINGS)
        + " (embeddings from the cache when present)"
    )
    table = Section(
        "Mapping quality on the test half",
        ["metric", *MAPPINGS],
        [
            [key.replace("_", " "), *(_cell(blocks[n][key]) for n in MAPPINGS)]
            for key in blocks[MAPPINGS[0]]
        ],
        notes=[_mcnemar_line(runs[MAPPINGS[0]], runs[MAPPINGS[1]], suite.gold, MAPPINGS)],
    )
    summary = "\n".join(
        [
            f"# {suite.name}: {len(suite.test)} test categories",
            "",
            identity,
            "",
            "| metric | " + " | ".join(MAPPINGS) + " |",
            "| --- | ---: | ---: |",
            *("| " + " | ".join(row) + " |" for row in table.rows),
            "",
            table.notes[0],
        ]
    )
    out.mkdir(parents=True, exist_ok=True)
    for name, results in runs.items():
        file = out / f"{name.replace(' ', '-')}.jsonl"
        file.write_text("".join(r.model_dump_json() + "\n" for r in results), encoding="utf-8")
    record = {
        "suite": suite.name,
        "task": "map",
        "dataset_sha256": suite.dataset_sha256,
        "seed": suite.seed,
        "embedder": embedder_name,
        "seconds": seconds,
        "scores": blocks,
    }
    (out / "scores.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    (out / "summary.md").write_text(summary + "\n", encoding="utf-8")
    (out / "report.html").write_text(
        map_report(suite, runs, table, identity, options.review_threshold), encoding="utf-8"
    )
    return summary


def _cell(value: float) -> str:
    return str(int(value)) if value.is_integer() and value > 1 else f"{value:.3f}"


def map_report(
    suite: MapSuite,
    runs: Mapping[str, Sequence[CategoryMapping]],
    table: Section,
    identity: str,
    threshold: float,
) -> str:
    """The run's page: the scores, the classification report's plots for each mapping, and the
    wrong answers among the test categories whose paths differ."""
    judged = {name: outcomes(results, suite.gold, suite.target) for name, results in runs.items()}
    figures = []
    if plots.available():
        zero, known = (judged[n] for n in MAPPINGS)
        figures.append(
            figure(
                "accuracy-per-level",
                plots.accuracy_per_level(
                    M.accuracy_per_level(known), M.accuracy_per_level(zero), *reversed(MAPPINGS)
                ),
                "Accuracy of the first N names of the target path (unmapped is its own top "
                "level), zero-shot beside the mapping with known pairs.",
            )
        )
        for name in MAPPINGS:
            figures.append(
                figure(
                    f"reliability-{name.replace(' ', '-')}",
                    plots.reliability(M.reliability(judged[name])),
                    f"{name}: accuracy per confidence bin (top) and categories per bin.",
                )
            )
            figures.append(
                figure(
                    f"coverage-{name.replace(' ', '-')}",
                    plots.coverage(M.accuracy_vs_coverage(judged[name]), threshold),
                    f"{name}: keeping the most confident share; the red line is the review "
                    "threshold.",
                )
            )
    wrong = [
        [
            r.source_path,
            " > ".join(o.gold),
            " > ".join(o.pred or ()),
            _cell(r.confidence or 0.0),
            r.method,
        ]
        for r, o in zip(runs[MAPPINGS[1]], judged[MAPPINGS[1]], strict=True)
        if not o.correct
    ]
    view: PageView = {
        "heading": f"{suite.name}: taxonomy mapping",
        "identity": identity,
        "summary": [table],
        "plots": figures,
        "plots_missing": "" if figures else "No plots: pip install 'llmcat[report]' (matplotlib).",
        "tables": [
            Section(
                f"Wrong with known pairs ({len(wrong)} of {len(judged[MAPPINGS[1]])})",
                ["source category", "gold", "mapped to", "confidence", "method"],
                wrong[:200],
                notes=["The first 200 in the split's order."] if len(wrong) > 200 else [],
            )
        ],
    }
    return page_html(f"llmcat map eval: {suite.name}", view)


def add_parser(sub: SubParsers) -> None:
    p = sub.add_parser("map", help="judge llmcat map against a published mapping")
    r = sub.add_parser(
        "map-release", help="a simulated new release of the source mapped with the old pairs"
    )
    for parser in (p, r):
        parser.add_argument("--from", dest="source", type=Path, required=True, help="source")
        parser.add_argument("--to", dest="target", type=Path, required=True, help="target")
        parser.add_argument(
            "--pairs", type=Path, required=True, help="the gold mapping (→/⇒, CSV, JSONL)"
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--verticals", choices=["all", "even", "odd"], default="all")
        parser.add_argument("--embedding-model")
        parser.add_argument("--out", type=Path, help="folder for the mappings and scores")
    p.add_argument("--known-share", type=float, default=0.0, help="share given as known pairs")
    p.add_argument(
        "--structure", type=float, help="the structure bonus (default: the fitted one; 0: off)"
    )
    p.add_argument("--temperature", type=float, help="the scores' softmax temperature")
    p.set_defaults(func=run_map_eval)
    r.add_argument("--new-share", type=float, default=0.1, help="share of leaves held out as new")
    r.set_defaults(func=run_release_eval)
