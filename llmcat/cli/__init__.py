"""The ``llmcat`` command line: ``main`` dispatches to one module per command."""

from llmcat.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
