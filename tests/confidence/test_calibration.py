"""Temperature scaling: the fit, the transforms, the Classifier option and the evals command."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from llmcat import Classifier, ConfigError, FakeBackend, Settings
from llmcat.confidence.calibration import (
    TemperatureScaling,
    expected_calibration_error,
    fit_temperature,
    scale_confidence,
    scale_distribution,
)
from llmcat.evals.commands import main as evals_main
from tests.evals.test_eval_cli import FAST, scoring_backend


def overconfident_outcomes(
    n: int, temperature: float, seed: int = 0
) -> tuple[list[float], list[bool]]:
    """Outcomes drawn from true probabilities, reported with logits multiplied by ``temperature``."""
    rng = random.Random(seed)
    confidences, correct = [], []
    for _ in range(n):
        p = rng.uniform(0.05, 0.95)
        correct.append(rng.random() < p)
        logit = math.log(p / (1 - p)) * temperature
        confidences.append(1 / (1 + math.exp(-logit)))
    return confidences, correct


def test_fit_recovers_the_distortion_and_lowers_ece() -> None:
    confidences, correct = overconfident_outcomes(4000, temperature=2.0)
    fitted = TemperatureScaling.fit(confidences, correct)
    assert fitted.temperature == pytest.approx(2.0, rel=0.15)
    assert fitted.ece_after is not None and fitted.ece_before is not None
    assert fitted.ece_after < fitted.ece_before / 2
    timid, outcomes = overconfident_outcomes(4000, temperature=0.5, seed=1)
    assert fit_temperature(timid, outcomes) == pytest.approx(0.5, rel=0.15)


def test_transforms_keep_the_ranking_and_the_mass() -> None:
    assert scale_confidence(0.5, 3.0) == pytest.approx(0.5)
    assert scale_confidence(0.9, 2.0) < 0.9 < scale_confidence(0.9, 0.5)
    scaled = scale_distribution({"a": 0.7, "b": 0.2, "c": 0.1}, 2.0)
    assert sum(scaled.values()) == pytest.approx(1.0)
    assert scaled["a"] > scaled["b"] > scaled["c"] and scaled["a"] < 0.7
    assert expected_calibration_error([1.0, 1.0], [True, True]) == 0.0
    with pytest.raises(ConfigError):
        fit_temperature([], [])


def test_classifier_applies_a_saved_temperature(tmp_path: Path) -> None:
    backend = FakeBackend(choice_probabilities={"Shoes": 0.8, "Toys": 0.15, "Books": 0.05})
    settings = Settings(cache=False)
    raw = Classifier(["Shoes", "Toys", "Books"], backend=backend, settings=settings).classify("x")
    path = tmp_path / "calibration.json"
    TemperatureScaling(temperature=2.0, strategy="flat").save(path)
    calibrated = Classifier(
        ["Shoes", "Toys", "Books"], backend=backend, settings=settings, calibration=str(path)
    ).classify("x")
    assert raw.confidence is not None and calibrated.confidence is not None
    assert calibrated.path == raw.path
    assert calibrated.confidence == pytest.approx(scale_confidence(raw.confidence, 2.0))
    assert calibrated.confidence < raw.confidence
    assert [a.path for a in calibrated.alternatives] == [a.path for a in raw.alternatives]
    assert sum(a.probability for a in calibrated.alternatives) == pytest.approx(1.0)


def test_calibration_for_another_strategy_or_a_bad_file_is_a_config_error(tmp_path: Path) -> None:
    fitted = TemperatureScaling(temperature=1.5, strategy="hierarchical")
    with pytest.raises(ConfigError, match="fitted for the 'hierarchical' strategy"):
        Classifier(["a", "b"], backend=FakeBackend(), calibration=fitted)
    bad = tmp_path / "bad.json"
    bad.write_text('{"temperature": -1}')
    with pytest.raises(ConfigError, match="not a temperature-scaling file"):
        Classifier(["a", "b"], backend=FakeBackend(), calibration=str(bad))
    with pytest.raises(ConfigError, match="unknown calibration"):
        Classifier(["a", "b"], backend=FakeBackend(), calibration="platt")


def test_evals_calibrate_fits_and_saves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    argv = ["run", *FAST, "--limit", "40", "--out", str(out)]
    assert evals_main(argv, backend=scoring_backend()) == 0
    target = tmp_path / "calibration.json"
    assert evals_main(["calibrate", str(out), "--out", str(target)]) == 0
    saved = json.loads(target.read_text())
    assert saved["strategy"] == "flat" and saved["fitted_on"] == 40 and saved["temperature"] > 0
    assert "two-fold held out" in capsys.readouterr().out
    assert evals_main(["calibrate", str(tmp_path / "nothing")]) == 2
