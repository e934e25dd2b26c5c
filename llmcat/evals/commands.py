"""``python -m llmcat.evals`` (also ``llmcat eval`` and, in a checkout, ``python -m evals``):
run, compare, report, baseline update, table, bench, load, calibrate, fit, curve, export, agree.

    python -m evals run --suite golden --out runs/golden [--baseline evals/baselines/golden.json]
    python -m evals compare RUN_A RUN_B
    python -m evals report RUN
    python -m evals baseline update RUN [--to FILE]
    python -m evals run --task extract --suite oa-mine --out runs/oa-mine [--limit N]

Exit codes: 0 pass; 1 significant regression; 2 usage or configuration error; 3 infrastructure
errors above --max-error-rate, or a partial run compared; 4 baseline not comparable (dataset hash,
taxonomy or template); 130 (SIGINT) or 143 (SIGTERM): the run was stopped and its folder holds
the items finished by then, marked partial.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import cast

from pydantic import JsonValue

from llmcat import Backend
from llmcat.config.flags import SubParsers, SuggestingParser, add_flags, given
from llmcat.config.options import ClassifyOptions, validated
from llmcat.config.settings import Settings
from llmcat.errors import BackendError, ConfigError, LlmcatError
from llmcat.evals import (
    bench,
    calibrate,
    catalogue,
    curve,
    degrade,
    extract_without_examples,
    extracteval,
    fit,
    load,
    mapeval,
    recheck,
    vectors,
)
from llmcat.evals import metrics as M
from llmcat.evals.attribute_suites import is_extract_suite, load_extract_suite
from llmcat.evals.compare_report import compare_html
from llmcat.evals.gate import EXIT_INFRA, EXIT_USAGE, Flip, GateResult, gate, partial_line
from llmcat.evals.paths import baselines_dir
from llmcat.evals.records import (
    Baseline,
    GateRecord,
    RunSummary,
    Samples,
    load_baseline,
    read_run,
    write_run,
)
from llmcat.evals.report import report_html
from llmcat.evals.stop_and_progress import Stop, exit_soon
from llmcat.evals.suite_runner import RunOptions, run_blocking
from llmcat.evals.suites import is_map_suite, load_map_suite, load_suite
from llmcat.evals.summary import summary_markdown
from llmcat.redact import redact

PROG = "python -m evals"
#: Ctrl-C outside a run's items (a run's own stop exits 128 + the signal: 130 or 143)
EXIT_INTERRUPTED = 130


class _Parser(SuggestingParser):
    usage_status = EXIT_USAGE


def _gate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-drop",
        type=float,
        default=0.01,
        help="largest tolerated drop of a metric (default 0.01)",
    )
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument(
        "--max-error-rate",
        type=float,
        default=0.05,
        help="share of failed items that means an infrastructure problem (exit 3)",
    )
    p.add_argument(
        "--allow-template-change",
        action="store_true",
        help="compare even when a prompt template changed",
    )


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="llmcat's regression harness")
    # every sub-command's parser is a _Parser; add_parser(sub) only adds to it
    sub = cast(
        SubParsers, parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    )

    run = sub.add_parser(
        "run", help="run a suite and write run.json, samples.jsonl, summary.md, report.html"
    )
    run.add_argument(
        "--suite",
        default="golden",
        help="golden, flipkart, cdiscount (French), cdiscount-google (French into Google), "
        "shopify-google (--task map: Shopify's taxonomy onto Google's), oa-mine or "
        "flipkart-attributes (--task extract: attribute values), or a suite folder "
        "(default golden)",
    )
    run.add_argument(
        "--data",
        type=Path,
        help="a JSONL classification file or a Flipkart-format CSV instead of a suite",
    )
    run.add_argument(
        "--task",
        choices=["all", "classify", "describe", "map", "extract"],
        default="all",
        help="map: a mapping suite (shopify-google); extract: an attribute suite (oa-mine, "
        "flipkart-attributes); all: every task the suite has",
    )
    run.add_argument(
        "--limit", type=int, help="first N records (Flipkart: N records stratified by top level)"
    )
    run.add_argument(
        "--no-embedding-baseline",
        action="store_true",
        help="skip the embedding baseline beside the LLM",
    )
    run.add_argument(
        "--without-examples",
        action="store_true",
        help="--task extract: read the suite with Shopify's taxonomy and attributes and no "
        "examples (llmcat extract --taxonomy shopify), beside the value list of Shopify's "
        "allowed values",
    )
    run.add_argument("--seed", type=int, default=0)
    run.add_argument(
        "--examples",
        type=Path,
        help="labelled products (any example format): auto fuses every expert with weights "
        "fitted on them; knn and supervised learn from them alone",
    )
    run.add_argument(
        "--example-split",
        type=float,
        metavar="SHARE",
        help="use SHARE of the suite (stratified by group, seeded by --seed) as the labelled "
        "examples and score the rest",
    )
    run.add_argument("--out", type=Path, required=True, help="folder for the run's files")
    run.add_argument(
        "--baseline",
        type=Path,
        help="fail (exit 1) on a significant regression against this baseline",
    )
    _gate_options(run)
    add_flags(run.add_argument_group("classification"), ClassifyOptions, "evals")
    add_flags(run.add_argument_group("model"), Settings, "evals")

    compare = sub.add_parser("compare", help="compare two runs on their common items (B against A)")
    compare.add_argument("run_a", type=Path)
    compare.add_argument("run_b", type=Path)
    compare.add_argument(
        "--out", type=Path, help="the side-by-side page (default: RUN_B/compare.html)"
    )
    _gate_options(compare)

    report = sub.add_parser(
        "report", help="re-write summary.md and report.html of a run, print the summary"
    )
    report.add_argument("run", type=Path)

    baseline = sub.add_parser("baseline", help="manage baselines")
    bsub = cast(
        SubParsers,
        baseline.add_subparsers(dest="baseline_command", required=True, parser_class=_Parser),
    )
    update = bsub.add_parser("update", help="store a run as the baseline of its suite")
    update.add_argument("run", type=Path)
    update.add_argument(
        "--to", type=Path, help="baseline file (default evals/baselines/<suite>.json)"
    )

    table = sub.add_parser(
        "table", help="one row per run: strategy, accuracy per level, tokens, speed"
    )
    table.add_argument("runs", type=Path, nargs="+")

    bench.add_parser(sub)
    load.add_parser(sub)
    calibrate.add_parser(sub)
    fit.add_parser(sub)
    mapeval.add_parser(sub)
    curve.add_parser(sub)
    degrade.add_parser(sub)
    catalogue.add_parsers(sub)
    recheck.add_parser(sub)
    vectors.add_parser(sub)
    return parser


def _write_reports(
    out: Path,
    run: RunSummary,
    samples: Samples,
    gate_lines: list[str],
    flipped: list[Flip],
    *,
    page: bool = True,
) -> str:
    """summary.md and (``page``) report.html; the summary's text."""
    summary = summary_markdown(run, gate_lines)
    (out / "summary.md").write_text(summary + "\n")
    if page:
        (out / "report.html").write_text(report_html(run, samples, flipped, gate_lines))
    else:  # an earlier run's page must not pass for this one's
        (out / "report.html").unlink(missing_ok=True)
    return summary


def cmd_run(args: argparse.Namespace, backend: Backend | None) -> int:
    if args.limit is not None and args.limit < 1:
        raise ConfigError("--limit must be at least 1")
    M.require_sklearn()  # before the run, not after it: the metrics need it
    extract = args.task == "extract" or (
        args.task == "all" and args.data is None and is_extract_suite(args.suite)
    )
    if args.without_examples and not extract:
        raise ConfigError("--without-examples is for attribute suites (--task extract)")
    if args.task == "map" or (
        args.task == "all" and args.data is None and is_map_suite(args.suite)
    ):
        return cmd_run_map(args)
    if extract:
        return cmd_run_extract(args, backend)
    if is_extract_suite(args.suite):
        raise ConfigError(f"suite {args.suite!r} is an attribute suite: run it with --task extract")
    baseline = load_baseline(args.baseline) if args.baseline else None
    suite = load_suite(args.suite, data=args.data, limit=args.limit)
    options = RunOptions(
        suite=args.suite,
        task=args.task,
        limit=args.limit,
        seed=args.seed,
        embedding_baseline=not args.no_embedding_baseline,
        examples=args.examples,
        example_split=args.example_split,
        classify=validated(ClassifyOptions, given(args, ClassifyOptions), what="run"),
        settings=validated(Settings, {**given(args, Settings), "progress": False}, what="run"),
    )
    stop = Stop()
    # A signal while the run's files are written asks for the same stop: they are finished first.
    with stop.handling():
        run, samples = run_blocking(suite, options, backend, stop=stop)
        result = gate(
            run,
            samples,
            baseline,
            max_drop=args.max_drop,
            alpha=args.alpha,
            max_error_rate=args.max_error_rate,
            allow_template_change=args.allow_template_change,
        )
        run.gate = GateRecord(
            exit_code=result.exit_code,
            lines=result.lines,
            baseline=str(args.baseline) if args.baseline else None,
        )
        write_run(args.out, run, samples)
        # A stopped run is left within seconds: the page (plots, bootstraps) is drawn on demand.
        partial = run.interrupted is not None
        print(
            _write_reports(args.out, run, samples, result.lines, result.flipped, page=not partial)
        )
        if not partial:
            print(
                f"wrote {args.out}/run.json, samples.jsonl, summary.md, report.html",
                file=sys.stderr,
            )
    if stop.signum is None:
        return result.exit_code
    code = 128 + stop.signum  # 130 for SIGINT, 143 for SIGTERM, as a shell reports them
    if run.interrupted is None:
        print(
            f"{PROG}: {stop.name} came after the run had finished: {args.out} is complete",
            file=sys.stderr,
        )
    else:
        print(
            f"{PROG}: partial run (stopped by {run.interrupted}) in {args.out}: run.json, "
            f"samples.jsonl, summary.md; `{PROG} report {args.out}` draws report.html; exit {code}",
            file=sys.stderr,
        )
    exit_soon(code)  # model calls still running in threads would hold the exit
    return code


def _refuse_split_flags(args: argparse.Namespace) -> None:
    """A mapping or attribute suite has its own split and no baseline file yet."""
    refused = [
        flag
        for flag, value in (
            ("--data", args.data),
            ("--baseline", args.baseline),
            ("--examples", args.examples),
            ("--example-split", args.example_split),
        )
        if value is not None
    ]
    if refused:
        raise ConfigError(
            f"--task {args.task} takes none of {', '.join(refused)}: its suites have their own "
            "split and no baseline yet"
        )


def cmd_run_map(args: argparse.Namespace) -> int:
    """``run --task map``: a mapping suite, scored on its fixed test half (``mapeval``)."""
    _refuse_split_flags(args)
    suite = load_map_suite(args.suite, limit=args.limit)
    chosen = given(args, ClassifyOptions)
    summary = mapeval.run_map_suite(
        suite,
        args.out,
        embedding_model=chosen.get("embedding_model"),
        lexical_weight=chosen.get("lexical_weight"),
    )
    print(summary)
    print(
        f"wrote {args.out}/scores.json, summary.md, report.html and the mappings", file=sys.stderr
    )
    return 0


def cmd_run_extract(args: argparse.Namespace, backend: Backend | None) -> int:
    """``run --task extract``: an attribute suite, its examples learned, the rest scored
    (``extracteval``)."""
    _refuse_split_flags(args)
    if not is_extract_suite(args.suite):
        raise ConfigError(f"--task extract runs oa-mine or flipkart-attributes, not {args.suite!r}")
    suite = load_extract_suite(args.suite, limit=args.limit)
    settings = validated(Settings, {**given(args, Settings), "progress": False}, what="run")
    if args.without_examples:
        summary = extract_without_examples.run_without_examples(
            suite, args.out, backend=backend, settings=settings, limit=args.limit
        )
        print(summary)
        print(f"wrote {args.out}/records.jsonl, summary.json, summary.md", file=sys.stderr)
        return 0
    summary = extracteval.run_extract_suite(
        suite, args.out, backend=backend, settings=settings, limit=args.limit
    )
    print(summary)
    print(f"wrote {args.out}/records.jsonl, summary.json, summary.md, report.html", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    run_a, samples_a = read_run(args.run_a)
    run_b, samples_b = read_run(args.run_b)
    result = gate(
        run_b,
        samples_b,
        Baseline.of_run(run_a, samples_a),
        max_drop=args.max_drop,
        alpha=args.alpha,
        max_error_rate=args.max_error_rate,
        allow_template_change=args.allow_template_change,
    )
    if run_a.interrupted is not None:  # a partial run is no reference either
        result = GateResult(EXIT_INFRA, [f"A: {partial_line(run_a.interrupted)}"])
    flat_a, flat_b = _numbers(run_a.metrics), _numbers(run_b.metrics)
    print(f"| metric | A ({args.run_a}) | B ({args.run_b}) | B - A |\n| --- | ---: | ---: | ---: |")
    for k in sorted(flat_a.keys() & flat_b.keys()):
        a, b = flat_a[k], flat_b[k]
        print(f"| {k} | {a:.3f} | {b:.3f} | {b - a:+.3f} |")
    print()
    print("\n".join(f"- {line}" for line in result.lines))
    page = args.out or args.run_b / "compare.html"
    page.write_text(
        compare_html(
            (str(args.run_a), run_a, samples_a),
            (str(args.run_b), run_b, samples_b),
            result.flipped,
            result.lines,
        ),
        encoding="utf-8",
    )
    print(f"\nwrote {page}")
    return result.exit_code


def _numbers(metrics: Mapping[str, JsonValue], prefix: str = "") -> dict[str, float]:
    """Every number of a metrics block, nested blocks as ``description.<name>``."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            out.update(_numbers(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def cmd_report(args: argparse.Namespace) -> int:
    run, samples = read_run(args.run)
    lines = run.gate.lines if run.gate is not None else []
    print(_write_reports(args.run, run, samples, lines, []))
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    columns = M.metrics_for("classify", where="table")
    print("| run | strategy | model | items | " + " | ".join(c.label for c in columns) + " |")
    print("|" + " --- |" * 4 + " ---: |" * len(columns))
    for folder in args.runs:
        run, _ = read_run(folder)
        rows = [(run.metrics, run.metrics.get("strategy", ""))]
        if "embedding" in run.baselines:
            rows.append((run.baselines["embedding"], "embedding"))
        for m, strategy in rows:
            cells = " | ".join(c.format(m.get(c.name)) for c in columns)
            items = M.format_metric("classify", "items", m.get("items", 0))
            print(f"| {folder.name} | {strategy} | {m.get('model', '')} | {items} | {cells} |")
    return 0


def cmd_baseline_update(args: argparse.Namespace) -> int:
    run, samples = read_run(args.run)
    if run.interrupted is not None:
        raise ConfigError(
            f"{args.run} is a partial run (stopped by {run.interrupted}) and cannot be a "
            "baseline; run the suite to its end"
        )
    target = args.to or baselines_dir() / f"{run.suite}.json"
    Baseline.of_run(run, samples).save(target)
    print(f"baseline for suite {run.suite!r} written to {target}")
    return 0


def main(argv: list[str] | None = None, *, backend: Backend | None = None, prog: str = PROG) -> int:
    """Entry point; ``backend`` lets tests and scripts inject a backend instance; ``prog``: how
    the command was called (``llmcat eval`` or ``python -m evals``)."""
    args = build_parser(prog).parse_args(argv)
    try:
        if args.command == "run":
            return cmd_run(args, backend)
        if args.command == "compare":
            return cmd_compare(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "baseline":
            return cmd_baseline_update(args)
        if args.command == "table":
            return cmd_table(args)
        code: int = args.func(args)
        return code
    except ConfigError as exc:
        print(f"{PROG}: error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except BackendError as exc:  # the model or its server, not the caller: infrastructure
        print(f"{PROG}: {type(exc).__name__}: {redact(str(exc))}", file=sys.stderr)
        return EXIT_INFRA
    except LlmcatError as exc:
        print(f"{PROG}: {type(exc).__name__}: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # before a run started or in another command: nothing to keep
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
