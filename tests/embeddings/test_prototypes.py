"""Labels grounded in a larger taxonomy, and moved toward the run's products (pure steps)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from llmcat.embeddings.anchors import google_paths, with_children
from llmcat.embeddings.hashing import HashingEmbedder
from llmcat.embeddings.index import TextIndex
from llmcat.embeddings.prototypes import (
    grounded,
    guarded_offsets,
    hub_offsets,
    neighbour_agreement,
    refined,
)


def unit(*rows: list[float]) -> np.ndarray:
    m = np.asarray(rows, dtype=np.float64)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_a_label_is_grounded_in_its_nearest_anchor_and_that_anchors_children() -> None:
    anchors = unit([1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 0, 1], [0, 0, 0, 1])
    members = [[0, 1, 2], [1], [2], [3]]  # anchor 0 is the parent of anchors 1 and 2
    names = unit([1, 0.2, 0, 0])
    queries = unit([1, 1, 0, 0])  # as a query, the label names anchor 0
    vector = grounded(names, queries, anchors, members, nearest=1)[0]
    expected = anchors[[0, 1, 2]].mean(axis=0) + names[0]
    assert vector == pytest.approx(expected / np.linalg.norm(expected))
    child = anchors[1]
    assert vector @ child > names[0] @ child  # reads more like what lies beneath it
    # Without anchors, a label is its name.
    assert grounded(names, queries, np.zeros((0, 4)), [])[0] == pytest.approx(names[0])


def test_refined_moves_each_label_toward_the_products_it_attracts_and_keeps_its_share() -> None:
    labels = unit([1, 0, 0], [0, 1, 0])
    cluster = unit(*[[0.2, 1, 0.5 + 0.01 * i] for i in range(8)])  # products of label 1
    moved = refined(labels, cluster, temperature=0.05, keep=0.7)
    assert np.linalg.norm(moved, axis=1) == pytest.approx([1.0, 1.0])
    centre = cluster.mean(axis=0)
    assert moved[1] @ centre > labels[1] @ centre
    assert refined(labels, cluster, 0.05, keep=1.0) == pytest.approx(labels)
    assert refined(labels, np.zeros((0, 3)), 0.05) == pytest.approx(labels)  # nothing seen


def test_hub_offsets_are_each_labels_mean_similarity_to_its_nearest_products() -> None:
    labels = unit([1, 0], [1, 1])
    products = unit([1, 0.1], [1, 0.9], [1, 1.1], [0.1, 1])
    sims = products @ labels.T
    offsets = hub_offsets(labels, products, neighbours=2)
    assert offsets == pytest.approx(np.sort(sims, axis=0)[-2:].mean(axis=0))
    assert hub_offsets(labels, np.zeros((0, 2))) == pytest.approx([0.0, 0.0])


def test_hub_offsets_apply_only_when_every_label_answers_its_share_of_the_sample() -> None:
    labels = unit([1, 0, 0], [0, 1, 0], [0, 0, 1])
    even = unit(
        *[[1, 0.1 * i, 0] for i in range(4)],
        *[[0, 1, 0.1 * i] for i in range(4)],
        *[[0.1 * i, 0, 1] for i in range(4)],
    )
    assert guarded_offsets(labels, even) == pytest.approx(hub_offsets(labels, even))
    # A catalogue holding two of the three labels: label 2 answers none of it, so no label is
    # pushed toward it.
    lacking = even[:8]
    assert hub_offsets(labels, lacking)[2] > 0
    assert guarded_offsets(labels, lacking) == pytest.approx([0.0, 0.0, 0.0])
    # The guard is a share of the fair share: one of four products where four are fair.
    skewed = np.vstack([even[:8], even[8:9]])
    assert guarded_offsets(labels, skewed, guard=0.25) == pytest.approx(hub_offsets(labels, skewed))
    assert not guarded_offsets(labels, skewed, guard=0.5).any()
    assert not guarded_offsets(labels, np.zeros((0, 3))).any()


def test_a_moved_index_ranks_by_similarity_less_offset_and_keeps_its_matrix() -> None:
    asyncio.run(_a_moved_index())


async def _a_moved_index() -> None:
    index: TextIndex[str] = TextIndex(
        HashingEmbedder(), ["a", "b"], ["red shoes", "blue toys"], label="t", cache_dir=None
    )
    built = np.array(await index.matrix())
    query = (await HashingEmbedder().embed(["red shoes"]))[0]
    assert (await index.nearest_to(query, 1))[0][0] == "a"
    index.move(built, [1.0, 0.0])  # "a" handicapped by a whole unit of similarity
    assert (await index.nearest_to(query, 1))[0][0] == "b"
    assert index.moved and index.built is not None and np.allclose(index.built, built)
    scores = await index.similarities(np.asarray([query]))
    assert scores[0] == pytest.approx(built.astype(np.float64) @ query - [1.0, 0.0])
    with pytest.raises(ValueError, match="offsets"):
        index.move(built, [0.0])
    index.adopt(built)  # a new matrix: what the run taught is for the old one
    assert not index.moved


def test_googles_paths_ship_and_each_anchor_stands_for_itself_and_its_children() -> None:
    paths = google_paths()
    assert len(paths) == 5595 and "Home & Garden > Linens & Bedding" in paths
    members = with_children(paths)
    bedding = paths.index("Home & Garden > Linens & Bedding")
    beneath = {paths[i] for i in members[bedding]}
    assert "Home & Garden > Linens & Bedding > Bedding" in beneath
    assert all(p.startswith("Home & Garden > Linens & Bedding") for p in beneath)


def test_neighbour_agreement_is_the_share_of_nearest_products_with_the_same_answer() -> None:
    products = unit([1, 0.01], [1, 0.02], [0.01, 1], [0.02, 1])  # two tight pairs
    assert neighbour_agreement(products, [0, 0, 1, 1], neighbours=1) == 1.0
    assert neighbour_agreement(products, [0, 1, 1, 0], neighbours=1) == 0.0
    assert neighbour_agreement(products, [0, 0, 1, 0], neighbours=1) == 0.5
    assert neighbour_agreement(products[:1], [0]) is None
