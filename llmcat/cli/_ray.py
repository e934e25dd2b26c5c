"""``--ray``: classify or describe a whole file on a Ray cluster, into a folder of Parquet files."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable

from llmcat.cli._batch import single_product
from llmcat.cli._common import (
    input_columns,
    settings_from,
)
from llmcat.config.flags import given
from llmcat.config.options import ClassifyOptions, CopyOptions, validated
from llmcat.errors import ConfigError
from llmcat.io.inputs import (
    STDIO,
)
from llmcat.taxonomy.tree import Taxonomy


def run_on_ray(args: argparse.Namespace, taxonomy: Callable[[], Taxonomy] | None = None) -> int:
    """``--ray``: the whole file on a Ray cluster, into a folder of Parquet files (``taxonomy``
    reads classify's categories, after the flags are checked)."""
    from llmcat.integrations.ray_data import FileJob, WorkerRecipe

    if single_product(args) is not None:
        raise ConfigError("--ray runs a whole --input file, not a single product")
    settings = settings_from(args)

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
    if taxonomy is not None:
        options = validated(ClassifyOptions, given(args, ClassifyOptions), what="classify")
        recipe = WorkerRecipe(
            "classify", options, settings, taxonomy=taxonomy(), examples=args.examples
        )
    else:
        recipe = WorkerRecipe(
            "describe",
            validated(CopyOptions, given(args, CopyOptions), what="describe"),
            settings,
        )
    recipe = dataclasses.replace(  # the columns as without --ray
        recipe, input_columns=input_columns(args)
    )
    address = None if args.ray == "local" else args.ray
    count, errors = FileJob(recipe, address, args.ray_workers).run(args.input, args.output)
    print(f"{count} items, {errors} errors -> {args.output}", file=sys.stderr)
    return 0
