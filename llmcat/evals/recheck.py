"""Check the copy of an earlier run with today's copy checks, per language.

    python -m evals recheck RUN_DIR

Reads the run's samples (the copy cases and what was returned for each), runs the grounding and
degenerate-copy checks of ``llmcat.listing.describer.copy_checker`` on the model's copy with the run's
limits and each case's language and must-mention values, and prints the pass rate per language
and the findings per kind. This is how a run from before a change of the checks is compared
with one after it (composed copy, which replaced model copy, is not counted as the model's).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import TypedDict

from llmcat.config.flags import SubParsers
from llmcat.config.options import CopyOptions
from llmcat.evals.records import RunSummary, Samples, description_samples, read_run
from llmcat.listing.describer import copy_checker
from llmcat.types import Product


class LanguageRow(TypedDict):
    """One language of a recheck: its cases, the model copies without findings, the findings."""

    cases: int
    passed: int
    kinds: Counter[str]


def recheck(run: RunSummary, samples: Samples) -> dict[str, LanguageRow]:
    """Per language: cases, model copies without findings, and findings per kind."""
    extra = run.manifest.model_extra or {}
    limits = extra.get("limits") or {}
    per_language: dict[str, LanguageRow] = {}
    for sample in description_samples(samples):
        output = sample.output.model_dump(mode="json")
        language = sample.language or output.get("language", "en")
        row = per_language.setdefault(language, LanguageRow(cases=0, passed=0, kinds=Counter()))
        row["cases"] += 1
        if output.get("error"):
            row["kinds"]["error"] += 1
            continue
        copy = output if output.get("source", "model") == "model" else output.get("rejected_copy")
        if not copy:
            row["kinds"]["unusable_answer"] += 1
            continue
        options = CopyOptions(language=language, must_mention=sample.must_mention, **limits)
        found = copy_checker(Product.model_validate(sample.input), options)(copy)
        row["passed"] += not found
        row["kinds"].update({f.kind for f in found})
    return per_language


def run_recheck(args: argparse.Namespace) -> int:
    run, samples = read_run(args.run)
    table = recheck(run, samples)
    print("| language | cases | model copy without findings | findings per kind (cases) |")
    print("| --- | ---: | ---: | --- |")
    for language, row in sorted(table.items()):
        kinds = ", ".join(f"{k} {n}" for k, n in row["kinds"].most_common())
        rate = row["passed"] / row["cases"] if row["cases"] else 0.0
        print(f"| {language} | {row['cases']} | {row['passed']} ({rate:.1%}) | {kinds} |")
    return 0


def add_parser(sub: SubParsers) -> None:
    parser = sub.add_parser(
        "recheck", help="check a run's model copy with today's copy checks, per language"
    )
    parser.add_argument("run", type=Path)
    parser.set_defaults(func=run_recheck)
