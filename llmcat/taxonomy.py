"""Taxonomies: trees of categories with stable ids and full paths. Pure, no I/O but the loaders."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from .errors import TaxonomyError

PATH_SEPARATOR = " > "


class Category(BaseModel):
    """One node of a taxonomy."""

    id: str
    name: str
    path: tuple[str, ...]
    parent_id: str | None = None
    children: list[str] = Field(default_factory=list)

    @property
    def depth(self) -> int:
        """1 for a top-level category."""
        return len(self.path)

    @property
    def path_text(self) -> str:
        """The path as ``A > B > C``."""
        return PATH_SEPARATOR.join(self.path)


def split_path(text: str) -> tuple[str, ...]:
    """Split ``"A > B > C"`` (also ``>>`` and ``/``-free variants like ``A>B``) into names."""
    parts = [p.strip() for p in re.split(r"\s*>>?\s*", text.strip())]
    return tuple(p for p in parts if p)


class Taxonomy:
    """A tree of categories. Build it with one of the ``from_*`` constructors."""

    def __init__(self, categories: Iterable[Category], *, name: str = "custom") -> None:
        self.name = name
        self._by_id: dict[str, Category] = {}
        self._by_path: dict[tuple[str, ...], str] = {}
        for cat in categories:
            if cat.id in self._by_id:
                raise TaxonomyError(f"duplicate category id {cat.id!r}")
            if cat.path in self._by_path:
                raise TaxonomyError(f"duplicate category path {cat.path_text!r}")
            self._by_id[cat.id] = cat
            self._by_path[cat.path] = cat.id
        if not self._by_id:
            raise TaxonomyError("a taxonomy needs at least one category")
        self._link_children()
        self.version = self._hash()

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def from_labels(cls, labels: Sequence[str], *, name: str = "labels") -> Taxonomy:
        """A flat taxonomy: every label is a top-level category whose id is the label itself."""
        cleaned = [label.strip() for label in labels if label and label.strip()]
        if len(cleaned) != len(set(cleaned)):
            dupes = sorted({x for x in cleaned if cleaned.count(x) > 1})
            raise TaxonomyError(f"duplicate labels: {', '.join(dupes)}")
        return cls((Category(id=label, name=label, path=(label,)) for label in cleaned), name=name)

    @classmethod
    def from_paths(
        cls,
        paths: Iterable[str | Sequence[str]],
        *,
        ids: Sequence[str] | None = None,
        name: str = "paths",
    ) -> Taxonomy:
        """A tree from ``"A > B > C"`` paths; missing ancestors are added with their path as id.

        ``ids``, when given, holds one id per path (as in Google's and Shopify's files).
        """
        path_list = [split_path(p) if isinstance(p, str) else tuple(p) for p in paths]
        if ids is not None and len(ids) != len(path_list):
            raise TaxonomyError("ids and paths differ in length")
        explicit: dict[tuple[str, ...], str] = {}
        for i, path in enumerate(path_list):
            if not path:
                continue
            explicit[path] = ids[i] if ids is not None else PATH_SEPARATOR.join(path)
        nodes: dict[tuple[str, ...], Category] = {}
        for path in explicit:
            for depth in range(1, len(path) + 1):
                prefix = path[:depth]
                if prefix in nodes:
                    continue
                node_id = explicit.get(prefix, PATH_SEPARATOR.join(prefix))
                parent = nodes[prefix[:-1]].id if depth > 1 else None
                nodes[prefix] = Category(id=node_id, name=prefix[-1], path=prefix, parent_id=parent)
        return cls(nodes.values(), name=name)

    @classmethod
    def from_file(cls, path: str | Path) -> Taxonomy:
        """Load any supported text format, recognised by its content.

        Google's ``taxonomy-with-ids``, Shopify's ``categories.txt``, or one path (or label) per line.
        """
        file = Path(path)
        body = _read_lines(file)
        if body and body[0].startswith("gid://shopify/"):
            return cls._parse_shopify(body, name=file.stem)
        if body and re.match(r"^\d+\s+-\s+\S", body[0]):
            return cls._parse_google(body, name=file.stem)
        return cls.from_paths(body, name=file.stem)

    @classmethod
    def from_google(cls, path: str | Path) -> Taxonomy:
        """Google's ``taxonomy-with-ids.en-US.txt``: ``<id> - A > B > C`` per line."""
        return cls._parse_google(_read_lines(Path(path)), name="google")

    @classmethod
    def from_shopify(cls, path: str | Path) -> Taxonomy:
        """Shopify's ``categories.txt``: ``gid://shopify/TaxonomyCategory/<id> : A > B`` per line."""
        return cls._parse_shopify(_read_lines(Path(path)), name="shopify")

    @classmethod
    def _parse_google(cls, lines: list[str], *, name: str) -> Taxonomy:
        ids, paths = [], []
        for n, line in enumerate(lines, 1):
            m = re.match(r"^(\d+)\s+-\s+(.+)$", line.strip())
            if not m:
                raise TaxonomyError(f"line {n} is not '<id> - A > B': {line[:80]!r}")
            ids.append(m.group(1))
            paths.append(m.group(2))
        return cls.from_paths(paths, ids=ids, name=name)

    @classmethod
    def _parse_shopify(cls, lines: list[str], *, name: str) -> Taxonomy:
        ids, paths = [], []
        for n, line in enumerate(lines, 1):
            m = re.match(r"^gid://shopify/TaxonomyCategory/(\S+)\s+:\s+(.+)$", line.strip())
            if not m:
                raise TaxonomyError(f"line {n} is not 'gid://shopify/... : A > B': {line[:80]!r}")
            ids.append(m.group(1))
            paths.append(m.group(2))
        return cls.from_paths(paths, ids=ids, name=name)

    # -- queries ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, category_id: object) -> bool:
        return category_id in self._by_id

    def __iter__(self) -> Iterator[Category]:
        return iter(self._by_id.values())

    def __repr__(self) -> str:
        return f"Taxonomy(name={self.name!r}, categories={len(self)}, leaves={len(self.leaves())})"

    def get(self, category_id: str) -> Category:
        """The category with this id; TaxonomyError when there is none."""
        try:
            return self._by_id[category_id]
        except KeyError:
            raise TaxonomyError(f"unknown category id {category_id!r}") from None

    def find_path(self, path: Sequence[str] | str) -> Category | None:
        """The category at exactly this path, or None."""
        key = split_path(path) if isinstance(path, str) else tuple(path)
        node_id = self._by_path.get(key)
        return self._by_id[node_id] if node_id is not None else None

    def roots(self) -> list[Category]:
        """Top-level categories, in file order."""
        return [c for c in self._by_id.values() if c.parent_id is None]

    def children(self, category_id: str | None) -> list[Category]:
        """Children of a category; of the root when ``category_id`` is None."""
        if category_id is None:
            return self.roots()
        return [self._by_id[c] for c in self.get(category_id).children]

    def leaves(self) -> list[Category]:
        """Categories without children."""
        return [c for c in self._by_id.values() if not c.children]

    def ancestors(self, category_id: str) -> list[Category]:
        """The category and its ancestors, root first."""
        chain = []
        node: Category | None = self.get(category_id)
        while node is not None:
            chain.append(node)
            node = self._by_id[node.parent_id] if node.parent_id else None
        return chain[::-1]

    @property
    def depth(self) -> int:
        """Length of the longest path."""
        return max(c.depth for c in self._by_id.values())

    @property
    def is_flat(self) -> bool:
        """True when every category is top-level."""
        return self.depth == 1

    def truncated(self, max_depth: int) -> Taxonomy:
        """The same tree cut at ``max_depth`` levels."""
        kept = [c for c in self._by_id.values() if c.depth <= max_depth]
        return Taxonomy(
            (c.model_copy(update={"children": []}) for c in kept), name=f"{self.name}@{max_depth}"
        )

    def summary(self) -> dict[str, object]:
        """Counts for ``llmcat taxonomy show``."""
        return {
            "name": self.name,
            "version": self.version,
            "categories": len(self),
            "leaves": len(self.leaves()),
            "depth": self.depth,
            "top_level": [c.name for c in self.roots()],
        }

    # -- internals ----------------------------------------------------------------------------

    def _link_children(self) -> None:
        for cat in self._by_id.values():
            cat.children = []
        for cat in self._by_id.values():
            if cat.parent_id is None:
                continue
            parent = self._by_id.get(cat.parent_id)
            if parent is None:
                raise TaxonomyError(f"category {cat.id!r} names unknown parent {cat.parent_id!r}")
            parent.children.append(cat.id)

    def _hash(self) -> str:
        digest = hashlib.sha256()
        for cat in self._by_id.values():
            digest.update(f"{cat.id}\t{cat.path_text}\n".encode())
        return digest.hexdigest()[:12]


def _read_lines(file: Path) -> list[str]:
    """The non-empty, non-comment lines of a UTF-8 text file (a byte-order mark is dropped);
    TaxonomyError for a file that cannot be read or is not UTF-8 text."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise TaxonomyError(f"cannot read taxonomy file {file}: {exc.strerror or exc}") from None
    if b"\0" in raw[:4096]:
        raise TaxonomyError(f"{file} is a binary file, not a taxonomy (one category per line)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TaxonomyError(
            f"{file} is not UTF-8 text (byte {exc.start}: {raw[exc.start : exc.start + 1]!r}); "
            "convert it, e.g. iconv -f latin1 -t utf-8"
        ) from None
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
