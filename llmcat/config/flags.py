"""Command-line flags and estimator parameters generated from option fields, so adding an
option is one field (``options.py`` or ``settings.py``) marked with ``Flag``.

- ``add_flags(parser, model, "cli")``: one argparse flag per field marked for that surface, its
  type, choices, default and help read from the field;
- ``given(args, model)``: the values of the flags typed on the command line, for
  ``model(**...)`` (a flag left out leaves the field to the environment or its default);
- ``flagged(model, surface)``: the marked fields (the scikit-learn estimator's parameters);
- ``SuggestingParser``: argparse that answers a typo with "did you mean" and one line of usage.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, TypeAlias, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from llmcat.config.options import Flag, Surface

#: what ``ArgumentParser.add_subparsers`` returns, for the ``add_parser(sub)`` of every command
#: (argparse types it by a private class)
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def flagged(model: type[BaseModel], surface: Surface) -> Iterator[tuple[str, FieldInfo, Flag]]:
    """Every field of ``model`` marked with a ``Flag`` for ``surface``, in field order."""
    for name, info in model.model_fields.items():
        for mark in info.metadata:
            if isinstance(mark, Flag) and surface in mark.surfaces:
                yield name, info, mark


def add_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    model: type[BaseModel],
    surface: Surface,
    *,
    only: tuple[str, ...] | None = None,
    skip: tuple[str, ...] = (),
) -> None:
    """One flag per field of ``model`` marked for ``surface`` (of ``only``, except ``skip``).
    Each flag notes in the namespace that it was typed (``given`` reads it)."""
    parser.set_defaults(**{TYPED: frozenset()})
    for name, info, mark in flagged(model, surface):
        if name not in skip and (only is None or name in only):
            action = parser.add_argument(*_names(name, mark), **_argparse_kwargs(name, info, mark))
            action.__class__ = _noting(type(action))


#: the namespace attribute naming the flags typed on the command line: a flag's default is not
#: an argument, so that LLMCAT_TIMEOUT still applies when --timeout was left out
TYPED = "_llmcat_flags_typed"
_NOTING: dict[type[argparse.Action], type[argparse.Action]] = {}


def _noting(base: type[argparse.Action]) -> type[argparse.Action]:
    """``base`` that also adds its destination to the namespace's ``TYPED`` set."""
    if base not in _NOTING:

        class Noting(base):  # type: ignore[valid-type,misc]
            def __call__(
                self,
                parser: argparse.ArgumentParser,
                namespace: argparse.Namespace,
                values: Any,
                option_string: str | None = None,
            ) -> None:
                super().__call__(parser, namespace, values, option_string)
                typed: frozenset[str] = getattr(namespace, TYPED, frozenset())
                setattr(namespace, TYPED, typed | {self.dest})

        _NOTING[base] = Noting
    return _NOTING[base]


def set_flag(args: argparse.Namespace, name: str, value: object) -> None:
    """Set a flag's value after parsing, as if it had been typed (``given`` passes it on)."""
    setattr(args, name, value)
    setattr(args, TYPED, getattr(args, TYPED, frozenset()) | {name})


def given(args: argparse.Namespace, model: type[BaseModel]) -> dict[str, Any]:  # values as parsed
    """The parsed arguments that are fields of ``model``: only the flags typed, when the parser
    noted them (``add_flags``); otherwise every value present."""
    values = vars(args)
    typed = values.get(TYPED)
    return {
        name: values[name]
        for name, info in model.model_fields.items()
        if name in values
        and (typed is None or name in typed)
        # None from a flag that was not given (a list flag) leaves the field's own default.
        and not (values[name] is None and info.get_default(call_default_factory=True) is not None)
    }


class SuggestingParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors name the nearest valid choice or flag and point to
    ``--help`` instead of printing the whole usage."""

    #: the exit status of a usage error
    usage_status = 2

    def error(self, message: str) -> typing.NoReturn:
        hint = self.suggestion(message)
        print(f"{self.prog}: error: {message}{hint}", file=sys.stderr)
        print(f"(see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(self.usage_status)

    def suggestion(self, message: str) -> str:
        """``; did you mean 'X'?`` for a mistyped choice or flag, else empty."""
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            word, options = choice.group(1), re.findall(r"'([^']*)'", choice.group(2))
        else:
            unknown = re.search(r"unrecognized arguments: (\S+)", message)
            if not unknown:
                return ""
            word, options = unknown.group(1).split("=")[0], list(self._option_string_actions)
            for action in self._actions:  # the chosen subcommand's flags too
                if isinstance(action, argparse._SubParsersAction):
                    for sub in action.choices.values():
                        options += list(sub._option_string_actions)
        # a flag that exists but was given in the wrong place is not a typo of itself
        close = difflib.get_close_matches(word, [o for o in options if o != word], n=1, cutoff=0.6)
        return f"; did you mean '{close[0]}'?" if close else ""


def _names(name: str, mark: Flag) -> tuple[str, ...]:
    return mark.names or (f"--{name.replace('_', '-')}",)


def _argparse_kwargs(name: str, info: FieldInfo, mark: Flag) -> dict[str, Any]:
    # Any: argparse's keyword arguments differ in type per key (action, type, choices, ...)
    default = info.get_default(call_default_factory=True)
    kwargs: dict[str, Any] = {"dest": name, "default": default}
    help_text = info.description or ""
    base = _unwrapped(info.annotation)
    if base is bool and mark.parse is None:
        # Off by default: the flag turns it on; on by default: --no-NAME turns it off.
        kwargs["action"] = "store_true" if default is False else argparse.BooleanOptionalAction
    elif get_origin(base) is list:
        kwargs.update(action="append", default=None)  # None: nothing given, the field's default
        kwargs["type"] = mark.parse or str
    else:
        kwargs["type"] = mark.parse or (base if base in (int, float, Path) else str)
        if get_origin(base) is Literal and mark.parse is None:
            kwargs["choices"] = [c for c in get_args(base) if c is not None]
    if mark.metavar:
        kwargs["metavar"] = mark.metavar
    if default not in (None, [], False) and kwargs.get("action") is None:
        help_text += f" (default: {default})"
    elif default is True:
        help_text += " (default: yes)"
    kwargs["help"] = (mark.help or help_text).replace("%", "%%")
    return kwargs


def _unwrapped(annotation: object) -> object:
    """``X`` from ``X | None``; other annotations as they are. A union of several types
    (``trust``, ``calibration``) is taken as text: the model converts it."""
    if get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return members[0] if len(members) == 1 else str
    return annotation


__all__ = ["TYPED", "SuggestingParser", "add_flags", "flagged", "given", "set_flag"]
