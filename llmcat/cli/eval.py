"""``llmcat eval``: the regression harness (``python -m llmcat.evals``) under the main command."""

from __future__ import annotations

from collections.abc import Sequence

from llmcat.config.flags import SubParsers


def add_parser(sub: SubParsers) -> None:
    """``llmcat eval``: the harness's own parser reads its arguments (``main`` hands them over)."""
    sub.add_parser(
        "eval",
        help="the regression harness (python -m llmcat.evals); 'llmcat eval --help' for more",
        add_help=False,
    )


def run(arguments: Sequence[str]) -> int:
    """The harness, as ``python -m llmcat.evals`` with ``llmcat eval`` as its name."""
    from llmcat.evals.commands import main as evals_main

    return evals_main(list(arguments), prog="llmcat eval")
