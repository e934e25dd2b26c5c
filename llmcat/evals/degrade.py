"""Copies of a classification suite with less to read: does confidence hold on sparse products?

    python -m evals degrade [--suite golden] [--data FILE] [--seed 0] --out runs/degraded

Writes three suite folders under ``--out``, each run with ``run --suite FOLDER``:

- ``<suite>-title``: the title alone (no brand, attributes or description);
- ``<suite>-short``: the title's first ``SHORT_WORDS`` words alone;
- ``<suite>-drop``: each title word kept with probability 1/2 (seeded; at least the first).

The products, gold paths and taxonomy are the suite's; only what there is to read changes.
Catalogues of bare titles are common, and a fit's confidence measured on rich products need
not hold there (docs/benchmarks.md, "Where the spread is blind").
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from pathlib import Path

from llmcat.config.flags import SubParsers
from llmcat.errors import ConfigError
from llmcat.evals.suites import load_suite
from llmcat.taxonomy.tree import PATH_SEPARATOR
from llmcat.types import Product

#: words kept by the ``short`` copy
SHORT_WORDS = 3

Degrade = Callable[[Product, random.Random], Product]


def title_only(product: Product, rng: random.Random) -> Product:
    return product.model_copy(update={"brand": None, "attributes": {}, "description": ""})


def short_title(product: Product, rng: random.Random) -> Product:
    words = product.title.split()[:SHORT_WORDS]
    return title_only(product, rng).model_copy(update={"title": " ".join(words)})


def half_the_words(product: Product, rng: random.Random) -> Product:
    words = product.title.split()
    kept = [w for w in words if rng.random() < 0.5] or words[:1]
    return title_only(product, rng).model_copy(update={"title": " ".join(kept)})


DEGRADATIONS: dict[str, Degrade] = {
    "title": title_only,
    "short": short_title,
    "drop": half_the_words,
}


def write_degraded(suite_name: str, data: Path | None, out: Path, seed: int) -> list[Path]:
    """The degraded copies of the suite's classification records, one folder each."""
    suite = load_suite(suite_name, data=data)
    if not suite.classify:
        raise ConfigError(f"suite {suite.name!r} has no classification records to degrade")
    written = []
    for name, degrade in DEGRADATIONS.items():
        folder = out / f"{suite.name}-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        rng = random.Random(seed)
        lines = [
            r.model_copy(update={"product": degrade(r.product, rng)}).model_dump_json(
                exclude_none=True
            )
            for r in suite.classify
        ]
        (folder / "classify.jsonl").write_text("\n".join(lines) + "\n")
        paths = [PATH_SEPARATOR.join(c.path) for c in suite.taxonomy]
        (folder / "taxonomy.txt").write_text("\n".join(paths) + "\n")
        manifest = {
            "name": folder.name,
            "description": f"{suite.name} with {name} ({__name__}, seed {seed})",
            "taxonomy": {"kind": "file", "path": "taxonomy.txt"},
            "max_level": suite.max_level,
            "classify": "classify.jsonl",
        }
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        written.append(folder)
    return written


def run_degrade(args: argparse.Namespace) -> int:
    for folder in write_degraded(args.suite, args.data, args.out, args.seed):
        print(f"wrote {folder}: python -m evals run --suite {folder} --task classify --out RUN")
    return 0


def add_parser(sub: SubParsers) -> None:
    p = sub.add_parser(
        "degrade", help="copies of a suite with less to read (title only, 3 words, half the words)"
    )
    p.add_argument("--suite", default="golden", help="a classification suite (default golden)")
    p.add_argument("--data", type=Path, help="a JSONL or Flipkart-format CSV instead")
    p.add_argument("--seed", type=int, default=0, help="seed of the dropped words")
    p.add_argument("--out", type=Path, required=True, help="folder for the suite folders")
    p.set_defaults(func=run_degrade)
