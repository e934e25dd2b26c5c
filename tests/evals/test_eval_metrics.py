"""Metrics against hand-computed values and reference implementations (scikit-learn, scipy)."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from scipy import stats as sps
from sklearn.metrics import f1_score

from llmcat.evals import metrics as M
from llmcat.evals.stats import mcnemar_exact, paired_bootstrap

Out = M.Outcome
ITEMS = [
    Out(("A", "B", "C"), ("A", "B", "C"), 0.9),  # right
    Out(("A", "B", "C"), ("A", "B", "D"), 0.8),  # right to level 2
    Out(("A", "E"), ("A", "B", "C"), 0.6),  # right at level 1
    Out(("F",), ("G",), 0.3),  # wrong
    Out(("F",), None, None, error=True),  # failed
]


def test_accuracy_and_levels_by_hand() -> None:
    assert M.accuracy(ITEMS) == pytest.approx(1 / 5)
    assert M.accuracy_per_level(ITEMS) == pytest.approx(
        {"level_1": 3 / 5, "level_2": 2 / 3, "level_3": 1 / 2}
    )


def test_hierarchical_f1_by_hand_and_by_reference() -> None:
    # overlaps 3+2+1+0+0 = 6; predicted sets 3+3+3+1+0 = 10; gold sets 3+3+2+1+1 = 10
    hp, hr, hf = M.hierarchical_prf(ITEMS)
    assert (hp, hr, hf) == pytest.approx((0.6, 0.6, 0.6))

    def reference(items: list[M.Outcome]) -> float:
        # Kiritchenko: augment each label with its ancestors, micro-average over items
        inter = pred = gold = 0
        for o in items:
            g = {"/".join(o.gold[:i]) for i in range(1, len(o.gold) + 1)}
            p = {"/".join(o.pred[:i]) for i in range(1, len(o.pred) + 1)} if o.pred else set()
            inter, pred, gold = inter + len(g & p), pred + len(p), gold + len(g)
        precision, recall = inter / pred, inter / gold
        return 2 * precision * recall / (precision + recall)

    rng = random.Random(1)
    tree = [("A",), ("A", "B"), ("A", "B", "C"), ("A", "D"), ("E",), ("E", "F"), ("E", "F", "G")]
    for _ in range(20):
        items = [Out(rng.choice(tree), rng.choice([*tree, None])) for _ in range(30)]  # type: ignore[list-item]
        assert M.hierarchical_prf(items)[2] == pytest.approx(reference(items))


def test_macro_and_weighted_f1_match_scikit_learn() -> None:
    rng = random.Random(7)
    labels = [("a",), ("b",), ("c",), ("d",)]
    for _ in range(20):
        items = [Out(rng.choice(labels), rng.choice([*labels, None])) for _ in range(40)]  # type: ignore[list-item]
        y_true = [" > ".join(o.gold) for o in items]
        y_pred = [" > ".join(o.pred) if o.pred else M.NO_PREDICTION for o in items]
        assert M.macro_f1(items) == pytest.approx(
            f1_score(y_true, y_pred, average="macro", zero_division=0)
        )
        assert M.weighted_f1(items) == pytest.approx(
            f1_score(y_true, y_pred, average="weighted", zero_division=0)
        )


def test_expected_calibration_error_by_hand() -> None:
    items = [
        Out(("A",), ("A",), 0.95),
        Out(("A",), ("B",), 0.95),
        Out(("A",), ("A",), 0.55),
        Out(("A",), ("A",), 0.55),
    ]
    # bin (0.9,1]: acc 0.5 conf 0.95 -> 0.45 * 2/4; bin (0.5,0.6]: acc 1 conf 0.55 -> 0.45 * 2/4
    assert M.ece_of(items) == pytest.approx(0.45)
    assert M.ece_of([Out(("A",), ("A",))]) is None


def test_accuracy_vs_coverage() -> None:
    rows = M.accuracy_vs_coverage(ITEMS, steps=4)
    assert rows[0] == {"coverage": 0.25, "accuracy": 1.0, "threshold": 0.9}
    assert rows[-1]["coverage"] == 1.0 and rows[-1]["accuracy"] == pytest.approx(1 / 4)


def test_mcnemar_matches_scipy_binomtest() -> None:
    # Beyond 1,023 discordant pairs 2**n no longer fits a float: large runs too.
    for b, c in [(0, 0), (1, 0), (3, 7), (10, 2), (20, 0), (15, 15), (600, 900), (5000, 5100)]:
        expected = 1.0 if b + c == 0 else sps.binomtest(b, b + c, 0.5).pvalue
        assert mcnemar_exact(b, c) == pytest.approx(expected)


def test_paired_bootstrap_matches_scipy() -> None:
    rng = random.Random(3)
    a = [float(rng.random() < 0.6) for _ in range(300)]
    b = [float(rng.random() < 0.5) for _ in range(300)]

    def mean(xs):  # type: ignore[no-untyped-def]
        return sum(xs) / len(xs)

    ours = paired_bootstrap(mean, a, b, resamples=4000, seed=0)
    ref = sps.bootstrap(
        (a, b),
        lambda x, y: y.mean() - x.mean(),
        paired=True,
        vectorized=False,
        method="percentile",
        n_resamples=4000,
        random_state=0,
    ).confidence_interval
    assert ours.difference == pytest.approx(mean(b) - mean(a))
    assert ours.low == pytest.approx(ref.low, abs=0.015) and ours.high == pytest.approx(
        ref.high, abs=0.015
    )
    assert ours.p_drop < 0.05  # b is truly worse here


def test_flipkart_parsers() -> None:
    from llmcat.evals.flipkart import category_path, parse_specifications

    specs = '{"product_specification"=>[{"key"=>"Brand", "value"=>"Elegance"}, {"key"=>"Length", "value"=>"213 cm"}, {"value"=>"loose"}]}'
    assert parse_specifications(specs) == {"Brand": "Elegance", "Length": "213 cm"}
    assert category_path(
        '["Home Furnishing >> Curtains >> Curtains >> Elegance Polyester Do..."]'
    ) == ["Home Furnishing", "Curtains", "Curtains"]
    assert category_path('["Watches >> Wrist Watches"]') == ["Watches", "Wrist Watches"]


def test_a_run_without_scikit_learn_stops_before_it_starts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from llmcat.backends.fake import FakeBackend
    from llmcat.evals.commands import main

    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn now raises ImportError
    monkeypatch.setitem(sys.modules, "sklearn.metrics", None)
    backend = FakeBackend()
    code = main(
        ["run", "--suite", "golden", "--limit", "3", "--out", str(tmp_path)], backend=backend
    )
    assert code == 2 and backend.requests == [] and not (tmp_path / "run.json").exists()
    assert "pip install 'llmcat[evals]'" in capsys.readouterr().err
