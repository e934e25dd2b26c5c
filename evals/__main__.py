"""``python -m evals``: run, compare, report, baseline, bench."""

from __future__ import annotations

import argparse
import sys

from . import bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals", description="llmcat's evaluation harness"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    bench.add_parser(sub)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
