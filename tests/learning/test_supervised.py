"""The supervised head and the fusion of every expert with examples: the head learns what zero-shot
cannot, is saved with its configuration and reloaded; the fused shortlist unions its candidates,
fits its weights on the examples by cross-validation (cached) and keeps a single expert when the
measurement says the fusion is worse."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmcat import Classifier, ConfigError, FakeBackend, HashingEmbedder, Product, Taxonomy
from llmcat.confidence.trust import TrustFit, neutral
from llmcat.learning.logistic import C_GRID, DEFAULT_C, SupervisedHead, choose_c
from llmcat.strategies.experts import expert_accuracy, fit_on_examples
from tests.learning.test_examples import products

# The opaque codes of test_examples, plus K-505 that has no examples: only its name can win it.
CODES = Taxonomy.from_labels(["K-101", "K-202", "K-303", "K-404", "K-505"])


def accuracy(clf: Classifier, test: list[tuple[Product, str]]) -> float:
    results = clf.classify_many([p for p, _ in test])
    return sum(r.path == [c] for r, (_, c) in zip(results, test, strict=True)) / len(test)


def common(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "backend": FakeBackend(),
        "embedder": HashingEmbedder(),
        "cache_dir": tmp_path / "cache",
        **extra,
    }


def test_the_supervised_head_learns_what_zero_shot_cannot(tmp_path: Path) -> None:
    pool, test = products(80, seed=1), products(60, seed=2)
    examples = [(p, [c]) for p, c in pool]
    head = Classifier(CODES, strategy="supervised", examples=examples, **common(tmp_path))
    zero = Classifier(CODES, strategy="embedding", **common(tmp_path))
    assert accuracy(head, test) >= 0.9
    assert accuracy(zero, test) <= 0.5
    # A leaf without examples keeps its zero-shot mass: its own name still wins it.
    assert head.classify("K-505").path == ["K-505"]


def test_the_head_is_saved_with_its_configuration_and_reloaded(tmp_path: Path) -> None:
    examples = [(p, [c]) for p, c in products(40, seed=3)]
    first = Classifier(CODES, strategy="supervised", examples=examples, **common(tmp_path))
    answer = first.classify("claw hammer steel")
    files = list((tmp_path / "cache" / "heads").glob("*.npz"))
    assert len(files) == 1
    head = SupervisedHead.load(files[0])
    assert head.config["embedder"] == "hashing-2048" and head.config["examples"] == 40
    assert head.config["llmcat"] and head.config["kind"] == "logistic-regression"
    assert set(head.classes) == {c.id for c in CODES.leaves()} - {"K-505"}
    # The second classifier reads the file: answers are the same, nothing is retrained.
    mtime = files[0].stat().st_mtime_ns
    second = Classifier(CODES, strategy="supervised", examples=examples, **common(tmp_path))
    assert second.classify("claw hammer steel").path == answer.path
    assert files[0].stat().st_mtime_ns == mtime
    files[0].write_bytes(b"not a head")
    with pytest.raises(ConfigError, match="not a supervised head"):
        SupervisedHead.load(files[0])


def test_the_head_predicts_what_scikit_learn_does() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8))
    for y in (
        [f"c{int(v)}" for v in (x[:, 0] > 0).astype(int) + (x[:, 1] > 0).astype(int)],
        [f"c{int(v)}" for v in x[:, 0] > 0],  # two classes: scikit-learn keeps one logit
    ):
        head = SupervisedHead.train(x, y, embedder="test")
        # The head sees unit vectors around the examples' mean.
        moved = x - x.mean(axis=0)
        centred = moved / np.linalg.norm(moved, axis=1, keepdims=True)
        model = LogisticRegression(C=head.config["C"], max_iter=2000).fit(centred, y)
        assert head.classes == tuple(model.classes_)
        assert np.allclose(head.predict(x), model.predict_proba(centred), atol=1e-6)


def test_c_is_chosen_on_held_out_examples_and_only_with_enough_of_them() -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(4, 16))
    labels = [f"c{i % 4}" for i in range(200)]
    x = np.array([centres[i % 4] + rng.normal(scale=2.0, size=16) for i in range(200)])
    c, scores = choose_c(x, labels)
    assert set(scores) == set(C_GRID) and c in C_GRID
    assert scores[c] == max(scores.values())
    assert all(scores[k] < scores[c] for k in C_GRID if k < c)  # the most regularised of ties
    assert choose_c(x[:20], labels[:20]) == (DEFAULT_C, {})


def test_supervised_needs_examples() -> None:
    with pytest.raises(ConfigError, match="supervised strategy learns from labelled"):
        Classifier(CODES, strategy="supervised", backend=FakeBackend(), embedder=HashingEmbedder())


def test_auto_with_examples_fuses_every_expert_with_weights_fitted_on_them(
    tmp_path: Path,
) -> None:
    pool, test = products(80, seed=1), products(60, seed=2)
    examples = [(p, [c]) for p, c in pool]
    muted = TrustFit(weights={"llm": 0.0, "embedding": 1.0}, name="muted")
    options = common(tmp_path, shortlist_k=2)
    clf = Classifier(CODES, examples=examples, **options)
    assert clf.strategy == "shortlist"
    result = clf.classify("claw hammer steel")
    assert result.experts is not None and set(result.experts) == {
        "llm",
        "embedding",
        "knn",
        "supervised",
    }  # no top-level expert: these labels are a flat list, their own top levels
    assert result.trust.startswith("fitted:examples")
    assert result.path == ["K-202"]
    # The candidates are the union of the nearest leaves, the examples' votes and the head's best.
    assert len(next(iter(result.experts.values()))) >= 2
    fits = list((tmp_path / "cache" / "fits").glob("*.json"))
    assert len(fits) == 1
    saved = TrustFit.load(fits[0])
    assert saved.items == 80 and "cross-validated accuracy" in saved.fitted_on
    assert saved.taxonomy == CODES.version
    # needs_review follows the threshold measured on the same cross-validated examples.
    assert saved.review_threshold is not None
    for r in clf.classify_many([p for p, _ in test]):
        assert r.confidence is not None
        assert r.needs_review == (r.confidence < saved.review_threshold)
    assert accuracy(clf, test) >= 0.9
    # A fit given by the caller is used as it is: no fit on the examples.
    given = Classifier(CODES, examples=examples, trust=muted, **common(tmp_path / "other"))
    assert given.classify("claw hammer steel").trust.startswith("fitted:muted")
    assert not (tmp_path / "other" / "cache" / "fits").exists()


SHELVES = Taxonomy.from_paths(
    [
        "Fruit > Apples",
        "Fruit > Pears",
        "Tools > Hammers",
        "Tools > Saws",
        "Toys > Puzzles",
        "Toys > Kites",
    ]
)
ONE_EACH = [
    (Product(title="red apples crisp"), "Fruit > Apples"),
    (Product(title="pears juicy ripe"), "Fruit > Pears"),
    (Product(title="claw hammers steel"), "Tools > Hammers"),
    (Product(title="jigsaw puzzles 1000"), "Toys > Puzzles"),
]


@pytest.mark.parametrize(
    ("titles", "examples_count"),
    [
        (
            ["green apples", "apples bag", "pears conference", "hammers rubber", "puzzles box"],
            False,
        ),
        (["saws hand", "kites beach", "saws wood", "kites stunt", "saws metal"], True),
    ],
)
def test_one_example_per_category_counts_only_where_cross_validation_measured_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, titles: list[str], examples_count: bool
) -> None:
    # Held out, a lone example stands for a product of a category nobody labelled. When most of
    # the run's products are of categories with an example, that fit would be wrong for them:
    # the zero-shot default classifies them. Products of the other categories keep the fit.
    products = [Product(title=t) for t in titles]
    with caplog.at_level("WARNING", logger="llmcat"):
        got = Classifier(SHELVES, examples=ONE_EACH, **common(tmp_path)).classify_many(products)
    assert all(r.experts is not None for r in got)
    assert all(("knn" in r.experts) == examples_count for r in got if r.experts is not None)
    warned = "every one of the 4 examples is the only one of its category" in caplog.text
    assert warned == (not examples_count)
    if not examples_count:
        zero_shot = Classifier(SHELVES, strategy="shortlist", **common(tmp_path / "zero"))
        expected = zero_shot.classify_many(products)
        assert [(r.path, r.confidence) for r in got] == [(r.path, r.confidence) for r in expected]


def test_the_fake_model_is_asked_within_the_budget_and_weighed(tmp_path: Path) -> None:
    examples = [(p, [c]) for p, c in products(30, seed=4)]
    backend = FakeBackend()
    clf = Classifier(
        CODES,
        examples=examples,
        backend=backend,
        embedder=HashingEmbedder(),
        cache_dir=tmp_path / "cache",
        fit_model_calls=7,
    )
    result = clf.classify("kettle spout tea")
    fit = TrustFit.load(next((tmp_path / "cache" / "fits").glob("*.json")))
    assert fit.items <= 7 and "llm" in fit.weights and "7 asked of" in fit.fitted_on
    # 7 examples plus the product itself (the fake model has no logprobs: no distribution,
    # so the items the fit could use are only those it had one for).
    assert len(backend.requests) >= 7
    assert result.path  # the answer still comes back


def synthetic_items(n: int, seed: int) -> list[tuple[dict[str, dict[str, float]], str]]:
    """``good`` knows the gold, ``noise`` is random: the fusion cannot beat ``good`` alone."""
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        candidates = [f"c{i}" for i in range(4)]
        gold = rng.choice(candidates)
        good = {c: (0.7 if c == gold else 0.1) for c in candidates}
        raw = {c: rng.random() + 0.01 for c in candidates}
        total = sum(raw.values())
        items.append(({"good": good, "noise": {c: v / total for c, v in raw.items()}}, gold))
    return items


def test_auto_keeps_the_best_single_expert_when_it_measured_better() -> None:
    items = synthetic_items(200, seed=0)
    accuracy = expert_accuracy(items)
    assert accuracy["good"] == 1.0 and accuracy["noise"] < 0.5
    fit = fit_on_examples(items, accuracy, base=neutral(["llm"]), what="synthetic", taxonomy="t")
    fused = expert_accuracy(items, fit.weights)["fused"]
    assert fused == 1.0
    assert fit.weights["good"] > 0 and fit.weights["llm"] == 1.0  # the base's weight stays


def test_eval_reports_shortlist_recall(tmp_path: Path) -> None:
    from llmcat.evals import metrics as M

    items = [
        M.Outcome(gold=("a",), pred=("a",), in_shortlist=True, shortlist_size=3),
        M.Outcome(gold=("b",), pred=("a",), in_shortlist=False, shortlist_size=5),
        M.Outcome(gold=("b",), pred=("b",)),
    ]
    metrics = M.classification_metrics(items)
    assert metrics["shortlist_recall"] == 0.5 and metrics["shortlist_size"] == 4.0
    assert M.classification_metrics(items[2:])["shortlist_recall"] is None
    json.dumps(metrics)


def test_prompts_show_the_nearest_examples_after_the_stable_system_message(
    tmp_path: Path,
) -> None:
    examples = [(p, [c]) for p, c in products(30, seed=5)]
    options = {"strategy": "flat", "embedder": HashingEmbedder(), "cache": False}
    backend = FakeBackend()
    Classifier(CODES, examples=examples, backend=backend, few_shot=2, **options).classify(
        "claw hammer steel"
    )
    plain = FakeBackend()
    Classifier(CODES, backend=plain, **options).classify("claw hammer steel")
    shown, bare = backend.requests[0].messages, plain.requests[0].messages
    assert shown[0] == bare[0]  # the system message (instructions, categories) is unchanged
    user = shown[-1].content
    assert "Labelled products similar to this one" not in bare[-1].content
    assert user.count(" -> K-") == 2 and user.index(" -> K-") < user.index("Title: claw hammer")
    assert "-> K-202" in user  # the nearest examples are hammers
    # An example is never shown to itself (what cross-validated trust relies on).
    itself = examples[0][0]
    backend.requests.clear()
    Classifier(CODES, examples=examples, backend=backend, few_shot=2, **options).classify(itself)
    assert f"- {itself.title} ->" not in backend.requests[0].messages[-1].content
    none = FakeBackend()
    Classifier(CODES, examples=examples, backend=none, few_shot=0, **options).classify("x y")
    assert "Labelled products" not in none.requests[0].messages[-1].content


def test_the_top_level_head_gives_every_leaf_its_departments_probability(tmp_path: Path) -> None:
    # Leaf labels are noise inside each department; only the department is learnable.
    shelves = Taxonomy.from_paths(
        [
            *(["Workshop", f"W-{i}"] for i in range(3)),
            *(["Scullery", f"S-{i}"] for i in range(3)),
            ["Garden", "G-0"],  # no examples: its zero-shot mass stays its own
        ]
    )
    rng = random.Random(0)
    department = {"Workshop": ["hammer", "chisel", "saw"], "Scullery": ["kettle", "spout", "tea"]}
    examples = [
        (
            Product(id=f"e{i}", title=" ".join(rng.sample(department[top], 2))),
            [top, f"{top[0]}-{rng.randrange(3)}"],
        )
        for i, top in enumerate(["Workshop", "Scullery"] * 30)
    ]
    clf = Classifier(shelves, examples=examples, **common(tmp_path, shortlist_k=7))
    experts = clf.classify("saw chisel").experts
    assert experts is not None
    top = experts["top_level"]
    workshop = [top[c.id] for c in shelves.leaves() if c.path[0] == "Workshop"]
    others = [top[c.id] for c in shelves.leaves() if c.path[0] != "Workshop"]
    assert max(workshop) - min(workshop) < 1e-9  # one probability per department
    assert min(workshop) > 3 * max(others)
    garden = clf.classify("garden").experts
    assert garden is not None
    assert max(garden["top_level"], key=garden["top_level"].__getitem__) == "Garden > G-0"
