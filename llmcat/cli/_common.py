"""What the commands share: the common flags, the verbosity flags after a command, settings
from the arguments, and the files a taxonomy reference or a digest reads."""

from __future__ import annotations

import argparse
import hashlib
import os
from dataclasses import replace
from pathlib import Path

from llmcat.config.flags import SuggestingParser, add_flags, given
from llmcat.config.options import validated
from llmcat.config.settings import Settings
from llmcat.errors import ConfigError
from llmcat.io.columns import FIELDS as COLUMN_FIELDS
from llmcat.io.columns import Columns
from llmcat.io.inputs import (
    STDIO,
)
from llmcat.taxonomy.names import taxonomy_path

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


def verbosity() -> argparse.ArgumentParser:
    """-v and -q after the command too ("llmcat classify ... -q"); absent there, the ones given
    before it stand (SUPPRESS leaves them alone)."""
    anywhere = SuggestingParser(add_help=False)
    anywhere.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS)
    anywhere.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS)
    return anywhere


def add_common_flags(parser: argparse.ArgumentParser, *, attribute_columns: bool = True) -> None:
    """The flags classify, describe and extract share: model, images, input and output, cost,
    scale-out. ``attribute_columns``: offer ``--attributes COLUMNS`` (extract's
    ``--attributes`` names the attributes to extract instead)."""
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
    add_image_dir_flag(
        images,
        "a folder local image files may be read from (the --input file's folder and the "
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
    if attribute_columns:
        io.add_argument(
            "--attributes",
            dest="attribute_columns",
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


def add_image_dir_flag(group: argparse._ArgumentGroup, help: str) -> None:
    """``--image-dir DIR`` (repeatable): the folders local image paths may name."""
    group.add_argument(
        "--image-dir", action="append", type=Path, default=[], metavar="DIR", help=help
    )


def input_columns(args: argparse.Namespace) -> Columns:
    """Which input columns are which product fields and attributes (``--columns``,
    ``--attributes COLUMNS``; extract's are its category field alone)."""
    columns = Columns.parse(args.columns, args.attribute_columns)
    if args.command == "extract":
        return replace(columns, hint=None, category=args.category_field)
    return columns


def described(what: str, *commands: str) -> str:
    """A command's description: what it does, then examples to copy."""
    return what + "\n\nexamples:\n" + "\n".join(f"  {c}" for c in commands)


def settings_from(args: argparse.Namespace) -> Settings:
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


def taxonomy_file(ref: Path | None) -> Path | None:
    """The file a --taxonomy/--from/--to reference reads (None for a name that names none:
    reading it says what is wrong)."""
    if ref is None:
        return None
    try:
        return taxonomy_path(ref)
    except ConfigError:
        return None


def file_digest(path: Path) -> str:

    return hashlib.sha256(path.read_bytes()).hexdigest()
