"""The ``llmcat`` command: the top-level flags, one sub-command per module of this package
(``classify``, ``describe``, ``eval``, ``map``, ``taxonomy``, ``serve``, ``api``), logging on stderr and the
exit codes.

Exit codes: 0 done (a batch may hold per-item error records, counted on stderr); 1 a single item
failed, a model or output error; 2 usage or configuration error; 3 a batch wrote every record but
every item (or more than --max-error-rate) failed; 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence

from llmcat._version import __version__
from llmcat.cli import api, classify, describe, extract, serve, taxonomy
from llmcat.cli import eval as harness
from llmcat.cli import map as mapping
from llmcat.config.flags import SuggestingParser, set_flag
from llmcat.errors import ConfigError, InputError, LlmcatError
from llmcat.io.inputs import (
    STDIO,
)
from llmcat.redact import redact


class _Redacting(logging.Filter):
    """Every log line through ``redact``: no configured key reaches the terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        return True


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler that writes to whatever ``sys.stderr`` is when a line is logged."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _quiet_means_no_progress(args: argparse.Namespace) -> None:
    """--quiet: no progress bar either, unless --progress or --no-progress was typed."""
    if args.quiet and hasattr(args, "progress") and args.progress is None:
        set_flag(args, "progress", False)


def _configure_logging(verbose: int, quiet: bool) -> None:
    """The ``llmcat`` logger to stderr: warnings by default, -v INFO, -vv DEBUG, -q errors."""
    level = (
        logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    )
    logger = logging.getLogger("llmcat")
    logger.setLevel(level)
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("llmcat: %(levelname)s %(message)s"))
    handler.addFilter(_Redacting())
    logger.handlers = [h for h in logger.handlers if isinstance(h, logging.NullHandler)]
    logger.addHandler(handler)


#: the sub-commands in the order ``llmcat --help`` lists them
COMMANDS = (classify, describe, extract, harness, mapping, taxonomy, serve, api)
#: what runs each command but ``serve`` (which also takes the arguments after ``--``) and
#: ``eval`` (whose own parser reads its arguments)
RUNS = {
    "classify": classify.run,
    "describe": describe.run,
    "extract": extract.run,
    "map": mapping.run,
    "taxonomy": taxonomy.run,
    "api": api.run,
}


def build_parser() -> argparse.ArgumentParser:
    """The whole ``llmcat`` parser: the top-level flags, then each command's own."""
    parser = SuggestingParser(
        prog="llmcat",
        description="Classify products, write listing copy and extract attribute values with LLMs.",
    )
    parser.add_argument("--version", action="version", version=f"llmcat {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log what llmcat does on stderr: -v retries, re-asks, fallbacks and a summary per "
        "batch; -vv also cache hits",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="log only errors (and no progress bar)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llmcat`` command."""
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if arguments[:1] == ["serve"] and "--" in arguments:
        # Everything after '--' belongs to vLLM, whatever it looks like.
        cut = arguments.index("--")
        arguments, extra = arguments[:cut], arguments[cut + 1 :]
    if arguments[:1] == ["eval"]:
        return harness.run(arguments[1:])
    args = parser.parse_args(arguments)
    _configure_logging(args.verbose, args.quiet)
    _quiet_means_no_progress(args)
    try:
        if args.command == "serve":
            return serve.run(args, extra)
        return RUNS[args.command](args)
    except (ConfigError, InputError) as exc:
        print(f"llmcat: error: {redact(str(exc))}", file=sys.stderr)
        return 2
    except LlmcatError as exc:
        print(f"llmcat: {type(exc).__name__}: {redact(str(exc))}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `llmcat ... | head`: the reader has what it wanted
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)  # the exit's flush of stdout goes nowhere
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        return 0
    except OSError as exc:  # the disk filled up, the output vanished: say so, no traceback
        print(f"llmcat: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        resumable = args.command == "map" and str(args.output) != STDIO
        hint = " (--resume continues the --output file)" if resumable else ""
        print(f"llmcat: interrupted{hint}", file=sys.stderr)
        return 130
