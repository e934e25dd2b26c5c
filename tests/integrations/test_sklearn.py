"""The scikit-learn estimator: scikit-learn's own estimator checks, Pipeline, cross_val_score,
GridSearchCV over llmcat's options, and cross-validation on Flipkart products."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import FunctionTransformer, Pipeline
from sklearn.utils.estimator_checks import check_estimator

from llmcat import Settings
from llmcat.embeddings import local_embedder_available
from llmcat.integrations.sklearn_estimator import LLMCategoryClassifier
from tests.conftest import require

FAST = {"strategy": "knn", "embedding_model": "hashing", "cache": False}
TITLES = [
    "Nike running shoes",
    "Adidas trail running shoes",
    "leather hiking boots",
    "wooden toy train",
    "plush teddy bear toy",
    "toy racing car",
    "Samsung Galaxy phone",
    "Apple iPhone phone 128 GB",
    "Xiaomi phone with dual camera",
]
LABELS = ["Shoes"] * 3 + ["Toys"] * 3 + ["Phones"] * 3


def test_scikit_learns_estimator_checks_pass() -> None:
    with warnings.catch_warnings():
        # scikit-learn's checks warn about their own fixtures (array API, casts); not ours.
        warnings.simplefilter("ignore")
        results = check_estimator(LLMCategoryClassifier(knn_k=1, **FAST), on_fail=None)
    failed = {r["check_name"]: str(r["exception"]) for r in results if r["status"] == "failed"}
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert failed == {}
    assert skipped <= {"check_array_api_input"}  # needs SCIPY_ARRAY_API: not llmcat's
    assert len(results) >= 50


def test_fit_predict_proba_score_on_titles_and_dicts() -> None:
    clf = LLMCategoryClassifier(**FAST).fit(TITLES, LABELS)
    assert list(clf.classes_) == ["Phones", "Shoes", "Toys"]
    proba = clf.predict_proba(["Nike running shoes", {"title": "toy train"}])
    assert proba.shape == (2, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert list(clf.predict(["Nike running shoes"])) == ["Shoes"]
    assert clf.score(TITLES, LABELS) == 1.0
    again = pickle.loads(pickle.dumps(clf))
    assert list(again.predict(TITLES)) == list(clf.predict(TITLES))


def test_labels_fix_the_classes_and_zero_shot_needs_no_examples() -> None:
    clf = LLMCategoryClassifier(
        labels=["Shoes", "Toys", "Phones"], strategy="flat", backend="fake", use_examples=False
    ).fit(["x", "y"], ["Shoes", "Toys"])
    assert list(clf.classes_) == ["Phones", "Shoes", "Toys"]  # every label, not only y's
    assert clf.classifier_.context.examples == []
    proba = clf.predict_proba(["wooden toy train"])
    assert proba.shape == (1, 3) and np.isclose(proba.sum(), 1.0)


def test_pipeline_cross_val_score_and_grid_search_over_llmcat_options() -> None:
    lower = FunctionTransformer(lambda xs: [x.lower() for x in xs])
    pipe = Pipeline([("clean", lower), ("llmcat", LLMCategoryClassifier(**FAST))])
    scores = cross_val_score(pipe, TITLES, LABELS, cv=3)
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
    search = GridSearchCV(
        LLMCategoryClassifier(**FAST), {"knn_k": [1, 3], "few_shot": [0, 3]}, cv=3
    ).fit(TITLES, LABELS)
    assert search.best_params_["knn_k"] in (1, 3) and len(search.cv_results_["params"]) == 4


def test_cross_val_score_on_100_flipkart_products(shared_dir: Path) -> None:
    from llmcat.evals.suites import load_flipkart_suite

    require(local_embedder_available(), "a local embedder (pip install 'llmcat[local]')")
    suite = load_flipkart_suite(shared_dir / "datasets" / "flipkart_1050.csv", limit=100)
    products = [r.product for r in suite.classify]
    tops = [r.gold.path[0] for r in suite.classify]
    scores = cross_val_score(
        LLMCategoryClassifier(strategy="knn", cache=False), products, tops, cv=3
    )
    assert (
        len(scores) == 3 and min(scores) > 0.5
    )  # kNN over the default embedder on top-level categories


def test_the_estimator_leaves_default_parameters_to_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLMCAT_BASE_URL", "http://vllm:8000/v1")
    default = LLMCategoryClassifier(labels=["a", "b"])
    assert Settings(**default._changed(Settings)).resolved().base_url == "http://vllm:8000/v1"
    given = LLMCategoryClassifier(labels=["a", "b"], base_url="http://x:1/v1")
    assert Settings(**given._changed(Settings)).resolved().base_url == "http://x:1/v1"
