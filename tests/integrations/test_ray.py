"""Ray Data: the actor pool gives what one process gives, item for item, for classification and
copy, over the fake backend, a server and a list of servers; a bad row is an error record in its
row; ``--ray`` writes a folder that ``python -m evals agree`` finds equal to the one-process run.

One local Ray cluster (2 CPUs) serves the module; it is always shut down."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llmcat import Classifier, ConfigError, Describer, Settings, Taxonomy
from llmcat.cli import main
from llmcat.config.options import ClassifyOptions
from llmcat.evals.commands import main as evals_main
from llmcat.io.columns import Columns
from tests.conftest import require
from tests.fake_server import FakeServer, Reply, chat_reply

LABELS = ["Shoes", "Phones", "Toys", "Kitchen"]
TITLES = [
    "trail running shoes",
    "smart phone 128 GB",
    "wooden toy train",
    "cast iron pan",
    "leather boots",
    "phone case",
    "plush bear",
    "coffee mug",
]


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    require(importlib.util.find_spec("ray") is not None, "ray: pip install 'llmcat[ray]'")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    try:
        yield ray
    finally:
        ray.shutdown()


def products(n: int = 24) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        rows.append(
            {
                "id": f"p{i}",
                "title": TITLES[i % len(TITLES)] + f" {i}",
                "brand": "Acme" if i % 3 else "",
                "sku": f"s-{i}",
            }
        )
    return rows


#: words of the titles (never of the labels) -> the label a server answers
CLUES = {"running": "Shoes", "boots": "Shoes", "128": "Phones", "case": "Phones"}
CLUES |= {"wooden": "Toys", "plush": "Toys", "pan": "Kitchen", "mug": "Kitchen"}


def answer(body: dict[str, Any]) -> Reply:
    """The label a clue in the product's title names, with a logprob, as vLLM answers."""
    text = json.dumps(body["messages"]).lower()
    best = next(label for clue, label in CLUES.items() if f" {clue}" in text)
    assert best in body["structured_outputs"]["choice"]
    return chat_reply(best, logprobs=[(best, -0.3, {best: -0.3})])


def dataset(ray: Any, rows: list[dict[str, Any]], block: int = 3) -> Any:
    return ray.data.from_items(rows).repartition(target_num_rows_per_block=block).materialize()


def test_the_actor_pool_equals_one_process_item_for_item(ray_cluster: Any, tmp_path: Path) -> None:
    from llmcat.integrations.ray_data import classify_dataset

    rows = products()
    settings = Settings(backend="fake", cache_dir=tmp_path / "cache")
    out = classify_dataset(
        dataset(ray_cluster, rows), LABELS, settings=settings, workers=2, batch_size=6
    ).take_all()
    single = Classifier(LABELS, settings=settings).classify_many(rows, progress=False)
    assert [r["id"] for r in out] == [r["id"] for r in rows]  # order kept
    assert all(r["sku"] == row["sku"] for r, row in zip(out, rows, strict=True))  # own columns
    for got, want in zip(out, single, strict=True):
        assert got["category_id"] == want.category_id and got["path"] == want.path
        assert got["confidence"] == pytest.approx(want.confidence, abs=1e-12)
        assert got["needs_review"] == want.needs_review and got["error"] is None
        assert [a["category_id"] for a in got["alternatives"]] == [
            a.category_id for a in want.alternatives
        ]


def test_every_actor_scales_the_confidence_to_the_same_reading_of_the_run(
    ray_cluster: Any, tmp_path: Path
) -> None:
    """Each actor's first batch is too small to estimate the run's accuracy from (6 rows); the
    driver's sample of the dataset is not, and every actor reads the run from it, as one
    process does."""
    from llmcat import HashingEmbedder
    from llmcat.confidence.distributions import SPREAD_K
    from llmcat.confidence.trust import TrustFit
    from llmcat.integrations.ray_data import classify_dataset

    tree = Taxonomy.from_paths([f"Dept {d} > Aisle {a}" for d in range(4) for a in range(5)])
    rows = [{"id": f"p{i}", "title": f"Dept {i % 4} Aisle {i % 5} item {i}"} for i in range(40)]
    fit = TrustFit(
        weights={"embedding": 1.0, "llm": 0.0},
        entropy_threshold=-1.0,
        matched_weight=1.0,
        spread=1.0,
        name="f",
    )
    common: dict[str, Any] = {"embedder": HashingEmbedder(), "trust": fit, "cache": False}
    options = ClassifyOptions(strategy="shortlist", shortlist_k=SPREAD_K)
    settings = Settings(backend="fake", cache_dir=tmp_path / "cache")
    out = classify_dataset(
        dataset(ray_cluster, rows),
        tree,
        options,
        settings=settings,
        workers=2,
        batch_size=6,
        **common,
    ).take_all()
    single = Classifier(tree, options, settings=settings, **common).classify_many(
        iter(rows), progress=False
    )
    assert "the run's accuracy estimated at" in single[0].trust
    for got, want in zip(out, single, strict=True):
        assert got["path"] == want.path
        assert got["confidence"] == pytest.approx(want.confidence, abs=1e-12)


@pytest.mark.allow_model_requests
def test_actors_share_a_list_of_servers_and_answer_as_one_process(
    ray_cluster: Any, tmp_path: Path
) -> None:
    from llmcat.integrations.ray_data import classify_dataset

    rows = products(12)
    with FakeServer("vllm") as first, FakeServer("vllm") as second:
        first.responder = second.responder = answer
        settings = Settings(cache=False)
        out = classify_dataset(
            dataset(ray_cluster, rows),
            LABELS,
            settings=settings,
            base_urls=[first.base_url, second.base_url],
            workers=2,
            batch_size=3,
            strategy="flat",
        ).take_all()
        single = Classifier(
            LABELS, settings=settings, base_url=first.base_url, strategy="flat"
        ).classify_many(rows, progress=False)
        asked = [len(first.requests), len(second.requests)]
    assert [r["category_id"] for r in out] == [r.category_id for r in single]
    assert [r["category_id"] for r in out][:4] == ["Shoes", "Phones", "Toys", "Kitchen"]
    assert all(r["error"] is None for r in out)
    # The driver's first product, the actors' and the one-process run's: each asked once. (Which
    # actor takes which batch is Ray's choice: a fast actor may take them all.)
    assert sum(asked) == 1 + len(rows) + len(rows)


def test_each_actor_takes_the_next_server(ray_cluster: Any) -> None:
    from llmcat.integrations.ray_data import WorkerRecipe, _Dealer

    dealer = ray_cluster.remote(num_cpus=0)(_Dealer).remote()
    numbers = [ray_cluster.get(dealer.take.remote()) for _ in range(3)]
    recipe = WorkerRecipe(
        "classify",
        ClassifyOptions(strategy="flat"),
        Settings(cache=False),
        taxonomy=Taxonomy.from_labels(LABELS),
        base_urls=("http://one/v1", "http://two/v1"),
    )
    urls = [recipe.build(n).settings.base_url for n in numbers]
    assert urls == ["http://one/v1", "http://two/v1", "http://one/v1"]


def test_a_bad_row_is_an_error_record_in_its_row(ray_cluster: Any, tmp_path: Path) -> None:
    from llmcat.integrations.ray_data import classify_dataset

    rows = products(6)
    rows[3]["title"] = "   "
    settings = Settings(backend="fake", cache_dir=tmp_path / "cache")
    out = classify_dataset(
        dataset(ray_cluster, rows), LABELS, settings=settings, workers=1, batch_size=6
    ).take_all()
    assert len(out) == 6
    assert out[3]["category_id"] is None and "title" in out[3]["error"]
    assert all(r["error"] is None for i, r in enumerate(out) if i != 3)


def test_copy_on_the_actor_pool_equals_one_process(ray_cluster: Any, tmp_path: Path) -> None:
    from llmcat.integrations.ray_data import describe_dataset

    rows = products(6)
    settings = Settings(backend="fake", cache_dir=tmp_path / "cache")
    out = describe_dataset(
        dataset(ray_cluster, rows), settings=settings, workers=2, batch_size=3
    ).take_all()
    # a dataset's rows are read as a file's: the product's own fields (no sku attribute)
    chosen = [Columns().select(r) for r in rows]
    single = Describer(settings=settings).describe_many(chosen, progress=False)
    assert [r["copy_title"] for r in out] == [d.title for d in single]
    assert [r["copy_bullets"] for r in out] == [d.bullets for d in single]
    assert [r["copy_flagged"] for r in out] == [d.flagged for d in single]


def test_result_columns_never_overwrite_the_callers(ray_cluster: Any, tmp_path: Path) -> None:
    from llmcat.integrations.ray_data import classify_dataset

    rows = [{**r, "path": "a/b"} for r in products(3)]
    settings = Settings(backend="fake", cache_dir=tmp_path / "cache")
    with pytest.raises(Exception, match="already has column"):
        classify_dataset(dataset(ray_cluster, rows), LABELS, settings=settings).take_all()
    out = classify_dataset(
        dataset(ray_cluster, rows), LABELS, settings=settings, prefix="llmcat_", workers=1
    ).take_all()
    assert out[0]["path"] == "a/b" and out[0]["llmcat_path"]


def test_the_cli_writes_a_folder_equal_to_the_one_process_run(
    ray_cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    rows = products(30)
    rows[5]["title"] = ""
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, tmp_path / "products.parquet", row_group_size=7)
    common = ["classify", "--input", "products.parquet", "--labels", ",".join(LABELS)]
    common += ["--backend", "fake", "--no-progress"]
    assert main([*common, "--output", "single.parquet"]) == 0
    assert main([*common, "--output", "out", "--ray", "--ray-workers", "2"]) == 0
    written = pq.read_table(tmp_path / "out").to_pylist()
    # every product exactly once; the order of rows in the folder is Ray's (see FileJob.run)
    assert sorted(r["id"] for r in written) == sorted(r["id"] for r in rows)
    assert evals_main(["agree", "single.parquet", "out", "--tolerance", "0"]) == 0
    # A run that differs is caught: one category changed.
    changed = [dict(r) for r in written]
    changed[0]["category_id"] = "Toys" if changed[0]["category_id"] != "Toys" else "Shoes"
    pq.write_table(pa.Table.from_pylist(changed), tmp_path / "changed.parquet")
    assert evals_main(["agree", "single.parquet", "changed.parquet"]) == 1


def test_the_cli_refuses_what_the_ray_path_cannot_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "p.parquet").write_bytes(b"")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("kept")
    base = ["classify", "--labels", "A,B", "--backend", "fake", "--ray"]
    cases = [
        ([*base, "--input", str(tmp_path / "p.parquet")], "--input FILE and --output FOLDER"),
        (
            [*base, "--input", str(tmp_path / "p.parquet"), "--output", "o", "--resume"],
            "without --resume",
        ),
        (["classify", "a title", *base[1:]], "not a single product"),
        ([*base, "--input", "p.jsonl", "--output", "o"], "convert it to Parquet"),
        (
            [*base, "--input", str(tmp_path / "p.parquet"), "--output", str(tmp_path / "full")],
            "not an empty folder",
        ),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err
    assert (tmp_path / "full" / "x").read_text() == "kept"


def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from llmcat.integrations.ray_data import need_ray

    real = builtins.__import__

    def no_ray(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ConfigError, match=r"llmcat\[ray\]"):
        need_ray()


@pytest.mark.allow_model_requests
def test_the_http_processor_path_gives_the_live_results(ray_cluster: Any, tmp_path: Path) -> None:
    from llmcat.integrations.ray_data import REQUEST, RESPONSE, classify_dataset_http

    rows = products(10)
    rows[4]["title"] = " "  # asks nothing: skips the processor, still gets its error record
    with FakeServer("vllm") as server:
        server.responder = answer
        settings = Settings(cache_dir=tmp_path / "cache")
        out = classify_dataset_http(
            dataset(ray_cluster, rows),
            LABELS,
            base_url=server.base_url,
            settings=settings,
            workers=2,
            batch_size=3,
            strategy="flat",
        ).take_all()
        relayed = len(server.requests)
        live = Classifier(
            LABELS,
            base_url=server.base_url,
            strategy="flat",
            settings=Settings(cache_dir=tmp_path / "live-cache"),
        ).classify_many([Columns().select(r) for r in rows], progress=False)
        sent = server.requests[relayed:]
    by_id = {r["id"]: r for r in out}
    assert sorted(by_id) == sorted(r["id"] for r in rows)
    for row, want in zip(rows, live, strict=True):
        got = by_id[row["id"]]
        assert got["category_id"] == want.category_id
        assert got["confidence"] == pytest.approx(want.confidence, abs=1e-12)
        assert (got["error"] is None) == (want.error is None)
        assert REQUEST not in got and RESPONSE not in got
    assert "title" in by_id["p4"]["error"]
    # The warm-up's product, then one request per product that asks the model: the same bodies
    # a live run sends.
    assert relayed == 1 + 9
    assert sorted(json.dumps(b, sort_keys=True) for b in server.requests[1:relayed]) == sorted(
        json.dumps(b, sort_keys=True) for b in sent
    )
