"""Known pairs for ``llmcat map --known``: read from a file, then matched to the two taxonomies.

- ``read_pairs``: Shopify's mapping format (``→ source`` then ``⇒ target`` lines), or a CSV/JSONL
  file with ``source_path`` and ``target_path`` (empty: unmapped). A file that is not text, a
  line that is not JSON or not an object, a row without a source: a ConfigError naming the file
  and the line, never a traceback.
- ``resolve_pairs``: the pairs whose categories both taxonomies have. A pairs file made for an
  older release of a taxonomy names a few categories since renamed or removed (Shopify's
  2024-10 mapping against its 2025-03 categories: 52 of about 10,300); those are skipped and
  counted (``Resolved.notice``), and only a file none of whose pairs match is refused. One source
  category given two different targets is refused: which one is meant cannot be guessed.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from llmcat.errors import ConfigError
from llmcat.taxonomy.tree import Taxonomy, split_path

#: skipped pairs shown by name in the notice; the rest are counted
SHOWN = 3


def read_pairs(path: str | Path) -> list[tuple[str, str | None]]:
    """Pairs from Shopify's mapping format (``→ source`` then ``⇒ target`` lines), or a CSV/JSONL
    file with ``source_path`` and ``target_path`` (empty: unmapped)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"pairs file {file} does not exist")
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the pairs file {file}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{file} is not a pairs file: not UTF-8 text (byte {exc.start})"
        ) from None
    if "\x00" in text:
        raise ConfigError(f"{file} is not a pairs file: it holds NUL bytes (a binary file?)")
    # lines end at \n only: a path may hold U+2028 or another character splitlines() splits on
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    suffix = file.suffix.lower()
    if suffix == ".csv":
        try:
            rows = list(csv.DictReader(lines))
        except csv.Error as exc:
            raise ConfigError(f"{file} is not a readable CSV file: {exc}") from None
        return [_pair(r, f"{file} row {n}") for n, r in enumerate(rows, 2)]
    if suffix in (".jsonl", ".ndjson"):
        return [
            _pair(_object(line, f"{file} line {n}"), f"{file} line {n}")
            for n, line in enumerate(lines, 1)
            if line.strip()
        ]
    pairs: list[tuple[str, str | None]] = []
    current: str | None = None
    for line in lines:
        if line.startswith("→"):
            current = line[1:].strip()
        elif line.startswith("⇒") and current is not None:
            pairs.append((current, line[1:].strip() or None))
            current = None
    if not pairs:
        raise ConfigError(f"{file} holds no pairs (→/⇒ lines, or a .csv/.jsonl file)")
    return pairs


def _object(line: str, where: str) -> Mapping[str, object]:
    try:
        value = json.loads(line)
    except ValueError:
        raise ConfigError(f"{where} is not JSON") from None
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where} is not a JSON object (a pair is {{'source_path': ..., 'target_path': ...}})"
        )
    return value


def _pair(record: Mapping[str, object], where: str) -> tuple[str, str | None]:
    left, right = record.get("source_path"), record.get("target_path")
    if not isinstance(left, str) or not left.strip():
        raise ConfigError(f"{where}: no source_path")
    right_text = " > ".join(split_path(right)) if isinstance(right, str) and right.strip() else None
    return " > ".join(split_path(left)), right_text


@dataclass(frozen=True)
class Resolved:
    """The pairs both taxonomies have (``pairs``), and what to tell the user about the others
    (``notice``, None when every pair matched)."""

    pairs: list[tuple[str, str | None]]
    notice: str | None
    skipped: int


def resolve_pairs(
    pairs: Iterable[tuple[str, str | None]], source: Taxonomy, target: Taxonomy, *, where: str
) -> Resolved:
    """Keep the pairs whose source (and target, unless unmapped) are categories of ``source``
    and ``target``; skip and count the others (see the module docstring). ConfigError when none
    matches, or when one source category is given two different targets."""
    kept: list[tuple[str, str | None]] = []
    chosen: dict[str, tuple[int, str | None]] = {}
    skipped: list[str] = []
    total = 0
    for n, (left, right) in enumerate(pairs, 1):
        total += 1
        s = source.find_path(left)
        t = None if right is None else target.find_path(right)
        if s is None or (right is not None and t is None):
            missing = (
                f"{left!r} is not in {source.name}"
                if s is None
                else f"{right!r} is not in {target.name}"
            )
            skipped.append(f"pair {n}: {missing}")
            continue
        answer = None if t is None else t.id
        if s.id in chosen and chosen[s.id][1] != answer:
            first, other = chosen[s.id]
            before = "unmapped" if other is None else repr(target.get(other).path_text)
            now = "unmapped" if t is None else repr(t.path_text)
            raise ConfigError(
                f"{where}: pairs {first} and {n} map {left!r} to two targets ({before}, {now}); "
                "keep the one you mean"
            )
        if s.id not in chosen:
            chosen[s.id] = (n, answer)
            kept.append((left, right))
    if total and not kept:
        raise ConfigError(
            f"{where}: none of its {total} pairs names categories of both taxonomies "
            f"({'; '.join(skipped[:SHOWN])}): is it a mapping between these two?"
        )
    notice = None
    if skipped:
        more = f"; and {len(skipped) - SHOWN} more" if len(skipped) > SHOWN else ""
        notice = (
            f"{len(skipped)} of {total} known pairs of {where} name categories these taxonomies "
            f"lack (made for another release?) and are skipped: {'; '.join(skipped[:SHOWN])}{more}"
        )
    return Resolved(kept, notice, len(skipped))


__all__ = ["Resolved", "read_pairs", "resolve_pairs"]
