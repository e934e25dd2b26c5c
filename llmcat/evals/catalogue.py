"""A suite as a catalogue file, and whether two runs over it agree item for item.

    python -m evals export --suite flipkart --out DIR   # DIR/products.parquet, DIR/taxonomy.txt
    python -m evals agree A B [--tolerance 1e-6]        # results: .jsonl, .parquet or a folder

``export`` writes what a user would bring to ``llmcat classify`` (no gold labels); ``agree``
checks that two ways of running the same job (one process and ``--ray``, a live run and a batch
import, the code before and after a change) gave every product the same category, a confidence
within the tolerance, the same error and the same copy (returned and replaced, with findings), and exits
1 naming the first products that differ. Two eval run folders compare every item of the runs,
classified and copy, the model's and the baselines'.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from pydantic import JsonValue

from llmcat.errors import ConfigError
from llmcat.evals.records import read_run
from llmcat.evals.suites import load_suite
from llmcat.io.tables import need, products_table, read_parquet_results


def run_export(args: argparse.Namespace) -> int:
    suite = load_suite(args.suite, data=args.data, limit=args.limit)
    if not suite.classify:
        raise ConfigError(f"suite {suite.name} has no classification records to export")
    args.out.mkdir(parents=True, exist_ok=True)
    table = products_table(
        [r.product.model_copy(update={"id": r.product.id or r.id}) for r in suite.classify]
    )
    products = args.out / "products.parquet"
    need("pyarrow.parquet").write_table(table, products)
    taxonomy = args.out / "taxonomy.txt"
    taxonomy.write_text(
        "".join(f"{c.path_text}\n" for c in suite.taxonomy if not suite.taxonomy.children(c.id)),
        encoding="utf-8",
    )
    print(
        f"{table.num_rows} products -> {products}; {len(suite.taxonomy.leaves())} leaves -> {taxonomy}"
    )
    return 0


#: one result record (a line of a results file, a row of Parquet, an eval sample's answer)
ResultRow = dict[str, JsonValue]


def read_results(path: Path) -> dict[str, ResultRow]:
    """Result records by product id, from a JSONL or Parquet results file or a folder of Parquet
    files (``llmcat ... --ray``, whose rows carry the input's ``id``)."""
    if not path.exists():
        raise ConfigError(f"{path} does not exist")
    if (path / "samples.jsonl").is_file():
        return run_results(path)
    if path.is_dir() or path.suffix.lower() == ".parquet":
        if path.is_dir():
            rows = need("pyarrow.parquet").read_table(path).to_pylist()
        else:
            rows = read_parquet_results(path)
    else:
        try:
            lines = path.read_text(encoding="utf-8").split("\n")  # not at U+2028
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
        rows = [json.loads(line) for line in lines if line.strip()]
    by_id: dict[str, ResultRow] = {}
    for row in rows:
        key = row.get("product_id", row.get("id"))
        if key is None:
            raise ConfigError(f"{path}: a row without product_id or id")
        by_id[str(key)] = row
    if not by_id:
        raise ConfigError(f"{path} holds no results")
    return by_id


def run_results(folder: Path) -> dict[str, ResultRow]:
    """An eval run's answers by item, keyed by task, id and whether a baseline gave it."""
    _, samples = read_run(folder)
    return {
        f"{s.task}{' (baseline)' if s.baseline else ''} {s.id}": s.output.model_dump(mode="json")
        for s in samples
    }


#: what copy results must share to agree (the model's replaced copy and its findings too)
COPY_FIELDS = (
    "title",
    "bullets",
    "body",
    "source",
    "findings",
    "rejected_copy",
    "rejected_findings",
)


def _error_text(row: ResultRow) -> str | None:
    error = row.get("error")
    if isinstance(error, dict):
        return f"{error.get('type', 'Error')}: {error.get('message', '')}"
    return None if error is None else str(error)


def differences(a: dict[str, ResultRow], b: dict[str, ResultRow], tolerance: float) -> list[str]:
    """One line per product whose results differ (or that only one side has)."""
    out = [f"{key}: only in A" for key in a if key not in b]
    out += [f"{key}: only in B" for key in b if key not in a]
    for key in a.keys() & b.keys():
        x, y = a[key], b[key]
        if x.get("category_id") != y.get("category_id"):
            out.append(f"{key}: category {x.get('category_id')!r} vs {y.get('category_id')!r}")
        elif _error_text(x) != _error_text(y):
            out.append(f"{key}: error {_error_text(x)!r} vs {_error_text(y)!r}")
        else:
            cx, cy = x.get("confidence"), y.get("confidence")
            if (cx is None) != (cy is None) or (
                isinstance(cx, (int, float))
                and isinstance(cy, (int, float))
                and not math.isclose(cx, cy, abs_tol=tolerance)
            ):
                out.append(f"{key}: confidence {cx} vs {cy}")
        if "bullets" in x and "bullets" in y:  # copy on both sides (a --ray folder of
            # classifications keeps the input's columns, its title among them)
            out += [
                f"{key}: {name} {str(x.get(name))[:60]!r} vs {str(y.get(name))[:60]!r}"
                for name in COPY_FIELDS
                if x.get(name) != y.get(name)
            ]
    return sorted(out)


def run_agree(args: argparse.Namespace) -> int:
    a, b = read_results(args.a), read_results(args.b)
    found = differences(a, b, args.tolerance)
    print(
        f"{len(a)} results in A, {len(b)} in B: "
        + ("equal item for item" if not found else f"{len(found)} differ")
        + f" (category, error, confidence within {args.tolerance:g}, copy)"
    )
    for line in found[:20]:
        print(f"  {line}", file=sys.stderr)
    return 1 if found else 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    export = sub.add_parser(
        "export", help="a suite as products.parquet and taxonomy.txt (what llmcat classify reads)"
    )
    export.add_argument("--suite", default="flipkart", help="golden, flipkart or a suite folder")
    export.add_argument("--data", type=Path, help="the suite's data file instead")
    export.add_argument("--limit", type=int, help="at most this many products (stratified)")
    export.add_argument("--out", type=Path, required=True, help="folder to write into")
    export.set_defaults(func=run_export)
    agree = sub.add_parser("agree", help="whether two result sets agree item for item")
    agree.add_argument("a", type=Path, help="results: .jsonl, .parquet, or a folder of Parquet")
    agree.add_argument("b", type=Path, help="the other results")
    agree.add_argument(
        "--tolerance", type=float, default=1e-6, help="largest confidence difference allowed"
    )
    agree.set_defaults(func=run_agree)
