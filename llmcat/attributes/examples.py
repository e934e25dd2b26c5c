"""Products labelled with their attribute values, read from a file.

Two JSONL layouts are read as they are:

- the published benchmark format (OA-Mine, AE-110K, WDC-PAVE): ``input`` (the product text),
  ``category``, ``target_scores`` = ``{attribute: {value: 1, ...}}``, several values being
  accepted spellings of one answer and ``"n/a"`` meaning the text states no value;
- llmcat's own: ``title`` (``description``, ``brand`` optional), ``category`` (optional) and
  ``values`` = ``{attribute: value | [values] | null}``.

An attribute of a product's category that its record leaves out states no value there.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from llmcat.errors import InputError

#: the benchmark format's word for "no value"
NO_VALUE = "n/a"


@dataclass(frozen=True)
class AttributeExample:
    """One labelled product: its text, its category and, per attribute, the accepted values
    (an empty tuple: the text states none)."""

    title: str
    category: str = ""
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    description: str = ""


def example_from(record: Mapping[str, object], where: str) -> AttributeExample:
    """One example from a decoded JSON record of either layout; InputError naming ``where``
    for one that is neither."""
    if "input" in record and "target_scores" in record:
        text, scores = record["input"], record["target_scores"]
        if not isinstance(text, str) or not isinstance(scores, Mapping):
            raise InputError(f"{where}: 'input' must be text and 'target_scores' an object")
        values = {
            str(name): tuple(str(v) for v in (given or {}) if str(v) != NO_VALUE)
            for name, given in scores.items()
        }
        return AttributeExample(text, str(record.get("category") or ""), values)
    title, given = record.get("title"), record.get("values")
    if not isinstance(title, str) or not isinstance(given, Mapping):
        raise InputError(
            f"{where}: an example needs 'input' and 'target_scores' (the benchmark format) or "
            "'title' and 'values'"
        )
    values = {}
    for name, value in given.items():
        if value is None or value == NO_VALUE:
            values[str(name)] = ()
        elif isinstance(value, str):
            values[str(name)] = (value,)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            values[str(name)] = tuple(value)
        else:
            raise InputError(f"{where}: values.{name} must be text, a list of text or null")
    description = record.get("description")
    return AttributeExample(
        title,
        str(record.get("category") or ""),
        values,
        description if isinstance(description, str) else "",
    )


def read_examples(path: Path) -> list[AttributeExample]:
    """Every example of a JSONL file; InputError naming the file and line of the first bad
    one (a labelled set is small: better fixed than half read)."""
    if not path.is_file():
        raise InputError(f"{path}: no such examples file")
    examples = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{path}, line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(record, Mapping):
                raise InputError(f"{where}: not a JSON object")
            examples.append(example_from(record, where))
    if not examples:
        raise InputError(f"{path}: no examples")
    return examples


def attributes_by_category(examples: Iterable[AttributeExample]) -> dict[str, list[str]]:
    """Each category's attributes in the examples, in the order first seen."""
    found: dict[str, dict[str, None]] = {}
    for example in examples:
        names = found.setdefault(example.category, {})
        for name in example.values:
            names.setdefault(name, None)
    return {category: list(names) for category, names in found.items()}


class CategoryGuess:
    """The examples' category whose words a text shares most (tf-idf over lower-cased words):
    for a product that comes without one, so that it gets its category's attributes rather
    than every category's."""

    def __init__(self, examples: Iterable[AttributeExample]) -> None:
        counts: dict[str, Counter[str]] = {}
        for example in examples:
            counts.setdefault(example.category, Counter()).update(_words(example.title))
        documents = Counter(word for words in counts.values() for word in words)
        self.categories = list(counts)
        self._weights = {
            category: {
                word: (1 + math.log(n)) * math.log(1 + len(counts) / documents[word])
                for word, n in words.items()
            }
            for category, words in counts.items()
        }

    def __call__(self, text: str) -> str:
        """The best category for ``text`` (the first one on a tie, or with no shared word)."""
        words = set(_words(text))
        return max(
            self.categories,
            key=lambda c: sum(self._weights[c].get(w, 0.0) for w in words),
            default="",
        )


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.lower())


def completed(examples: Iterable[AttributeExample]) -> list[AttributeExample]:
    """The examples with every attribute of their category: one an example leaves out states
    no value there (the benchmarks list only the attributes a product has)."""
    listed = list(examples)
    names = attributes_by_category(listed)
    return [replace(e, values={n: e.values.get(n, ()) for n in names[e.category]}) for e in listed]


__all__ = [
    "NO_VALUE",
    "AttributeExample",
    "CategoryGuess",
    "attributes_by_category",
    "completed",
    "example_from",
    "read_examples",
]
