"""A span tagger learned from labelled products: which run of the text is each attribute's
value, with a calibrated chance that it is right.

For every (product, attribute) the candidates are the runs of its text (``spans``) and "no
value". A linear model over hashed features (the words, their neighbours, shape, place, and how
often the run was this attribute's value in the other examples) scores each, and a softmax over
the product's candidates is the chance that each one is the answer: the candidates compete, so
the model learns where a value ends (``Persil`` against ``Persil ProClean``), not only what a
value looks like. It is fitted by maximising the likelihood of the right candidates (any of the
runs that read a gold value; "no value" where none does); past ``MAX_TRAINING_RUNS`` a sample
of the other runs stands for all of them. While learning, a product's "known value" counts come from
the examples of the other folds, so the model learns how far to trust a known value from
examples it has not seen, as at run time.

How sure: the tagger is fitted again on ``CALIBRATION_FOLDS`` folds and scores the fold left
out. On those held-out answers two one-feature logistic fits (Platt scaling) turn the best
score into the chance the value is right and the chance the text states none, and the score
above which a value beats no value is the one with the best micro F1 (the benchmark's rule).
Every constant here comes from the caller's examples or was chosen on OA-Mine's train folds
(the softmax against a run-by-run logistic regression: held-out F1 0.714 against 0.698).

scipy and scikit-learn fit (the ``local`` extra); scoring is numpy alone.
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
from llmcat.attributes.spans import (
    FEATURE_BITS,
    Span,
    candidate_spans,
    columns,
    none_columns,
    run_features,
)
from llmcat.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from scipy.sparse import csr_matrix

#: written into saved taggers: a tagger saved by another version is learned again
TAGGER_VERSION = 4
#: folds whose known-value counts exclude a training product's own values
KNOWN_FOLDS = 5
#: folds of the held-out answers that calibrate the scores
CALIBRATION_FOLDS = 3
#: candidate runs a fit reads at most (about 1 KB of memory each). Past it, a share of the runs
#: that are neither a gold value nor a known one is kept, each standing for the others through
#: an offset in the softmax. On OA-Mine's train folds every run against a quarter: held-out F1
#: 0.723 against 0.714 (learning 123 s against 55 s)
MAX_TRAINING_RUNS = 1_000_000
#: weight of the likelihood against the squared weights (C of a logistic regression); 1
#: against 3 on OA-Mine's train folds: held-out F1 0.714 and 0.713
REGULARISATION = 1.0
#: L-BFGS iterations at most
MAX_ITERATIONS = 500
#: L-BFGS stops when an iteration improves the objective by less than this share: on OA-Mine's
#: train folds 1e-5, 1e-6 and scipy's 2.2e-9 all gave held-out F1 0.714; learning took 55, 72
#: and 131 s
TOLERANCE = 1e-5
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
        known: Mapping[tuple[str, str], Mapping[str, int]],
        calibration: Calibration | None = None,
    ) -> None:
        self.weights = weights
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

        folds = _known_counts(enumerate(examples), KNOWN_FOLDS)
        rng = random.Random(seed)
        share = _negative_share(examples)
        penalty = math.log(1 / share)
        blocks: list[NDArray[np.int64]] = []
        offsets: list[float] = []
        right: list[bool] = []
        starts: list[int] = []
        for index, example in enumerate(examples):
            known = folds[index % KNOWN_FOLDS]
            fields = _fields(example.title, example.description)
            for name, gold in example.values.items():
                seen: Mapping[str, int] = known.get((example.category, name), {})
                accepted = set(gold)
                starts.append(len(right))
                for field_name, text in fields:
                    runs = run_features(text, field_name, wanted=_wanted(accepted, seen))
                    kept: list[int] = []
                    for row, span in enumerate(runs.spans):
                        is_value = span.text in accepted
                        familiar = runs.lowered[row] in seen
                        if not is_value and not familiar and share < 1 and rng.random() > share:
                            continue
                        kept.append(row)
                        right.append(is_value)
                        offsets.append(0.0 if is_value or familiar else penalty)
                    if kept:
                        blocks.append(columns(runs, example.category, name, seen)[kept])
                # "No value" is right when no run reads a gold value (none, or one the text
                # does not state as written).
                blocks.append(none_columns(example.category, name))
                right.append(not any(right[starts[-1] :]))
                offsets.append(0.0)
        if all(right[i] for i in _none_rows(starts, len(right))):
            raise ConfigError(
                "the examples' values never occur in their text as written: nothing to learn"
            )
        table = np.vstack(blocks).astype(np.int32)
        del blocks
        present = table != 1 << FEATURE_BITS
        indptr = np.zeros(len(table) + 1, dtype=np.int64)
        np.cumsum(present.sum(1), out=indptr[1:])
        # Only the columns some row uses: the solver's work follows the features seen, not
        # the 2**20 hashed space (an unused column's weight is 0 at the optimum anyway). A
        # feature twice in a row counts twice, as when scoring.
        used, compact = np.unique(table[present], return_inverse=True)
        shape = (len(table), len(used))
        del table, present
        matrix = csr_matrix((np.ones(len(compact)), compact.astype(np.int32), indptr), shape=shape)
        weights_of = np.zeros((1 << FEATURE_BITS) + 1)  # the last: "no feature", always 0
        weights_of[used] = _softmax_fit(
            matrix, np.asarray(starts), np.asarray(offsets), np.asarray(right)
        )
        known_all = {key: dict(counter) for key, counter in folds[KNOWN_FOLDS].items()}
        return cls(weights_of, known_all)

    def save(self, path: Path) -> None:
        """Write the tagger to ``path`` (JSON: the non-zero weights, the known values and the
        calibration), atomically."""
        import numpy as np

        nonzero = np.flatnonzero(self.weights)
        record = {
            "version": TAGGER_VERSION,
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
        return cls(weights, known, calibration)

    def scored(
        self,
        fields: Sequence[tuple[str, str]],
        category: str,
        attribute: str,
        keep: int = KEEP,
    ) -> list[Scored]:
        """The ``keep`` best candidate runs of the ``(field, text)`` pairs as ``attribute``'s
        value, best first (ties: the title first, then the earlier run); a run's score is its
        share of the softmax over every run and "no value"."""
        import numpy as np

        seen = self.known.get((category, attribute), {})
        spans: list[Span] = []
        logits = [self.weights[none_columns(category, attribute)].sum(1)]
        for field_name, text in fields:
            runs = run_features(text, field_name, wanted=lambda run: run.lower() in seen)
            if runs.spans:
                logits.append(self.weights[columns(runs, category, attribute, seen)].sum(1))
                spans.extend(runs.spans)
        if not spans:
            return []
        z = np.concatenate(logits)
        shares = np.exp(z - z.max())
        score = (shares / shares.sum())[1:]
        order = np.lexsort(
            (
                np.asarray([s.start for s in spans]),
                np.asarray([s.field != "title" for s in spans]),
                -score,
            )
        )[:keep]
        return [Scored(spans[i], float(score[i])) for i in order]


def _negative_share(examples: Sequence[AttributeExample]) -> float:
    """The share of plain runs a fit keeps: all of them up to ``MAX_TRAINING_RUNS``."""
    total = sum(
        len(example.values) * len(candidate_spans(text, field_name))
        for example in examples
        for field_name, text in _fields(example.title, example.description)
    )
    return min(1.0, MAX_TRAINING_RUNS / max(total, 1))


def _none_rows(starts: Sequence[int], rows: int) -> list[int]:
    """The "no value" rows: the last of each group."""
    return [end - 1 for end in [*starts[1:], rows]]


def _softmax_fit(
    matrix: csr_matrix,
    starts: NDArray[np.int64],
    offsets: NDArray[np.float64],
    right: NDArray[np.bool_],
) -> NDArray[np.float64]:
    """Weights that maximise, over the groups of rows starting at ``starts``, the log of the
    softmax share of the group's right rows (a row's logit: its features' weights plus its
    ``offset``, the log of how many runs it stands for), less the squared weights / 2C."""
    import numpy as np
    from scipy.optimize import minimize

    sizes = np.diff(np.append(starts, matrix.shape[0]))
    transposed = matrix.T.tocsr()

    def objective(weights: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        z = matrix @ weights + offsets
        z = z - np.repeat(np.maximum.reduceat(z, starts), sizes)
        shares = np.exp(z)
        chosen = np.where(right, shares, 0.0)
        total, total_right = np.add.reduceat(shares, starts), np.add.reduceat(chosen, starts)
        loss = float(np.sum(np.log(total) - np.log(total_right)))
        residual = shares / np.repeat(total, sizes) - chosen / np.repeat(total_right, sizes)
        gradient = REGULARISATION * (transposed @ residual) + weights
        return REGULARISATION * loss + 0.5 * float(weights @ weights), gradient

    fit = minimize(
        objective,
        np.zeros(matrix.shape[1]),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": MAX_ITERATIONS, "ftol": TOLERANCE},
    )
    solved: NDArray[np.float64] = fit.x
    return solved


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
