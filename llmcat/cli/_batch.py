"""A classify, describe or extract run over one product or a file: checked before anything is written,
resumable, every item a result or an error record, and a summary line at the end."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from itertools import islice
from pathlib import Path
from types import FrameType

from pydantic import BaseModel

from llmcat.attributes.extractor import Extractor
from llmcat.batch.runner import Done
from llmcat.classify.classifier import Classifier, spread_positions
from llmcat.cli._common import (
    input_columns,
    settings_from,
    taxonomy_file,
)
from llmcat.cli._printed import HUMAN_HEADER, human, spent_line
from llmcat.config.settings import Settings
from llmcat.errors import ConfigError, InputError
from llmcat.io.inputs import (
    STDIO,
    InputScan,
    Item,
    coerce_product,
    read_records,
    scan_input,
)
from llmcat.io.output import ResultWriter, check_paths, check_writable, digest_of
from llmcat.io.resume import checked_inputs, review_kept, skip_kept
from llmcat.io.review import ReviewWriter
from llmcat.listing.describer import Describer
from llmcat.types import Classification, Description, Extraction, Product, Usage

#: per-item error lines printed on stderr before the rest are only counted
ERROR_LINES_SHOWN = 20


#: the batch ran and wrote every record, but every item (or more than --max-error-rate) failed
EXIT_FAILED_ITEMS = 3


#: file kinds --input reads: a title that names such a file was meant as --input
DATA_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".ndjson", ".parquet")


def single_product(args: argparse.Namespace) -> Product | None:
    if args.text is None and args.input is None:
        raise ConfigError("give a product title or --input FILE")
    if args.text is not None and args.input is not None:
        raise ConfigError("give a product title or --input FILE, not both")
    if args.text is None:
        return None
    if Path(args.text).suffix.lower() in DATA_SUFFIXES and Path(args.text).is_file():
        raise ConfigError(f"{args.text} is a file, not a product title: --input {args.text}")
    attributes = {}
    for pair in getattr(args, "attr", []):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--attr takes KEY=VALUE, got {pair!r}")
        attributes[key.strip()] = value.strip()
    return Product(
        id="1",
        title=args.text,
        brand=getattr(args, "brand", "") or attributes.get("brand", ""),
        description=getattr(args, "description", ""),
        attributes=attributes,
        image_urls=args.image,
    )


def _beside(item: Item | None, result: BaseModel) -> dict[str, str | None] | None:
    """The input's title, written beside a classification (to read the answer against); None
    where the input had none (a row that is not a product)."""
    if not isinstance(result, Classification):
        return None
    title = item.title if isinstance(item, Product) else item
    if isinstance(item, dict):
        title = item.get("title")
    return {"title": title if isinstance(title, str) and title else None}


def worker_identity(worker: Classifier | Describer | Extractor) -> dict[str, str]:
    """What a kept record must share with this run to be resumed: model, prompt (and strategy
    and taxonomy for classification)."""
    identity = {"model": worker.backend.model, "prompt_version": worker.prompt_version}
    if isinstance(worker, Classifier):
        identity.update(
            model=worker.result_model,
            strategy=worker.strategy,
            taxonomy_version=worker.taxonomy.version,
        )
    return identity


def _run_identity(
    args: argparse.Namespace, worker: Classifier | Describer | Extractor
) -> dict[str, object]:
    """Everything a kept record's answer depends on, beside its input: the options, the model
    and prompt (and strategy and taxonomy), the settings that change an answer, the examples."""
    identity: dict[str, object] = {"command": args.command, **worker_identity(worker)}
    identity.update(worker.options.model_dump(mode="json", fallback=lambda v: type(v).__name__))
    identity["structured_output"] = worker.settings.structured_output
    identity["columns"] = args.columns
    identity["attributes"] = args.attribute_columns
    examples = getattr(args, "examples", None)
    if examples is not None:
        path = Path(examples)
        identity["examples"] = (
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else str(examples)
        )
    return identity


def _distinct_paths(args: argparse.Namespace) -> None:
    """--output and --review-out name two different files, neither of them a file the command
    reads (--input, --taxonomy, --labels-file, --examples) nor another's partial, lock or run
    file: checked before anything is opened for writing."""
    check_paths(
        {"--output": args.output, "--review-out": getattr(args, "review_out", None)},
        {
            "--input": args.input,
            "--taxonomy": taxonomy_file(getattr(args, "taxonomy", None)),
            "--labels-file": getattr(args, "labels_file", None),
            "--examples": getattr(args, "examples", None),
        },
    )


async def _observe_whole_file(
    worker: Classifier, args: argparse.Namespace, scan: InputScan
) -> None:
    """Let the classifier read the run (``Classifier.aobserve_catalogue``) from records spread
    evenly over the whole --input file (``spread_positions``), not from its first ones: those of a file
    sorted by category would speak for one category only. Costs one more read of the file, no
    model call; nothing when the plan reads no sample."""
    if scan.records is None or str(args.input) == STDIO:
        return
    if not (await worker.aplan()).observes_run:
        return
    wanted = set(spread_positions(scan.records))
    records = read_records(
        args.input,
        encoding=args.encoding,
        columns=input_columns(args),
        scanned=scan,
    )
    last = max(wanted, default=-1)
    sample = [r for n, r in enumerate(islice(records, last + 1)) if n in wanted]
    await worker.aobserve_catalogue(sample)


def _scanned(args: argparse.Namespace) -> InputScan | None:
    """The --input file checked, decoded and counted in one pass before anything is written
    (None: a single product). Rows the CSV parser cannot read stop the run here (exit 2),
    unless --skip-bad-rows lets them become error records."""
    if args.input is None:
        return None
    columns = input_columns(args)
    scan = scan_input(args.input, encoding=args.encoding, columns=columns)
    bad, rows = scan.unreadable, scan.records
    if bad and not args.skip_bad_rows:
        shown = "; ".join(bad[:3]) + (f"; and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise ConfigError(
            f"{args.input}: {len(bad)} of {rows} rows cannot be read ({shown}). Fix the file, or "
            "pass --skip-bad-rows to run the others (each bad row becomes an error record)"
        )
    if bad:
        print(
            f"llmcat: {len(bad)} of {rows} rows of {args.input} cannot be read; they become error "
            "records (--skip-bad-rows)",
            file=sys.stderr,
        )
    return scan


async def run_batch(
    args: argparse.Namespace,
    make_worker: Callable[[Settings], Classifier | Describer | Extractor],
) -> int:
    """Run ``args.command`` over the product or file the arguments name; the exit code."""
    single = single_product(args)
    settings = settings_from(args)
    to_stdout = args.output is not None and str(args.output) == STDIO
    if args.resume and (args.output is None or to_stdout):
        raise ConfigError("--resume continues an --output file; give --output FILE")
    _distinct_paths(args)
    if args.max_error_rate is not None and not 0 <= args.max_error_rate <= 1:
        raise ConfigError(f"--max-error-rate takes a share from 0 to 1, not {args.max_error_rate}")
    scan = _scanned(args)
    # Everything that can be checked is checked before anything is written.
    source: Iterator[Item] = (
        iter([single])
        if single is not None
        else read_records(
            args.input,
            encoding=args.encoding,
            columns=input_columns(args),
            report=lambda line: print(f"llmcat: {line}", file=sys.stderr),
            scanned=scan,
        )
    )
    if (args.dry_run or args.batch_export) and (args.output is not None or args.resume):
        raise ConfigError(
            "--dry-run and --batch-export write no results; drop --output and --resume"
        )
    writer = (
        ResultWriter(args.output, resume=args.resume)
        if args.output is not None and not to_stdout
        else None
    )
    review_out: Path | None = getattr(args, "review_out", None)
    if review_out is not None:
        check_writable(review_out)
    items = source
    progress = False if (args.progress is False or single is not None) else None
    worker = make_worker(settings)
    count = errors = to_review = flagged = 0
    spent = Usage()
    seen: set[str] = set()
    duplicates: list[str] = []
    reviewer: ReviewWriter | None = None
    try:
        if writer is not None and isinstance(worker, Extractor):
            # Its identity needs no server, and learning from the examples may take minutes:
            # a --resume of a run made with other settings is refused before it.
            writer.check_run(_run_identity(args, worker))
        await worker.prepare()  # a wrong key, URL or model: one error, nothing written
        start = 0
        if review_out is not None:
            reviewer = ReviewWriter(review_out)
        run_identity = _run_identity(args, worker)
        if writer is not None:
            writer.check_run(run_identity)
        if writer is not None and args.resume:
            kept = writer.completed()
            check = checked_inputs(writer.kept_inputs(), writer, review_kept(reviewer))
            start = skip_kept(items, kept, worker_identity(worker), writer, check)
        if writer is not None:
            writer.record_run(run_identity)
            if start:
                print(f"llmcat: resuming after {start} complete records", file=sys.stderr)
        counted = scan.records if scan is not None else None
        total = None if counted is None else max(counted - start, 0)
        if isinstance(worker, Classifier) and scan is not None and counted:
            await _observe_whole_file(worker, args, scan)
        # each result beside the input it answers (the output's digests, the review file)
        results: AsyncIterator[Done[Classification] | Done[Description] | Done[Extraction]] = (
            worker.aiter_done(items, progress=progress, start=start, total=total)
        )
        as_json = args.json or args.input is not None or to_stdout
        headed = False
        async for done in results:
            result, item = done.result, done.item
            count += 1
            failed = result.error is not None
            errors += failed
            to_review += isinstance(result, (Classification, Extraction)) and result.needs_review
            flagged += isinstance(result, Description) and result.flagged
            spent = spent + result.usage
            if result.product_id in seen:
                duplicates.append(result.product_id)
            seen.add(result.product_id)
            if failed and errors <= ERROR_LINES_SHOWN:  # the record itself goes with the rest
                print(f"llmcat: {human(result)}", file=sys.stderr)
            if writer is not None:
                writer.write(result, digest_of(item), _beside(item, result))
            elif args.dry_run or args.batch_export:
                pass  # placeholder answers
            elif as_json:
                print(result.model_dump_json(), flush=True)
            elif not failed:
                if not headed and isinstance(result, Classification):
                    print(HUMAN_HEADER, flush=True)  # what the columns below are
                headed = True
                print(human(result), flush=True)
            if (
                reviewer is not None
                and isinstance(result, Classification)
                and result.ok
                and result.needs_review
                and item is not None
                and not isinstance(item, InputError)
            ):
                reviewer.add(coerce_product(item, done.index), result)
        if writer is not None:
            writer.commit()
        if reviewer is not None:
            reviewer.commit()
    except BaseException as exc:
        if writer is not None:
            writer.close()
            # A setup error (a refused resume, say) wrote nothing: no advice to resume it.
            if writer.partial.exists() and not (isinstance(exc, ConfigError) and count == 0):
                print(
                    f"llmcat: {count} new results kept in {writer.partial}; run the same command "
                    "with --resume to finish",
                    file=sys.stderr,
                )
        raise
    finally:
        await worker.aclose()
        if reviewer is not None:
            reviewer.close()
            print(f"llmcat: {reviewer.rows} results to review -> {review_out}", file=sys.stderr)
    report = worker.dry_run_report(count, args.price_in, args.price_out)
    if report is not None:
        # The export's note is a message; a dry run's counts are the command's output.
        print(report, file=sys.stderr if args.batch_export else sys.stdout)
    elif single is None:
        target = writer.target if writer is not None else args.output
        where = f" -> {'stdout' if to_stdout else target}" if args.output is not None else ""
        more = errors - ERROR_LINES_SHOWN
        shown = f" ({more} error lines not shown)" if more > 0 else ""
        review = (
            f", {flagged} flagged" if args.command == "describe" else f", {to_review} to review"
        )
        print(f"{count} items, {errors} errors{shown}{review}{where}", file=sys.stderr)
        print(spent_line(spent, args.price_in, args.price_out), file=sys.stderr)
    if duplicates:
        shown = ", ".join(sorted(set(duplicates))[:5])
        print(
            f"llmcat: {len(duplicates)} results share an id with an earlier one ({shown}"
            f"{', ...' if len(set(duplicates)) > 5 else ''}); each input kept its own result",
            file=sys.stderr,
        )
    if single is not None:
        return 1 if errors else 0
    if count and errors == count:
        print(f"llmcat: every item of this run failed ({errors} of {count})", file=sys.stderr)
        if writer is not None and writer.notice is not None:
            print(f"llmcat: {writer.notice}", file=sys.stderr)
        return EXIT_FAILED_ITEMS
    if args.max_error_rate is not None and count and errors / count > args.max_error_rate:
        print(
            f"llmcat: {errors} of {count} items failed ({errors / count:.1%}), more than "
            f"--max-error-rate {args.max_error_rate:g}",
            file=sys.stderr,
        )
        return EXIT_FAILED_ITEMS
    return 0


#: seconds from Ctrl-C to the exit, whatever a model call in a thread is still doing
INTERRUPT_GRACE = 1.0


@contextlib.contextmanager
def prompt_interrupt() -> Iterator[None]:
    """Ctrl-C stops the batch (the partial file keeps every finished result) and the process
    exits within ``INTERRUPT_GRACE`` seconds: a model call running in a thread (llama.cpp) cannot
    be cancelled, and waiting for it could take many seconds."""

    def interrupted(signum: int, frame: FrameType | None) -> None:
        def leave() -> None:
            sys.stdout.flush()
            print("llmcat: interrupted (--resume continues an --output file)", file=sys.stderr)
            sys.stderr.flush()
            os._exit(130)

        timer = threading.Timer(INTERRUPT_GRACE, leave)
        timer.daemon = True
        timer.start()
        signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only (a test calling main() from a thread)
        return
    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
