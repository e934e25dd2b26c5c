"""``llmcat extract``: attribute values (colour, size, brand, ...) read from each product's
text, each with where it was read and how sure."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from llmcat.attributes.extractor import Extractor
from llmcat.attributes.shopify import find_shopify_attributes, is_shopify_taxonomy
from llmcat.classify.classifier import Classifier
from llmcat.cli._batch import prompt_interrupt, run_batch
from llmcat.cli._common import add_common_flags, described, settings_from, verbosity
from llmcat.config.flags import SubParsers, add_flags, given
from llmcat.config.options import ExtractOptions, validated
from llmcat.config.settings import Settings
from llmcat.errors import ConfigError
from llmcat.taxonomy.names import taxonomy_folders, taxonomy_path
from llmcat.taxonomy.tree import Taxonomy


def add_parser(sub: SubParsers) -> None:
    """``llmcat extract``: its flags and help."""
    extract = sub.add_parser(
        "extract",
        parents=[verbosity()],
        help="extract attribute values",
        usage="llmcat extract [TITLE | --input FILE] (--examples FILE | --attributes "
        "NAMES|FILE | --taxonomy shopify) [--output FILE] [options]",
        description=described(
            "Read attribute values (colour, material, size, ...) from each product's own text: "
            "every value is a run of the text (its field and characters are given) or an "
            "allowed value the text states, with a calibrated confidence (docs/attributes.md).",
            "llmcat extract --input test.jsonl --examples train.jsonl --output out.jsonl",
            'llmcat extract "Florsheim Men\'s Milano Slip-On Loafer,Burgundy,10 D US" '
            "--category Shoes --examples train.jsonl",
            "llmcat extract --input products.csv --attributes schema.json --output values.jsonl",
            "llmcat extract --examples train.jsonl --explain   # how each attribute is read",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    extract.add_argument("text", nargs="?", help="a product title (or use --input)")
    extract.add_argument(
        "--examples",
        type=Path,
        help="labelled products (JSONL): the benchmark format (input, category, target_scores) "
        "or llmcat's (title, category, values); the attributes of each category, and a tagger "
        "learned from them",
    )
    extract.add_argument(
        "--attributes",
        dest="schema",
        metavar="NAMES|FILE",
        help="the attributes to extract: names ('color,material') or a schema file (JSON: "
        "names, descriptions, allowed values; docs/attributes.md); default: those of each "
        "product's category in --examples",
    )
    extract.add_argument(
        "--taxonomy",
        type=Path,
        help="choose each product's category in this taxonomy first (a name or file, as for "
        "classify); with shopify, extract that category's Shopify attributes, each value one of "
        "Shopify's allowed values",
    )
    extract.add_argument(
        "--category",
        default="",
        help="the single product's category (its attributes in --examples)",
    )
    extract.add_argument("--brand", default="", help="the single product's brand")
    extract.add_argument("--description", default="", help="the single product's own description")
    add_flags(extract.add_argument_group("extraction"), ExtractOptions, "cli")
    extract.add_argument(
        "--explain",
        action="store_true",
        help="print how each attribute is read, and why, and extract nothing",
    )
    add_common_flags(extract, attribute_columns=False)


def _extractor(args: argparse.Namespace, settings: Settings) -> Extractor:
    options = validated(ExtractOptions, given(args, ExtractOptions), what="extract")
    categorizer = None
    schema = args.schema
    if args.taxonomy is not None:
        taxonomy = Taxonomy.from_file(args.taxonomy)
        if schema is None and args.examples is None:
            if not is_shopify_taxonomy(taxonomy_path(args.taxonomy)):
                raise ConfigError(
                    "--taxonomy brings its attributes only for shopify; with another taxonomy "
                    "give --attributes FILE (keyed by its category ids) or --examples"
                )
            schema = find_shopify_attributes(taxonomy_folders(settings.resolved().cache_dir))
        categorizer = Classifier(taxonomy, settings=settings)
    if schema is None and args.examples is None:
        raise ConfigError(
            "extract needs --examples FILE (labelled products), --attributes NAMES|FILE or "
            "--taxonomy shopify"
        )
    return Extractor(
        schema,
        examples=args.examples,
        options=options,
        settings=settings,
        categorizer=categorizer,
    )


async def explain(args: argparse.Namespace) -> int:
    """Print how each attribute is read; extract nothing."""
    worker = _extractor(args, settings_from(args))
    try:
        print(worker.plan())
    finally:
        await worker.aclose()
    return 0


def run(args: argparse.Namespace) -> int:
    """Extract the attributes of one product or a file (or explain how)."""
    # The category reaches a product as an attribute column (input_columns), never as text.
    options = validated(ExtractOptions, given(args, ExtractOptions), what="extract")
    args.attribute_columns = None
    args.category_field = options.category_field
    args.attr = [f"{options.category_field}={args.category}"] if args.category else []
    if args.explain:
        return asyncio.run(explain(args))
    if args.ray is not None:
        raise ConfigError("extract runs in one process for now: drop --ray")
    with prompt_interrupt():
        return asyncio.run(run_batch(args, lambda settings: _extractor(args, settings)))
