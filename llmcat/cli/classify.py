"""``llmcat classify``: put products into categories of a label list or a taxonomy."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from llmcat.classify.classifier import Classifier
from llmcat.cli._batch import prompt_interrupt, run_batch
from llmcat.cli._common import (
    add_common_flags,
    described,
    settings_from,
    verbosity,
)
from llmcat.cli._ray import run_on_ray
from llmcat.config.flags import SubParsers, add_flags, given
from llmcat.config.options import ClassifyOptions, validated
from llmcat.config.settings import Settings
from llmcat.errors import ConfigError
from llmcat.taxonomy.tree import Taxonomy


def add_parser(sub: SubParsers) -> None:
    """``llmcat classify``: its flags and help."""
    classify = sub.add_parser(
        "classify",
        parents=[verbosity()],
        help="put products into categories",
        usage="llmcat classify [TITLE | --input FILE] (--labels A,B,C | --taxonomy NAME|FILE) "
        "[--output FILE] [options]",
        description=described(
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
    add_category_flags(classify)
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
    add_common_flags(classify)


def add_category_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that choose the categories and how products go into them (classify and the
    HTTP server share them): labels or a taxonomy, the classification options, examples."""
    parser.add_argument(
        "--labels",
        help="comma-separated labels, e.g. 'Shoes,Toys'; a label with a comma of its own "
        "('Food, Beverages & Tobacco') goes in --label or --labels-file",
    )
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="LABEL",
        help="one label, as written (repeat it: --label 'Food, Beverages & Tobacco' --label Toys)",
    )
    parser.add_argument(
        "--labels-file",
        type=Path,
        metavar="FILE",
        help="labels, one per line as written (UTF-8); after a tab, words that describe the "
        "label (read beside its name; the answer is the label)",
    )
    parser.add_argument(
        "--taxonomy",
        type=Path,
        help="a taxonomy name (google, shopify, google@2021-09-21: llmcat taxonomy list) or "
        "file: Google's, Shopify's, or one 'A > B' path per line",
    )
    add_flags(parser.add_argument_group("classification"), ClassifyOptions, "cli")
    parser.add_argument(
        "--examples",
        type=Path,
        help="labelled products (.jsonl/.json/.csv with a 'category' or 'path' column, the eval "
        "dataset format, or a corrected --review-out file): auto then fuses every expert with "
        "weights fitted on them; knn and supervised learn from them alone",
    )


def taxonomy_from(args: argparse.Namespace) -> Taxonomy:
    """The categories from --labels, --label (repeated), --labels-file or --taxonomy."""
    given_labels = args.labels is not None or bool(args.label) or args.labels_file is not None
    if given_labels and args.taxonomy:
        raise ConfigError("give labels (--labels, --label, --labels-file) or --taxonomy, not both")
    if given_labels:
        # a blank label between commas is refused (by from_labels), never dropped unsaid
        labels = args.labels.split(",") if args.labels and args.labels.strip() else []
        labels += list(args.label)
        descriptions: dict[str, str] = {}
        if args.labels_file is not None:
            for label, description in _labels_file(args.labels_file):
                labels.append(label)
                if description:
                    descriptions[label] = description
        if not labels:
            given = (
                f"--labels-file {args.labels_file} holds no label (one per line)"
                if args.labels_file is not None and args.labels is None
                else f"--labels {args.labels!r} holds no label"
            )
            raise ConfigError(f"{given}; e.g. --labels 'Shoes,Toys'")
        return Taxonomy.from_labels(labels, descriptions=descriptions)
    if args.taxonomy:
        return Taxonomy.from_file(args.taxonomy)
    raise ConfigError("no categories given - pass --labels 'A,B,C' or --taxonomy FILE")


def _labels_file(path: Path) -> list[tuple[str, str]]:
    """A label per line, as written (``&``, ``,`` and ``-`` are part of it); after a tab, the
    label's description, if any."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"cannot read --labels-file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--labels-file {path} is not UTF-8 (byte {exc.start})") from None
    pairs = []
    for line in text.splitlines():
        label, _, description = line.partition("\t")
        if label.strip():
            pairs.append((label.strip(), description.strip()))
        elif description.strip():
            raise ConfigError(f"--labels-file {path}: a description without a label: {line!r}")
    return pairs


async def explain(args: argparse.Namespace) -> int:
    """Print the plan (strategy, embedder, trust, calibration, LLM) and classify nothing."""
    options = validated(ClassifyOptions, given(args, ClassifyOptions), what="classify")
    worker = Classifier(
        taxonomy_from(args), options, settings=settings_from(args), examples=args.examples
    )
    try:
        plan = await worker.aplan()
    finally:
        await worker.aclose()
    print(plan.explain())
    return 0


def run(args: argparse.Namespace) -> int:
    """Classify one product or a file (or explain the plan)."""
    if args.explain:
        return asyncio.run(explain(args))
    if args.ray is not None:
        return run_on_ray(args, lambda: taxonomy_from(args))

    def classifier(settings: Settings) -> Classifier:
        options = validated(ClassifyOptions, given(args, ClassifyOptions), what="classify")
        return Classifier(taxonomy_from(args), options, settings=settings, examples=args.examples)

    with prompt_interrupt():
        return asyncio.run(run_batch(args, classifier))
