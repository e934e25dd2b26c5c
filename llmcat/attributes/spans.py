"""Candidate values in a product's text, and what a tagger reads about each (pure).

A value is a run of whole tokens: ``Men's``, ``High-Top Sneaker``, ``10 D US``. Tokens are
split at white space and at ``, ( ) [ ] / ; |``, which separate values in product titles
(``Loafer,Burgundy,10 D US``); a value keeps its inner hyphens and apostrophes. Every run of
at most ``MAX_TOKENS`` tokens is a candidate, with its character span, so an answer always
points at the text it was read from.

Features are hashed once per product (``run_features``: CRC-32 of each run's words, shape,
place and neighbours, the words' own hashed once per text) and combined with each attribute's
name in numpy (``columns``), so a product with ten attributes costs little more than one.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

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


#: features of a run that a tagger reads beside every attribute: 12 of the run, then the
#: words inside it (``in<word>``), one column each
SHARED_WIDTH = 12 + MAX_TOKENS
#: features read only beside the category's own attribute: the place from the end and the
#: shapes of the first and last words
OWN_WIDTH = 3
#: "known" counts are capped here: a value seen 3 times is as known as one seen 30
KNOWN_CAP = 3
#: columns of a run's row: the shared features and the "known" count beside the category's
#: attribute and beside the attribute, the own ones, the bare "known" count and the attribute
WIDTH = 2 * (SHARED_WIDTH + 1) + OWN_WIDTH + 2


def _crc(feature: str) -> int:
    # CRC-32, not hash(): the same in every process and Python version
    return zlib.crc32(feature.encode("utf-8"))


@dataclass(frozen=True)
class RunFeatures:
    """The candidate runs of one field and the CRC-32 of what a tagger reads about each,
    before any attribute is named: ``shared`` (runs x ``SHARED_WIDTH``, -1 where a run has
    fewer words) and ``own`` (runs x ``OWN_WIDTH``). Computed once per product, combined
    with each attribute in numpy (``columns``)."""

    spans: tuple[Span, ...]
    lowered: tuple[str, ...]
    shared: NDArray[np.int64]
    own: NDArray[np.int64]

    def __add__(self, other: RunFeatures) -> RunFeatures:
        import numpy as np

        return RunFeatures(
            self.spans + other.spans,
            self.lowered + other.lowered,
            np.vstack([self.shared, other.shared]),
            np.vstack([self.own, other.own]),
        )


def run_features(
    text: str,
    field: str = "title",
    *,
    read_chars: int = READ_CHARS,
    wanted: Callable[[str], bool] | None = None,
) -> RunFeatures:
    """``candidate_spans`` of ``text`` with their features (see ``RunFeatures``)."""
    near = _near_features(text, field, MAX_TOKENS, read_chars)
    if wanted is None or len(text) <= read_chars:
        return near
    far = tuple(
        s for s in _runs(text, field, MAX_TOKENS, read_chars, before=False) if wanted(s.text)
    )
    return near + _features(text, field, far) if far else near


@lru_cache(maxsize=64)  # a product's runs serve each of its attributes
def _near_features(text: str, field: str, max_tokens: int, read_chars: int) -> RunFeatures:
    return _features(text, field, _runs_cached(text, field, max_tokens, read_chars))


@lru_cache(maxsize=64)
def _word_features(text: str) -> NDArray[np.int64]:
    """Per token: the CRC-32 of ``first``, ``last``, ``prev``, ``next``, ``prev2``, ``in``
    + the lower-cased word, and ``fshape``, ``lshape`` + its shape (tokens x 8)."""
    import numpy as np

    rows = []
    for a, b in tokens(text):
        low, form = text[a:b].lower(), shape(text[a:b])
        rows.append(
            [_crc(f"{kind}{low}") for kind in ("first", "last", "prev", "next", "prev2", "in")]
            + [_crc(f"fshape{form}"), _crc(f"lshape{form}")]
        )
    return np.asarray(rows, dtype=np.int64).reshape(-1, 8)


def _features(text: str, field: str, spans: Sequence[Span]) -> RunFeatures:
    import numpy as np

    n = len(spans)
    words = _word_features(text)
    count = len(words)
    first = np.asarray([s.first for s in spans], dtype=np.int64)
    last = np.asarray([s.last for s in spans], dtype=np.int64)
    length = last - first + 1
    shared = np.full((n, SHARED_WIDTH), -1, dtype=np.int64)
    own = np.empty((n, OWN_WIDTH), dtype=np.int64)
    lowered = tuple(s.text.lower() for s in spans)
    if n:
        shared[:, 0] = np.asarray(_LENGTHS)[np.minimum(length, MAX_TOKENS)]
        shared[:, 1] = np.asarray(_STARTS)[np.minimum(first, 5)]
        shared[:, 2] = words[first, 0]
        shared[:, 3] = words[last, 1]
        shared[:, 4] = np.where(first > 0, words[np.maximum(first - 1, 0), 2], _PREV_START)
        after = np.minimum(last + 1, count - 1)
        shared[:, 5] = np.where(last + 1 < count, words[after, 3], _NEXT_END)
        shared[:, 6] = [_crc(f"shape{shape(s.text)[:12]}") for s in spans]
        shared[:, 7] = _crc(f"field{field}")
        shared[:, 8] = [_crc(f"p3{low[:3]}") for low in lowered]
        shared[:, 9] = [_crc(f"s3{low[-3:]}") for low in lowered]
        shared[:, 10] = [
            _crc(f"gap{text[s.start - 1 : s.start]}|{text[s.end : s.end + 1]}") for s in spans
        ]
        shared[:, 11] = np.where(first > 1, words[np.maximum(first - 2, 0), 4], _PREV2_START)
        for offset in range(MAX_TOKENS):
            inside = offset < length
            at = np.minimum(first + offset, count - 1)
            shared[:, 12 + offset] = np.where(inside, words[at, 5], -1)
        own[:, 0] = np.asarray(_ENDS)[np.minimum(count - 1 - last, 5)]
        own[:, 1] = words[first, 6]
        own[:, 2] = words[last, 7]
    return RunFeatures(tuple(spans), lowered, shared, own)


_LENGTHS = [_crc(f"len{n}") for n in range(MAX_TOKENS + 1)]
_STARTS = [_crc(f"start{n}") for n in range(6)]
_ENDS = [_crc(f"end{n}") for n in range(6)]
_KNOWN = [_crc(f"known{n}") for n in range(KNOWN_CAP + 1)]
_PREV_START = _crc("prev<s>")
_PREV2_START = _crc("prev2<s>")
_NEXT_END = _crc("next</s>")
#: Fibonacci hashing's multiplier: spreads prefix XOR feature over the columns
_MIX = 0x9E3779B1


def _mixed(crc: NDArray[np.int64], bits: int) -> NDArray[np.int64]:
    import numpy as np

    spread = (crc.astype(np.uint64) * np.uint64(_MIX)) & np.uint64(0xFFFFFFFF)
    top: NDArray[np.int64] = (spread >> np.uint64(32 - bits)).astype(np.int64)
    return top


def columns(
    runs: RunFeatures,
    category: str,
    attribute: str,
    known: Mapping[str, int],
    bits: int = FEATURE_BITS,
) -> NDArray[np.int64]:
    """Each run's feature columns as ``attribute``'s value in ``category``, in a
    ``2**bits``-wide space (runs x width; column ``2**bits`` where a run has no feature).

    Every shared feature comes twice, beside this category's attribute and beside the
    attribute in every category (so a category with few examples borrows from the others);
    the "known" count (how often the run's text was this attribute's value in the examples,
    ``known``: lower-cased value -> count) comes a third time alone."""
    import numpy as np

    seen = np.asarray(
        [_KNOWN[min(known.get(low, 0), KNOWN_CAP)] for low in runs.lowered], dtype=np.int64
    ).reshape(-1, 1)
    own_prefix = _crc(f"{category}|{attribute}|")
    attribute_prefix = _crc(f"{attribute}|")
    shared = np.hstack([runs.shared, seen])
    pad = shared < 0
    parts = [
        np.where(pad, 1 << bits, _mixed(shared ^ own_prefix, bits)),
        np.where(pad, 1 << bits, _mixed(shared ^ attribute_prefix, bits)),
        _mixed(runs.own ^ own_prefix, bits),
        _mixed(seen, bits),
        np.full_like(seen, int(_mixed(np.asarray(_crc(f"{category}|{attribute}")), bits))),
    ]
    return np.hstack(parts)


def none_columns(category: str, attribute: str, bits: int = FEATURE_BITS) -> NDArray[np.int64]:
    """The row (1 x ``WIDTH``) that stands for "the text states no value" of ``attribute`` in
    ``category``: its own weight beside the category's attribute, the attribute, and alone."""
    import numpy as np

    none = _crc("none")
    prefixes = (_crc(f"{category}|{attribute}|"), _crc(f"{attribute}|"), 0)
    row = np.full((1, WIDTH), 1 << bits, dtype=np.int64)
    row[0, :3] = _mixed(np.asarray([none ^ prefix for prefix in prefixes]), bits)
    return row


__all__ = [
    "FEATURE_BITS",
    "MAX_TOKENS",
    "READ_CHARS",
    "WIDTH",
    "RunFeatures",
    "Span",
    "candidate_spans",
    "columns",
    "none_columns",
    "run_features",
    "shape",
    "tokens",
]
