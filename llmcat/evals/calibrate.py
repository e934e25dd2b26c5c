"""Fit temperature scaling on a labelled run and save it for ``Classifier(calibration=FILE)``.

    python -m evals calibrate RUN_DIR [--out calibration.json] [--seed 0]

The fit uses every classification item of the run that has a confidence (correct = exact path).
Beside the in-sample ECE it prints a two-fold cross-validated ECE (fit on one half, measured on
the other), which is the figure to trust.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from llmcat.confidence.calibration import (
    TemperatureScaling,
    expected_calibration_error,
    scale_confidence,
)
from llmcat.config.flags import SubParsers
from llmcat.errors import ConfigError
from llmcat.evals.records import classification_samples, read_run


def cross_validated_ece(
    confidences: list[float], correct: list[bool], seed: int = 0
) -> tuple[float, float]:
    """(raw ECE, scaled ECE) on held-out halves: fit on one half, score the other, both ways."""
    order = list(range(len(confidences)))
    random.Random(seed).shuffle(order)
    halves = [order[::2], order[1::2]]
    raw: list[float] = []
    scaled: list[float] = []
    outcomes: list[bool] = []
    for fit_on, test_on in (halves, halves[::-1]):
        fitted = TemperatureScaling.fit(
            [confidences[i] for i in fit_on], [correct[i] for i in fit_on]
        )
        for i in test_on:
            raw.append(confidences[i])
            scaled.append(scale_confidence(confidences[i], fitted.temperature))
            outcomes.append(correct[i])
    return expected_calibration_error(raw, outcomes), expected_calibration_error(scaled, outcomes)


def run_calibrate(args: argparse.Namespace) -> int:
    _, samples = read_run(args.run)
    items = [
        s
        for s in classification_samples(samples)
        if s.output.confidence is not None and not s.scores.get("error")
    ]
    if len(items) < 10:
        raise ConfigError(
            f"{args.run} has {len(items)} classified items with a confidence; calibration needs "
            "at least 10 (a run with an LLM strategy on a labelled suite)"
        )
    confidences = [float(s.output.confidence or 0.0) for s in items]
    correct = [bool(s.scores.get("correct")) for s in items]
    first = items[0].output
    fitted = TemperatureScaling.fit(
        confidences,
        correct,
        strategy=first.strategy,
        model=first.model,
        prompt_version=first.prompt_version,
    )
    raw_cv, scaled_cv = cross_validated_ece(confidences, correct, args.seed)
    accuracy = sum(correct) / len(correct)
    mean_conf = sum(confidences) / len(confidences)
    print(
        f"{len(items)} items, strategy {fitted.strategy}, model {fitted.model}: accuracy "
        f"{accuracy:.3f}, mean confidence {mean_conf:.3f}\n"
        f"temperature {fitted.temperature:.3f}; ECE {fitted.ece_before:.3f} -> "
        f"{fitted.ece_after:.3f} in sample, {raw_cv:.3f} -> {scaled_cv:.3f} two-fold held out"
    )
    if args.out:
        fitted.save(args.out)
        print(f"written to {args.out}: llmcat classify --calibration {args.out} ...")
    return 0


def add_parser(sub: SubParsers) -> None:
    p = sub.add_parser(
        "calibrate", help="fit temperature scaling on a labelled run (for --calibration FILE)"
    )
    p.add_argument("run", type=Path, help="the --out folder of 'python -m evals run'")
    p.add_argument("--out", type=Path, help="write the fitted calibration here (JSON)")
    p.add_argument("--seed", type=int, default=0, help="seed of the two-fold split")
    p.set_defaults(func=run_calibrate)
