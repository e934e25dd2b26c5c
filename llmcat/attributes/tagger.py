"""A span tagger learned from labelled products: which run of the text is each attribute's
value, with a calibrated chance that it is right.

For every (product, attribute) the candidates are the runs of its text (``spans``); a logistic
regression over hashed features (the words, their neighbours, shape, place, and how often the
run was this attribute's value in the other examples) scores each, and the best one is the
answer. While learning, a product's "known value" counts come from the examples of the other
folds, so the model learns how far to trust a known value from examples it has not seen, as at
run time.

How sure: the tagger is fitted again on ``CALIBRATION_FOLDS`` folds and scores the fold left
out. On those held-out answers two one-feature logistic fits (Platt scaling) turn the best
score into the chance the value is right and the chance the text states none, and the score
above which a value beats no value is the one with the best micro F1 (the benchmark's rule).
Every constant here comes from the caller's examples; none was set on a benchmark.

scikit-learn fits (the ``local`` extra); scoring is numpy alone.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from llmcat.attributes.examples import AttributeExample, completed
from llmcat.attributes.spans import FEATURE_BITS, Span, columns, run_features
from llmcat.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

#: written into saved taggers: a tagger saved by another version is learned again
TAGGER_VERSION = 3
#: folds whose known-value counts exclude a training product's own values
KNOWN_FOLDS = 5
#: folds of the held-out answers that calibrate the scores
CALIBRATION_FOLDS = 3
#: share of candidate runs, neither a gold value nor a known one, that training keeps (each
#: weighted by the inverse): measured on OA-Mine's train folds to change F1 by < 0.005 and to
#: take a third of the time
NEGATIVE_SHARE = 0.25
#: inverse regularisation of the logistic regression
REGULARISATION = 1.0
#: alternatives kept beside an answer
ALTERNATIVES = 3
#: best runs kept per attribute: joint decoding weighs 10, and the alternatives skip repeats
KEEP = 30


@dataclass(frozen=True)
class Scored:
    """A candidate value with its raw tagger score (0-1)."""

    span: Span
    score: float


@dataclass(frozen=True)
class Platt:
    """``1 / (1 + exp(-(a * logit(score) + b)))``."""

    a: float = 1.0
    b: float = 0.0

    def __call__(self, score: float) -> float:
        clipped = min(max(score, 1e-6), 1 - 1e-6)
        z = self.a * math.log(clipped / (1 - clipped)) + self.b
        return 1 / (1 + math.exp(-z)) if z > -30 else 0.0


@dataclass(frozen=True)
class Calibration:
    """How a best score becomes an answer: a value above ``threshold``; the chance it is
    right (``value``) and the chance the text states none (``none``)."""

    threshold: float = 0.5
    value: Platt = field(default_factory=Platt)
    none: Platt = field(default_factory=lambda: Platt(-1.0, 0.0))
    held_out_f1: float | None = None


def _known_counts(
    examples: Iterable[tuple[int, AttributeExample]], folds: int
) -> list[dict[tuple[str, str], Counter[str]]]:
    """Per fold, lower-cased value counts per (category, attribute) of the other folds'
    examples (fold ``folds``: all of them)."""
    counts: list[dict[tuple[str, str], Counter[str]]] = [
        defaultdict(Counter) for _ in range(folds + 1)
    ]
    for index, example in examples:
        for name, values in example.values.items():
            for value in values:
                for fold in range(folds + 1):
                    if fold == folds or index % folds != fold:
                        counts[fold][(example.category, name)][value.lower()] += 1
    return counts


def _wanted(accepted: Collection[str], seen: Mapping[str, int]) -> Callable[[str], bool]:
    """Which runs past ``READ_CHARS`` are candidates: the accepted values (learning) and the
    known ones."""

    def wanted(run: str) -> bool:
        return run in accepted or run.lower() in seen

    return wanted


def _fields(example_title: str, description: str) -> list[tuple[str, str]]:
    return [
        (name, text)
        for name, text in (("title", example_title), ("description", description))
        if text
    ]


class SpanTagger:
    """Scores the runs of a product's text as each attribute's value (see the module)."""

    def __init__(
        self,
        weights: NDArray[np.float64],
        bias: float,
        known: Mapping[tuple[str, str], Mapping[str, int]],
        calibration: Calibration | None = None,
    ) -> None:
        self.weights = weights
        self.bias = bias
        self.known = known
        self.calibration = calibration or Calibration()

    @classmethod
    def trained(
        cls,
        examples: Sequence[AttributeExample],
        *,
        calibrate: bool = True,
        seed: int = 0,
        fitted: Callable[[], object] | None = None,
    ) -> SpanTagger:
        """Fitted on ``examples`` (and calibrated on held-out folds of them); ``fitted`` is
        called after each of the ``fits(examples)`` model fits (a progress bar)."""
        labelled = completed(e for e in examples if e.values)
        if len(labelled) < 2:
            raise ConfigError("learning attribute values needs at least 2 labelled examples")
        tagger = cls._fitted(labelled, seed)
        if fitted is not None:
            fitted()
        if calibrate and len(labelled) >= 3 * CALIBRATION_FOLDS:
            tagger.calibration = _calibrated(labelled, seed, fitted)
        return tagger

    @staticmethod
    def fits(examples: Sequence[AttributeExample], *, calibrate: bool = True) -> int:
        """How many model fits ``trained`` makes."""
        return 1 + (
            CALIBRATION_FOLDS if calibrate and len(examples) >= 3 * CALIBRATION_FOLDS else 0
        )

    @classmethod
    def _fitted(cls, examples: Sequence[AttributeExample], seed: int) -> SpanTagger:
        import numpy as np
        from scipy.sparse import csr_matrix
        from sklearn.linear_model import LogisticRegression

        folds = _known_counts(enumerate(examples), KNOWN_FOLDS)
        rng = random.Random(seed)
        blocks: list[NDArray[np.int64]] = []
        labels: list[int] = []
        weights: list[float] = []
        for index, example in enumerate(examples):
            known = folds[index % KNOWN_FOLDS]
            for field_name, text in _fields(example.title, example.description):
                for name, gold in example.values.items():
                    seen: Mapping[str, int] = known.get((example.category, name), {})
                    accepted = set(gold)
                    runs = run_features(text, field_name, wanted=_wanted(accepted, seen))
                    kept: list[int] = []
                    for row, span in enumerate(runs.spans):
                        right = span.text in accepted
                        familiar = runs.lowered[row] in seen
                        if not right and not familiar and rng.random() > NEGATIVE_SHARE:
                            continue
                        kept.append(row)
                        labels.append(int(right))
                        weights.append(1.0 if right or familiar else 1 / NEGATIVE_SHARE)
                    if kept:
                        blocks.append(columns(runs, example.category, name, seen)[kept])
        if not any(labels) or all(labels):
            raise ConfigError(
                "the examples' values never (or always) occur in their text: nothing to learn"
            )
        table = np.vstack(blocks)
        rows = np.repeat(np.arange(len(table)), table.shape[1])
        flat = table.ravel()
        present = flat != 1 << FEATURE_BITS
        # Only the columns some row uses: the solver's work follows the features seen, not
        # the 2**20 hashed space (an unused column's weight is 0 at the optimum anyway).
        used, compact = np.unique(flat[present], return_inverse=True)
        matrix = csr_matrix(
            (np.ones(int(present.sum())), (rows[present], compact)),
            shape=(len(labels), len(used)),
        )
        model = LogisticRegression(C=REGULARISATION, max_iter=3000)
        model.fit(matrix, np.asarray(labels), sample_weight=np.asarray(weights))
        weights_of = np.zeros((1 << FEATURE_BITS) + 1)
        weights_of[used] = model.coef_[0]
        known_all = {key: dict(counter) for key, counter in folds[KNOWN_FOLDS].items()}
        return cls(weights_of, float(model.intercept_[0]), known_all)

    def save(self, path: Path) -> None:
        """Write the tagger to ``path`` (JSON: the non-zero weights, the known values and the
        calibration), atomically."""
        import numpy as np

        nonzero = np.flatnonzero(self.weights)
        record = {
            "version": TAGGER_VERSION,
            "bias": self.bias,
            "columns": nonzero.tolist(),
            "weights": self.weights[nonzero].tolist(),
            "known": [[c, a, dict(v)] for (c, a), v in self.known.items()],
            "calibration": asdict(self.calibration),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.partial")
        partial.write_text(json.dumps(record), encoding="utf-8")
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> SpanTagger | None:
        """A tagger ``save`` wrote (None when the file is missing, unreadable or older)."""
        import numpy as np

        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if record.get("version") != TAGGER_VERSION:
                return None
            weights = np.zeros((1 << FEATURE_BITS) + 1)  # the last: "no feature", always 0
            weights[np.asarray(record["columns"], dtype=np.int64)] = record["weights"]
            known = {(c, a): dict(v) for c, a, v in record["known"]}
            given = record["calibration"]
            calibration = Calibration(
                threshold=float(given["threshold"]),
                value=Platt(**given["value"]),
                none=Platt(**given["none"]),
                held_out_f1=given["held_out_f1"],
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return cls(weights, float(record["bias"]), known, calibration)

    def scored(
        self,
        fields: Sequence[tuple[str, str]],
        category: str,
        attribute: str,
        keep: int = KEEP,
    ) -> list[Scored]:
        """The ``keep`` best candidate runs of the ``(field, text)`` pairs as ``attribute``'s
        value, best first (ties: the title first, then the earlier run)."""
        import numpy as np

        seen = self.known.get((category, attribute), {})
        spans: list[Span] = []
        scores = []
        for field_name, text in fields:
            runs = run_features(text, field_name, wanted=lambda run: run.lower() in seen)
            if runs.spans:
                z = self.bias + self.weights[columns(runs, category, attribute, seen)].sum(1)
                scores.append(1 / (1 + np.exp(-np.maximum(z, -30.0))))
                spans.extend(runs.spans)
        if not spans:
            return []
        score = np.concatenate(scores)
        order = np.lexsort(
            (
                np.asarray([s.start for s in spans]),
                np.asarray([s.field != "title" for s in spans]),
                -score,
            )
        )[:keep]
        return [Scored(spans[i], float(score[i])) for i in order]


#: candidates per attribute that joint decoding weighs
JOINT_CANDIDATES = 10


def decoded(ranked: Mapping[str, Sequence[Scored]], threshold: float) -> dict[str, Scored]:
    """One value per attribute, jointly: the best-scored (attribute, run) pairs above
    ``threshold`` first, each attribute once and no two values on overlapping characters
    (``Men's`` is the gender, so not also part of the model name). Measured on OA-Mine's test
    with the tagger learned from its train: micro F1 +0.01 against each attribute alone."""
    pool = [
        (candidate.score, name, candidate)
        for name, candidates in ranked.items()
        for candidate in candidates[:JOINT_CANDIDATES]
        if candidate.score >= threshold
    ]
    pool.sort(key=lambda entry: -entry[0])
    chosen: dict[str, Scored] = {}
    taken: list[Span] = []
    for _, name, candidate in pool:
        span = candidate.span
        if name in chosen or any(
            t.field == span.field and span.start < t.end and t.start < span.end for t in taken
        ):
            continue
        chosen[name] = candidate
        taken.append(span)
    return chosen


def _calibrated(
    examples: Sequence[AttributeExample], seed: int, fitted: Callable[[], object] | None = None
) -> Calibration:
    """Held-out folds, decoded jointly -> the threshold with the best micro F1, and two Platt
    fits: a chosen value's score -> right; the best score -> the text states no value."""
    held_out: list[tuple[AttributeExample, dict[str, list[Scored]]]] = []
    for fold in range(CALIBRATION_FOLDS):
        train = [e for i, e in enumerate(examples) if i % CALIBRATION_FOLDS != fold]
        tagger = SpanTagger._fitted(train, seed)
        if fitted is not None:
            fitted()
        for example in examples[fold::CALIBRATION_FOLDS]:
            fields = _fields(example.title, example.description)
            ranked = {
                name: tagger.scored(fields, example.category, name) for name in example.values
            }
            held_out.append((example, ranked))
    best_scores = sorted(
        {round(r[0].score, 3) for _, ranked in held_out for r in ranked.values() if r}
    )
    grid = best_scores[:: max(1, len(best_scores) // THRESHOLD_STEPS)] or [0.5]
    threshold, f1 = max(((t, _joint_f1(held_out, t)) for t in grid), key=lambda p: p[1])
    chosen_pairs: list[tuple[float, bool]] = []
    none_pairs: list[tuple[float, bool]] = []
    for example, ranked in held_out:
        chosen = decoded(ranked, threshold)
        for name, candidates in ranked.items():
            gold = example.values[name]
            none_pairs.append((candidates[0].score if candidates else 0.0, not gold))
            if name in chosen:
                chosen_pairs.append((chosen[name].score, chosen[name].span.text in gold))
    return Calibration(
        threshold=threshold,
        value=_platt(chosen_pairs),
        none=_platt(none_pairs),
        held_out_f1=f1,
    )


#: thresholds tried when calibrating (quantiles of the held-out best scores)
THRESHOLD_STEPS = 60


def _joint_f1(
    held_out: Sequence[tuple[AttributeExample, Mapping[str, Sequence[Scored]]]], threshold: float
) -> float:
    """Micro F1 (the benchmark's rule) of the jointly decoded answers at ``threshold``."""
    right = given = gold = 0
    for example, ranked in held_out:
        chosen = decoded(ranked, threshold)
        given += len(chosen)
        gold += sum(1 for values in example.values.values() if values)
        right += sum(1 for name, c in chosen.items() if c.span.text in example.values[name])
    precision = right / given if given else 0.0
    recall = right / gold if gold else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _platt(pairs: Sequence[tuple[float, bool]]) -> Platt:
    """A one-feature logistic fit of the outcome on the score's logit, with Platt's smoothed
    targets ((N+ + 1) / (N+ + 2) for a right answer, 1 / (N- + 2) for a wrong one): a few
    held-out answers that were all right give a high confidence, never a certain one."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    if not pairs:
        return Platt()
    outcomes = np.asarray([o for _, o in pairs], dtype=bool)
    right, wrong = int(outcomes.sum()), int((~outcomes).sum())
    target = np.where(outcomes, (right + 1) / (right + 2), 1 / (wrong + 2))
    scores = np.clip(np.asarray([s for s, _ in pairs]), 1e-6, 1 - 1e-6)
    logits = np.log(scores / (1 - scores)).reshape(-1, 1)
    # Soft targets as weighted copies: each answer is right with weight t, wrong with 1 - t.
    fit = LogisticRegression(C=100.0).fit(
        np.vstack([logits, logits]),
        np.concatenate([np.ones(len(pairs)), np.zeros(len(pairs))]),
        sample_weight=np.concatenate([target, 1 - target]),
    )
    return Platt(float(fit.coef_[0][0]), float(fit.intercept_[0]))


__all__ = [
    "ALTERNATIVES",
    "JOINT_CANDIDATES",
    "Calibration",
    "Platt",
    "Scored",
    "SpanTagger",
    "decoded",
]
