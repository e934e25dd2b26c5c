"""``llmcat describe``: listing copy (title, bullets, body) from each product's own data."""

from __future__ import annotations

import argparse
import asyncio

from llmcat.cli._batch import prompt_interrupt, run_batch
from llmcat.cli._common import (
    add_common_flags,
    described,
    settings_from,
    verbosity,
)
from llmcat.cli._ray import run_on_ray
from llmcat.config.flags import SubParsers, add_flags, given
from llmcat.config.options import CopyOptions, validated
from llmcat.config.settings import Settings
from llmcat.listing.describer import Describer


def add_parser(sub: SubParsers) -> None:
    """``llmcat describe``: its flags and help."""
    describe = sub.add_parser(
        "describe",
        parents=[verbosity()],
        help="write listing copy",
        usage="llmcat describe [TITLE | --input FILE] [--output FILE] [options]",
        description=described(
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
    add_common_flags(describe)


async def explain(args: argparse.Namespace) -> int:
    """Print whether the model is asked for copy, and why; write nothing."""
    copy = validated(CopyOptions, given(args, CopyOptions), what="describe")
    worker = Describer(copy, settings=settings_from(args))
    try:
        print(f"copy: {worker.plan()}")
    finally:
        await worker.aclose()
    return 0


def run(args: argparse.Namespace) -> int:
    """Write copy for one product or a file (or explain whether the model is asked)."""
    if args.explain:
        return asyncio.run(explain(args))
    if args.ray is not None:
        return run_on_ray(args)

    def describer(settings: Settings) -> Describer:
        copy = validated(CopyOptions, given(args, CopyOptions), what="describe")
        return Describer(copy, settings=settings)

    with prompt_interrupt():
        return asyncio.run(run_batch(args, describer))
