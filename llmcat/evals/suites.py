"""Eval datasets: JSONL records validated by pydantic, suites with a manifest, external loaders.

Classification record: ``{"id", "product": {...}, "gold": {"path": [...]}, "group"?}``
Description record: ``{"id", "product": {...}, "must_mention"?: [...], "forbidden"?: [...],
"reference"?, "language"?}``

A suite is a folder with ``manifest.json``::

    {"name": "golden", "taxonomy": {"kind": "gold-paths"} | {"kind": "file", "path": "..."},
     "classify": "classify.jsonl", "describe": "describe.jsonl", "sha256": {"classify.jsonl": "..."}}

or, for gold labels on products kept in the shared folder (which is never copied into the
repository)::

    {"name": "cdiscount-google", "taxonomy": {"kind": "shared", "path": "taxonomies/..."},
     "products": {"shared": "datasets/....jsonl"}, "labels": "labels.jsonl", "sha256": {...}}

where each label line is ``{"id", "google_id", "google_path"}``: the product with that id gets
the taxonomy's node ``google_id`` as gold, and ``google_path`` must be that node's path.

A mapping suite (``"task": "map"``) names a source and a target taxonomy and the gold pairs, all
in the shared folder, with a fixed split (``MapSuite``)::

    {"name": "shopify-google", "task": "map", "source": "taxonomies/...", "target": "...",
     "pairs": "...", "split": {"seed": 0, "test_share": 0.5}, "sha256": {...}}

Built-in suites: ``golden`` (``evals/datasets/golden``, written by the project, shipped in the wheel), ``flipkart``
(``$LLMCAT_SHARED_DIR/datasets/flipkart_1050.csv``, levels 1-3 of its own category tree), ``cdiscount``
(the French products into their own French tree) and ``cdiscount-google`` (243 of them, checked by
hand, into Google's English taxonomy); the mapping suite ``shopify-google`` (Shopify's taxonomy
onto Google's, judged on Shopify's official mapping); the attribute suites ``oa-mine`` and
``flipkart-attributes`` (``--task extract``, built in ``attribute_suites``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from llmcat import Product, Taxonomy
from llmcat.errors import ConfigError
from llmcat.evals.attribute_suites import EXTRACT_SUITES, is_extract_suite
from llmcat.evals.flipkart import load_flipkart
from llmcat.evals.paths import cdiscount_jsonl, flipkart_csv, oa_mine_jsonl, shared_dir, suites_dir

RecordT = TypeVar("RecordT", bound=BaseModel)


class Gold(BaseModel):
    path: list[str] = Field(min_length=1)


class ClassificationRecord(BaseModel):
    id: str
    product: Product
    gold: Gold
    group: str | None = None


class Label(BaseModel):
    """A hand-given gold node for a product kept elsewhere (a ``labels`` suite's line)."""

    id: str
    google_id: str
    google_path: str


class DescriptionRecord(BaseModel):
    id: str
    product: Product
    must_mention: list[str] = Field(default_factory=list)
    forbidden: list[str] = Field(default_factory=list)
    reference: str | None = None
    language: str = "en"


@dataclass
class Suite:
    """Records ready to run, with what identifies them for baselines."""

    name: str
    taxonomy: Taxonomy
    classify: list[ClassificationRecord] = field(default_factory=list)
    describe: list[DescriptionRecord] = field(default_factory=list)
    dataset_sha256: str = ""
    max_level: int = 3


@dataclass
class MapSuite:
    """A mapping suite: both taxonomies, each source category's gold target (None: unmapped),
    and the fixed split into the pool (given as known pairs) and the test half (scored)."""

    name: str
    source: Taxonomy
    target: Taxonomy
    gold: dict[str, str | None]
    pool: list[str]
    test: list[str]
    dataset_sha256: str
    seed: int


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_jsonl(path: Path, model: type[RecordT]) -> list[RecordT]:
    """Every line validated; the first bad line is a ConfigError naming file and line."""
    records = []
    with path.open(encoding="utf-8") as handle:
        for n, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                records.append(model.model_validate_json(line))
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"])
                raise ConfigError(f"{path}:{n}: {where}: {err['msg']}") from None
    return records


def taxonomy_from_gold(paths: list[list[str]]) -> Taxonomy:
    """The tree spanned by the gold paths (every prefix is a node)."""
    return Taxonomy.from_paths(sorted({" > ".join(p) for p in paths}), name="gold-paths")


def load_suite(name: str, *, data: Path | None = None, limit: int | None = None) -> Suite:
    """A built-in suite by name, a suite folder, or a single JSONL classification file."""
    if data is not None:
        return _load_file(data, limit)
    if name == "flipkart":
        return load_flipkart_suite(flipkart_csv(), limit=limit)
    if name == "cdiscount":
        return load_flat_suite(cdiscount_jsonl(), limit=limit)
    if name.partition(":")[0] in NAME_SUITES:
        return load_names_suite(name, limit=limit)
    if is_extract_suite(name):
        raise ConfigError(f"suite {name!r} is an attribute suite: run it with --task extract")
    folder = _suite_folder(name)
    if _manifest(folder).get("task") == "map":
        raise ConfigError(f"suite {name!r} is a mapping suite: run it with --task map")
    return _load_folder(folder, limit)


def _suite_folder(name: str) -> Path:
    folder = suites_dir() / name
    if not (folder / "manifest.json").exists():
        folder = Path(name)
    if not (folder / "manifest.json").exists():
        raise ConfigError(
            f"unknown suite {name!r}: use golden, flipkart, cdiscount, cdiscount-google, "
            f"shopify-google, {', '.join(NAME_SUITES)}, {', '.join(EXTRACT_SUITES)}, a suite "
            "folder, or --data FILE"
        )
    return folder


# A suite's manifest.json is read key by key, each kind of suite its own keys: left untyped.
def _manifest(folder: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return loaded


def is_map_suite(name: str) -> bool:
    """Whether ``name`` is a mapping suite (a built-in name or a folder)."""
    if (
        name in ("flipkart", "cdiscount")
        or name.partition(":")[0] in NAME_SUITES
        or is_extract_suite(name)
    ):
        return False
    try:
        return _manifest(_suite_folder(name)).get("task") == "map"
    except ConfigError:
        return False


def load_map_suite(name: str, *, limit: int | None = None) -> MapSuite:
    """A mapping suite: its shared files (sha256-checked), the gold pairs by id, the split.
    ``limit``: score only the first N test categories (in the split's shuffled order)."""
    import random

    from llmcat.mapping.known_pairs import read_pairs

    folder = _suite_folder(name)
    manifest = _manifest(folder)
    if manifest.get("task") != "map":
        raise ConfigError(f"suite {name!r} is not a mapping suite: --task classify or describe")
    files = {key: _shared_file(manifest[key]) for key in ("source", "target", "pairs")}
    digest = hashlib.sha256()
    for file in files.values():
        digest.update(_verified(file, manifest).encode())
    source, target = Taxonomy.from_file(files["source"]), Taxonomy.from_file(files["target"])
    gold: dict[str, str | None] = {c.id: None for c in source}
    for n, (left, right) in enumerate(read_pairs(files["pairs"]), 1):
        s = source.find_path(left)
        t = target.find_path(right) if right is not None else None
        if s is None or (right is not None and t is None):
            raise ConfigError(
                f"{files['pairs']} pair {n}: {left!r} -> {right!r} is not in the trees"
            )
        gold[s.id] = t.id if t is not None else None
    split = manifest.get("split", {})
    seed, share = int(split.get("seed", 0)), float(split.get("test_share", 0.5))
    ids = sorted(gold)
    random.Random(seed).shuffle(ids)
    cut = int(len(ids) * (1 - share))  # as `evals map --known-share` cuts it
    pool, test = ids[:cut], ids[cut:]
    return MapSuite(
        manifest.get("name", folder.name),
        source,
        target,
        gold,
        pool,
        test[:limit] if limit is not None else test,
        digest.hexdigest(),
        seed,
    )


def _load_folder(folder: Path, limit: int | None) -> Suite:
    manifest = _manifest(folder)
    if "labels" in manifest:
        return _load_labelled(folder, manifest, limit)
    digest = hashlib.sha256()

    def records(key: str, model: type[RecordT]) -> list[RecordT]:
        if key not in manifest:
            return []
        file = folder / manifest[key]
        digest.update(_verified(file, manifest).encode())
        return read_jsonl(file, model)[:limit]

    classify = records("classify", ClassificationRecord)
    describe = records("describe", DescriptionRecord)
    tax_spec = manifest.get("taxonomy", {"kind": "gold-paths"})
    if tax_spec["kind"] == "file":
        taxonomy = Taxonomy.from_file(folder / tax_spec["path"])
    else:
        taxonomy = taxonomy_from_gold(
            [r.gold.path for r in read_jsonl(folder / manifest["classify"], ClassificationRecord)]
        )
    return Suite(
        manifest.get("name", folder.name),
        taxonomy,
        classify,
        describe,
        digest.hexdigest(),
        manifest.get("max_level", 3),
    )


def _verified(file: Path, manifest: dict[str, object]) -> str:
    """The file's sha256, checked against the manifest's record of it."""
    actual = sha256_file(file)
    recorded = manifest.get("sha256")
    expected = recorded.get(file.name) if isinstance(recorded, dict) else None
    if expected and expected != actual:
        raise ConfigError(
            f"{file} changed since its manifest was written (sha256 {actual[:12]} != "
            f"{expected[:12]}); update {file.parent / 'manifest.json'}"
        )
    return actual


def _shared_file(relative: str) -> Path:
    file = shared_dir() / relative
    if not file.exists():
        raise ConfigError(
            f"{file} not found: set LLMCAT_SHARED_DIR to the folder holding {relative}"
        )
    return file


def _load_labelled(folder: Path, manifest: dict[str, Any], limit: int | None) -> Suite:
    """Hand-given gold nodes of a shared taxonomy for products in a shared file, joined by id."""
    labels_file = folder / manifest["labels"]
    digest = hashlib.sha256(_verified(labels_file, manifest).encode())
    taxonomy_file = _shared_file(manifest["taxonomy"]["path"])
    products_file = _shared_file(manifest["products"]["shared"])
    digest.update(sha256_file(products_file).encode())
    taxonomy = Taxonomy.from_file(taxonomy_file)
    products = {}
    for line in products_file.read_text(encoding="utf-8").split("\n"):  # not at U+2028
        if line.strip():
            row = json.loads(line)
            row.pop("path", None)
            products[str(row["id"])] = row
    records = []
    for n, label in enumerate(read_jsonl(labels_file, Label), 1):
        if label.id not in products:
            raise ConfigError(f"{labels_file}:{n}: no product {label.id!r} in {products_file}")
        if label.google_id not in taxonomy:
            raise ConfigError(f"{labels_file}:{n}: no node {label.google_id} in {taxonomy_file}")
        node = taxonomy.get(label.google_id)
        if node.path_text != label.google_path:
            raise ConfigError(
                f"{labels_file}:{n}: node {label.google_id} is {node.path_text!r} in "
                f"{taxonomy_file.name}, not {label.google_path!r}"
            )
        product = Product.model_validate(products[label.id])
        records.append(
            ClassificationRecord(
                id=label.id, product=product, gold=Gold(path=list(node.path)), group=node.path[0]
            )
        )
    if limit is not None:
        records = stratified(records, limit)
    return Suite(
        manifest.get("name", folder.name),
        taxonomy,
        records,
        [],
        digest.hexdigest(),
        manifest.get("max_level", 3),
    )


def _load_file(path: Path, limit: int | None) -> Suite:
    if not path.exists():
        raise ConfigError(f"dataset {path} does not exist")
    if path.suffix.lower() == ".csv":
        return load_flipkart_suite(path, limit=limit)
    records = read_jsonl(path, ClassificationRecord)[:limit]
    taxonomy = taxonomy_from_gold([r.gold.path for r in records])
    return Suite(path.stem, taxonomy, records, [], sha256_file(path))


def load_flat_suite(path: Path, *, limit: int | None = None) -> Suite:
    """Flat product records with their gold ``path`` (``title``, ``brand``, ``description``,
    ``path``: the Cdiscount file's format) as a classification suite over their own tree."""
    if not path.exists():
        raise ConfigError(
            f"{path} not found: set LLMCAT_SHARED_DIR to the folder holding "
            f"datasets/{path.name}, or pass --data FILE"
        )
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):  # not U+2028
        if not line.strip():
            continue
        row = json.loads(line)
        gold = [str(name) for name in row.pop("path")]
        product = Product.model_validate({"id": row.get("id") or str(n), **row})
        records.append(
            ClassificationRecord(
                id=product.id, product=product, gold=Gold(path=gold), group=gold[0]
            )
        )
    if limit is not None:
        records = stratified(records, limit)
    taxonomy = taxonomy_from_gold([r.gold.path for r in records])
    return Suite(path.stem, taxonomy, records, [], sha256_file(path))


def load_flipkart_suite(path: Path, *, limit: int | None = None) -> Suite:
    """The Flipkart CSV as a classification suite over levels 1-3 of its own category tree."""
    if not path.exists():
        raise ConfigError(
            f"{path} not found: set LLMCAT_SHARED_DIR to the folder holding datasets/flipkart_1050.csv, "
            "or pass --data FILE"
        )
    rows = list(load_flipkart(path, max_depth=3))
    taxonomy = taxonomy_from_gold([gold for _, gold in rows])
    records = [
        ClassificationRecord(id=p.id, product=p, gold=Gold(path=gold), group=gold[0])
        for p, gold in rows
    ]
    if limit is not None:
        records = stratified(records, limit)
    # Copy cases from the same products: title plus specifications, as a merchant would have them.
    describe = [
        DescriptionRecord(
            id=r.id,
            product=r.product.model_copy(update={"description": ""}),
            must_mention=[r.product.brand] if r.product.brand else [],
        )
        for r in records
    ]
    return Suite("flipkart", taxonomy, records, describe, sha256_file(path))


#: suites of products (title and brand only) into a flat list of top-level names: how a user
#: with a list of labels and no tree meets llmcat (``Taxonomy.from_labels``)
NAME_SUITES = ("flipkart-names", "cdiscount-names", "oa-mine-names")


def load_names_suite(name: str, *, limit: int | None = None) -> Suite:
    """``flipkart-names`` (Flipkart's 7 top-level names), ``cdiscount-names`` (Cdiscount's 40,
    French) or ``oa-mine-names`` (OA-Mine's 10 product types, both splits): each product's title
    and brand alone, its gold the label as written. ``flipkart-names:2`` (or ``:3``): the labels
    are the level-2 (or 3) paths, each written as one label (``Watches > Wrist Watches``)."""
    base, _, level_text = name.partition(":")
    if level_text not in ("", "1", "2", "3") or (
        level_text not in ("", "1") and base == "oa-mine-names"
    ):
        raise ConfigError(
            f"suite {name!r}: a level of 1, 2 or 3 follows the colon (oa-mine-names has 1)"
        )
    level = int(level_text or 1)
    if base == "oa-mine-names":
        records = []
        for split in ("train", "test"):
            file = oa_mine_jsonl(split)
            if not file.exists():
                raise ConfigError(
                    f"{file} not found: set LLMCAT_SHARED_DIR to the folder holding datasets/oa-mine"
                )
            for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
                row = json.loads(line)
                product = Product(id=f"{split}-{n}", title=row["input"])
                label = str(row["category"])
                records.append(
                    ClassificationRecord(
                        id=product.id, product=product, gold=Gold(path=[label]), group=label
                    )
                )
        source = oa_mine_jsonl("test")
        if limit is not None:
            records = stratified(records, limit)
    else:
        source = flipkart_csv() if base == "flipkart-names" else cdiscount_jsonl()
        full = load_suite(base.removesuffix("-names"), limit=limit)
        records = [
            r.model_copy(
                update={
                    "product": Product(
                        id=r.product.id, title=r.product.title, brand=r.product.brand
                    ),
                    "gold": Gold(path=[" > ".join(r.gold.path[:level])]),
                }
            )
            for r in full.classify
            if len(r.gold.path) >= level
        ]
    # Flipkart's level 3 spells a few labels two ways ("LUBA", "Luba"): one label, first spelling
    spelling: dict[str, str] = {}
    for r in records:
        spelling.setdefault(" ".join(r.gold.path[0].casefold().split()), r.gold.path[0])
    records = [
        r.model_copy(
            update={"gold": Gold(path=[spelling[" ".join(r.gold.path[0].casefold().split())]])}
        )
        for r in records
    ]
    taxonomy = Taxonomy.from_labels(sorted(set(spelling.values())), name=name)
    return Suite(name, taxonomy, records, [], sha256_file(source))


def stratified(records: list[ClassificationRecord], limit: int) -> list[ClassificationRecord]:
    """``limit`` records taken round-robin across groups, so a small run sees every group."""
    groups: dict[str, list[ClassificationRecord]] = {}
    for r in records:
        groups.setdefault(r.group or "", []).append(r)
    out: list[ClassificationRecord] = []
    while len(out) < min(limit, len(records)):
        for members in groups.values():
            if members and len(out) < limit:
                out.append(members.pop(0))
    return out
