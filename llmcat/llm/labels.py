"""Mapping a model's free-text answer to exactly one allowed label, or to none. Pure.

Used when the server could not enforce the choice (``structured_output="none"``) and as the final
gate for every backend: whatever the model says, only a label from the list leaves llmcat.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_PREFIXES = re.compile(r"^(?:the\s+)?(?:category|answer|label)\s*(?:is)?\s*[:\-]?\s*", re.I)
_EDGE = re.compile(r"^[\s\"'`*_.\-:>]+|[\s\"'`*_.\-:>]+$")
# A label named after one of these (within two words) is being ruled out, not chosen.
_NEGATED = re.compile(
    r"(?:\bnot|\bno|\bnever|n't|\bneither|\bnor|\bwithout|\bexcept|\bother than|\brather than)"
    r"\s+(?:\S+\s+){0,2}$"
)


def normalise(text: str) -> str:
    """Lowercase, drop quotes/markdown/punctuation at the edges and fold whitespace."""
    text = text.strip().splitlines()[0] if text.strip() else ""
    text = _PREFIXES.sub("", text.strip())
    text = _EDGE.sub("", text)
    text = re.sub(r"\s*>\s*", " > ", text)
    return re.sub(r"\s+", " ", text).lower()


def match_label(answer: str, labels: Sequence[str]) -> str | None:
    """The one label the answer names, or None when it names none or several.

    Tried in order: exact text; the same text after normalising; the label's last path segment;
    a label contained in the answer as whole words (only if exactly one is, and not after a
    negation: "not Toys" names no label).
    """
    if answer in labels:
        return answer
    norm = normalise(answer)
    if not norm:
        return None
    by_norm = {normalise(label): label for label in labels}
    if norm in by_norm:
        return by_norm[norm]
    leaf_hits = [label for label in labels if normalise(label.split(">")[-1]) == norm]
    if len(leaf_hits) == 1:
        return leaf_hits[0]
    contained = [label for label in labels if _named(normalise(label), norm)]
    # The longest match wins only when it contains every other one ("Shoes" inside "Running Shoes").
    if contained:
        longest = max(contained, key=len)
        if all(normalise(c) in normalise(longest) for c in contained):
            return longest
    return None


def _named(label: str, answer: str) -> bool:
    """Whether ``answer`` names ``label`` as whole words, at least once not after a negation."""
    pattern = r"(?<!\w)" + re.escape(label) + r"(?!\w)"
    return any(not _NEGATED.search(answer[: m.start()]) for m in re.finditer(pattern, answer))
