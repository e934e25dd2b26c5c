"""The attribute-extraction benchmarks' scoring rule, and the value-list baseline. Pure.

Every (product, attribute of its category in the examples) is one answer, judged as (Brinkmann,
Shraga, Bizer; wbsg-uni-mannheim/wdc-pave ``pieutils/evaluation.py``):

- ``NN``: no gold value, no value given;   ``NV``: no gold value, a value given;
- ``VN``: a gold value, none given;        ``VC``: the value given is one of the gold values;
- ``VW``: another value given.

precision = VC / (NV + VC + VW), recall = VC / (VN + VC + VW), F1 their harmonic mean, summed
over answers (micro). Values match exactly after trimming; the case-insensitive variant also
folds case. An answer is right when it is ``VC`` or ``NN``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from llmcat.attributes.examples import AttributeExample
from llmcat.confidence.calibration import expected_calibration_error

KINDS = ("NN", "NV", "VN", "VC", "VW")
#: confidence thresholds of the review coverage table (below one: flagged)
REVIEW_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def _norm(value: str, fold_case: bool) -> str:
    trimmed = value.strip()
    return trimmed.casefold() if fold_case else trimmed


def judged(gold: Iterable[str], value: str | None, *, fold_case: bool = False) -> str:
    """``NN``, ``NV``, ``VN``, ``VC`` or ``VW`` for one answer (``gold``: the accepted values,
    none when the text states none; ``value``: the answer, None for none)."""
    accepted = {n for g in gold if (n := _norm(g, fold_case))}
    given = _norm(value, fold_case) if value is not None else ""
    if not accepted:
        return "NV" if given else "NN"
    if not given:
        return "VN"
    return "VC" if given in accepted else "VW"


@dataclass
class Counts:
    """Answers of each kind, and the micro precision, recall and F1 they give."""

    NN: int = 0
    NV: int = 0
    VN: int = 0
    VC: int = 0
    VW: int = 0

    def add(self, kind: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)

    @property
    def precision(self) -> float:
        given = self.NV + self.VC + self.VW
        return self.VC / given if given else 0.0

    @property
    def recall(self) -> float:
        gold = self.VN + self.VC + self.VW
        return self.VC / gold if gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            **{kind: getattr(self, kind) for kind in KINDS},
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


@dataclass(frozen=True)
class Answer:
    """One (product, attribute): the gold values, the value given and how sure
    (``confidence``, ``needs_review``: None for a method that does not say)."""

    product_id: str
    category: str
    attribute: str
    gold: tuple[str, ...]
    value: str | None
    confidence: float | None = None
    needs_review: bool | None = None

    def kind(self, *, fold_case: bool = False) -> str:
        return judged(self.gold, self.value, fold_case=fold_case)

    @property
    def right(self) -> bool:
        """The value is a gold one, or there is none and none was given (exact match)."""
        return self.kind() in ("VC", "NN")


def counted(answers: Iterable[Answer], *, fold_case: bool = False) -> Counts:
    """The answers' kinds, counted."""
    counts = Counts()
    for answer in answers:
        counts.add(answer.kind(fold_case=fold_case))
    return counts


def value_ece(answers: Sequence[Answer], bins: int = 10) -> float | None:
    """ECE of the confidences of the values given (right: ``VC``); None when no value has
    one."""
    scored = [a for a in answers if a.value is not None and a.confidence is not None]
    if not scored:
        return None
    return expected_calibration_error(
        [a.confidence or 0.0 for a in scored], [a.kind() == "VC" for a in scored], bins
    )


def answer_ece(answers: Sequence[Answer], bins: int = 10) -> float | None:
    """ECE over every answer, a "no value" included (its confidence: the chance there is
    none; right: ``NN``)."""
    scored = [a for a in answers if a.confidence is not None]
    if not scored:
        return None
    return expected_calibration_error(
        [a.confidence or 0.0 for a in scored], [a.right for a in scored], bins
    )


def _share(items: Sequence[Answer], test: Callable[[Answer], bool]) -> float | None:
    return sum(map(test, items)) / len(items) if items else None


def _below(threshold: float) -> Callable[[Answer], bool]:
    return lambda a: (a.confidence or 0.0) < threshold


def review_coverage(
    answers: Sequence[Answer], thresholds: Sequence[float] = REVIEW_THRESHOLDS
) -> list[dict[str, float | None]]:
    """What flagging buys: first the ``needs_review`` flag as the run set it, then a flag at
    each confidence threshold; per row, over every answer and over the values given: the share
    flagged, the accuracy of the rest and of the flagged. Empty when no answer has a
    confidence."""
    known = [a for a in answers if a.confidence is not None]
    if not known:
        return []
    rules: list[tuple[float | None, Callable[[Answer], bool]]] = [
        (None, lambda a: bool(a.needs_review))
    ]
    rules += [(t, _below(t)) for t in thresholds]
    rows = []
    for threshold, flagged in rules:
        row: dict[str, float | None] = {"threshold": threshold}
        for scope, items in (
            ("answers", known),
            ("values", [a for a in known if a.value is not None]),
        ):
            kept = [a for a in items if not flagged(a)]
            out = [a for a in items if flagged(a)]
            row[f"{scope}_flagged"] = _share(items, flagged)
            row[f"{scope}_kept_accuracy"] = _share(kept, lambda a: a.right)
            row[f"{scope}_flagged_accuracy"] = _share(out, lambda a: a.right)
        rows.append(row)
    return rows


def reliability_bins(answers: Sequence[Answer], bins: int = 10) -> list[dict[str, float]]:
    """Per confidence bin of the values given: mean confidence, share right, count (the
    shape ``plots.reliability`` draws)."""
    scored = [a for a in answers if a.value is not None and a.confidence is not None]
    rows = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [
            a
            for a in scored
            if lo < (a.confidence or 0.0) <= hi or (b == 0 and a.confidence == 0.0)
        ]
        if members:
            rows.append(
                {
                    "low": lo,
                    "high": hi,
                    "confidence": sum(a.confidence or 0.0 for a in members) / len(members),
                    "accuracy": sum(a.kind() == "VC" for a in members) / len(members),
                    "count": float(len(members)),
                }
            )
    return rows


def _grouped(
    answers: Sequence[Answer], key: Callable[[Answer], str]
) -> dict[str, dict[str, float]]:
    groups: dict[str, list[Answer]] = {}
    for answer in answers:
        groups.setdefault(key(answer), []).append(answer)
    return {
        name: {
            **counted(members).as_dict(),
            "f1_case_insensitive": counted(members, fold_case=True).f1,
        }
        for name, members in sorted(groups.items())
    }


def scores(answers: Sequence[Answer]) -> dict[str, object]:
    """One method's figures: the counts and micro P/R/F1 exact and case-insensitive, per
    attribute and per category, both ECEs, and the review coverage."""
    flags = [a.needs_review for a in answers if a.needs_review is not None]
    return {
        "answers": len(answers),
        "exact": counted(answers).as_dict(),
        "case_insensitive": counted(answers, fold_case=True).as_dict(),
        "per_attribute": _grouped(answers, lambda a: a.attribute),
        "per_category": _grouped(answers, lambda a: a.category),
        "ece": value_ece(answers),
        "ece_every_answer": answer_ece(answers),
        "flagged": sum(flags) / len(flags) if flags else None,
        "review_coverage": review_coverage(answers),
    }


@dataclass
class ValueList:
    """The baseline: per (category, attribute) every value of the examples; a product's answer
    is the longest of them found in its text (a plain substring, as written; ties: the first
    in sorted order)."""

    known: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    @classmethod
    def learned(cls, examples: Iterable[AttributeExample]) -> ValueList:
        found: dict[tuple[str, str], set[str]] = {}
        for example in examples:
            for name, values in example.values.items():
                found.setdefault((example.category, name), set()).update(
                    v for v in values if v.strip()
                )
        return cls({key: sorted(vs, key=lambda v: (-len(v), v)) for key, vs in found.items()})

    def answer(self, texts: Sequence[str], category: str, attribute: str) -> str | None:
        """The longest known value of ``attribute`` in ``category`` that one of ``texts``
        holds, or None."""
        for value in self.known.get((category, attribute), ()):
            if any(value in text for text in texts):
                return value
        return None

    def answers(
        self, texts: Sequence[str], category: str, names: Sequence[str]
    ) -> Mapping[str, str | None]:
        return {name: self.answer(texts, category, name) for name in names}


__all__ = [
    "KINDS",
    "REVIEW_THRESHOLDS",
    "Answer",
    "Counts",
    "ValueList",
    "answer_ece",
    "counted",
    "judged",
    "reliability_bins",
    "review_coverage",
    "scores",
    "value_ece",
]
