"""Candidate values in a product's text, and what a tagger reads about each (pure).

A value is a run of whole tokens: ``Men's``, ``High-Top Sneaker``, ``10 D US``. Tokens are
split at white space and at ``, ( ) [ ] / ; |``, which separate values in product titles
(``Loafer,Burgundy,10 D US``); a value keeps its inner hyphens and apostrophes. Every run of
at most ``MAX_TOKENS`` tokens is a candidate, with its character span, so an answer always
points at the text it was read from.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

#: longest value, in tokens (OA-Mine's train values: 99.6% have at most 6)
MAX_TOKENS = 6
#: characters of a field whose every run is a candidate; past them only known values are
#: (OA-Mine's titles are at most 200; an offer's description may run to thousands)
READ_CHARS = 1000
#: width of the hashed feature space (features collide rarely below ~100k distinct ones)
FEATURE_BITS = 20

_TOKEN = re.compile(r"[^\s,()\[\]|/;]+")
_UPPER = re.compile(r"[A-Z]")
_LOWER = re.compile(r"[a-z]")
_DIGIT = re.compile(r"[0-9]")
_REPEAT = re.compile(r"(.)\1+")


@dataclass(frozen=True)
class Span:
    """The characters ``start:end`` of a field's text, tokens ``first`` to ``last``."""

    field: str
    start: int
    end: int
    first: int
    last: int
    text: str


def tokens(text: str) -> list[tuple[int, int]]:
    """The character spans of ``text``'s tokens."""
    return [(m.start(), m.end()) for m in _TOKEN.finditer(text)]


def candidate_spans(
    text: str,
    field: str = "title",
    max_tokens: int = MAX_TOKENS,
    *,
    read_chars: int = READ_CHARS,
    wanted: Callable[[str], bool] | None = None,
) -> list[Span]:
    """Every run of 1 to ``max_tokens`` tokens of ``text`` that starts in its first
    ``read_chars`` characters, trimmed of the ``-:.`` that glue values to their neighbours
    (``Tea -``); runs that trim to nothing are left out. Past ``read_chars``, only the runs
    whose text ``wanted`` accepts (a known value): a description of thousands of characters
    stays cheap."""
    near = list(_runs_cached(text, field, max_tokens, read_chars))
    if wanted is None or len(text) <= read_chars:
        return near
    return near + [
        s for s in _runs(text, field, max_tokens, read_chars, before=False) if wanted(s.text)
    ]


@lru_cache(maxsize=64)  # a product's runs serve each of its attributes
def _runs_cached(text: str, field: str, max_tokens: int, read_chars: int) -> tuple[Span, ...]:
    return tuple(_runs(text, field, max_tokens, read_chars, before=True))


def _runs(
    text: str, field: str, max_tokens: int, read_chars: int, *, before: bool
) -> Iterator[Span]:
    found = tokens(text)
    for first in range(len(found)):
        if (found[first][0] < read_chars) != before:
            continue
        for last in range(first, min(len(found), first + max_tokens)):
            start, end = found[first][0], found[last][1]
            raw = text[start:end]
            value = raw.strip(" -:.")
            if not value:
                continue
            start += len(raw) - len(raw.lstrip(" -:."))
            yield Span(field, start, start + len(value), first, last, value)


def shape(word: str) -> str:
    """``Men's`` -> ``Aaa'a``: upper, lower, digit; a run of one kind kept at two."""
    folded = _DIGIT.sub("0", _LOWER.sub("a", _UPPER.sub("A", word)))
    return _REPEAT.sub(r"\1\1", folded)


def span_features(
    text: str,
    words: Sequence[tuple[int, int]],
    span: Span,
    category: str,
    attribute: str,
    known: Mapping[str, int],
) -> Iterator[str]:
    """What a tagger reads about ``span`` as a value of ``attribute`` in ``category``: its
    words, their neighbours, shape, length and place, and how often its text was a value of
    this attribute in the examples (``known``: lower-cased value -> count). Each feature comes
    twice: for this category's attribute, and for the attribute in every category (so a
    category with few examples borrows from the others)."""
    lowered = [text[a:b].lower() for a, b in words]
    low = span.text.lower()
    before = lowered[span.first - 1] if span.first else "<s>"
    after = lowered[span.last + 1] if span.last + 1 < len(lowered) else "</s>"
    seen = known.get(low, 0)
    plain = (
        f"len{span.last - span.first + 1}",
        f"start{min(span.first, 5)}",
        f"first{lowered[span.first]}",
        f"last{lowered[span.last]}",
        f"prev{before}",
        f"next{after}",
        f"shape{shape(span.text)[:12]}",
        f"known{min(seen, 3)}",
        f"field{span.field}",
        f"p3{low[:3]}",
        f"s3{low[-3:]}",
        f"gap{text[span.start - 1 : span.start]}|{text[span.end : span.end + 1]}",
        f"prev2{lowered[span.first - 2] if span.first > 1 else '<s>'}",
        *(f"in{word}" for word in lowered[span.first : span.last + 1]),
    )
    own = f"{category}|{attribute}"
    yield own
    yield f"known{min(seen, 3)}"
    yield f"{own}|end{min(len(words) - 1 - span.last, 5)}"
    yield f"{own}|fshape{shape(text[slice(*words[span.first])])}"
    yield f"{own}|lshape{shape(text[slice(*words[span.last])])}"
    for feature in plain:
        yield f"{own}|{feature}"
        yield f"{attribute}|{feature}"


def hashed(features: Iterator[str], bits: int = FEATURE_BITS) -> list[int]:
    """Each feature's column in a ``2**bits``-wide space (CRC-32: the same in every process
    and Python version, unlike ``hash``)."""
    mask = (1 << bits) - 1
    return [zlib.crc32(feature.encode("utf-8")) & mask for feature in features]


__all__ = [
    "FEATURE_BITS",
    "MAX_TOKENS",
    "READ_CHARS",
    "Span",
    "candidate_spans",
    "hashed",
    "shape",
    "span_features",
    "tokens",
]
