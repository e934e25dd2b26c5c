"""Taxonomies: trees of categories with stable ids and full paths. Pure, no I/O but the loaders."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from llmcat.errors import TaxonomyError
from llmcat.taxonomy.names import is_name, resolve

PATH_SEPARATOR = " > "


class Category(BaseModel):
    """One node of a taxonomy."""

    id: str
    name: str
    path: tuple[str, ...]
    parent_id: str | None = None
    children: list[str] = Field(default_factory=list)
    #: what the category holds, in words, beside its name (a label file's second column)
    description: str = ""

    @property
    def embedding_text(self) -> str:
        """What an embedder reads for this category: its path, then its description if any."""
        return f"{self.path_text}: {self.description}" if self.description else self.path_text

    @property
    def depth(self) -> int:
        """1 for a top-level category."""
        return len(self.path)

    @property
    def path_text(self) -> str:
        """The path as ``A > B > C``."""
        return PATH_SEPARATOR.join(self.path)


#: the longest flat label list accepted: 1,000,000 labels neither answered nor refused in 150 s
MAX_LABELS = 100_000


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
    def from_labels(
        cls,
        labels: Sequence[str],
        *,
        name: str = "labels",
        descriptions: Mapping[str, str] | None = None,
    ) -> Taxonomy:
        """A flat taxonomy: every label is a top-level category whose id is the label itself.
        Labels that differ only in case, spacing or Unicode form are refused, naming both; so is
        a blank label, one holding a line break (the prompt would show it as two labels), and a
        list longer than ``MAX_LABELS``. ``descriptions``: words for some labels (by label),
        which embedders read beside the name; the answer is still the label."""
        if len(labels) > MAX_LABELS:
            raise TaxonomyError(
                f"{len(labels):,} labels: at most {MAX_LABELS:,} are taken (each is embedded "
                "before the first answer; 10,000 take about 45 s on 2 cores); give fewer"
            )
        cleaned = []
        for n, label in enumerate(labels, 1):
            if not isinstance(label, str) or not label.strip():
                raise TaxonomyError(f"label {n} of {len(labels)} is blank ({label!r}); drop it")
            if len(label.strip().splitlines()) > 1:
                raise TaxonomyError(
                    f"label {n} {label!r} holds a line break: the prompt would show it as two "
                    "labels; write it on one line"
                )
            cleaned.append(label.strip())
        refuse_near_duplicates([(label,) for label in cleaned], what="labels")
        described = {k.strip(): " ".join(v.split()) for k, v in (descriptions or {}).items()}
        unknown = sorted(set(described) - set(cleaned))
        if unknown:
            raise TaxonomyError(f"a description for {unknown[0]!r}, which is not a label")
        return cls(
            (
                Category(id=label, name=label, path=(label,), description=described.get(label, ""))
                for label in cleaned
            ),
            name=name,
        )

    @classmethod
    def from_paths(
        cls,
        paths: Iterable[str | Sequence[str]],
        *,
        ids: Sequence[str] | None = None,
        name: str = "paths",
        lines: Sequence[int] | None = None,
    ) -> Taxonomy:
        """A tree from ``"A > B > C"`` paths; missing ancestors are added with their path as id.

        ``ids``, when given, holds one id per path (as in Google's and Shopify's files);
        ``lines``, the line each path came from, for error messages. One path under two ids is a
        TaxonomyError. (Paths that differ only in case are kept apart: catalogues' own trees
        have them, e.g. Flipkart's "LUBA Wrist Watches" and "Luba Wrist Watches".)
        """
        path_list = [split_path(p) if isinstance(p, str) else tuple(p) for p in paths]
        if ids is not None and len(ids) != len(path_list):
            raise TaxonomyError("ids and paths differ in length")
        where = list(lines) if lines is not None else list(range(1, len(path_list) + 1))
        explicit: dict[tuple[str, ...], str] = {}
        first_line: dict[tuple[str, ...], int] = {}
        for i, path in enumerate(path_list):
            if not path:
                continue
            node_id = ids[i] if ids is not None else PATH_SEPARATOR.join(path)
            if path in explicit and explicit[path] != node_id:
                raise TaxonomyError(
                    f"line {where[i]}: {PATH_SEPARATOR.join(path)!r} is already category "
                    f"{explicit[path]!r} (line {first_line[path]}); one path, one id"
                )
            explicit[path] = node_id
            first_line.setdefault(path, where[i])
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
        """Load any supported text format, recognised by its content, or a taxonomy by name.

        Google's ``taxonomy-with-ids``, Shopify's ``categories.txt``, or one path (or label) per
        line; a name (``google``, ``shopify@2024-10``) is looked up offline in the taxonomy
        folders (``llmcat.taxonomy.names``).
        """
        file, name = Path(path), Path(path).stem
        if not file.exists() and is_name(str(path)):
            named = resolve(str(path))
            file, name = named.path, named.name
        body = _read_lines(file)
        if body and body[0][1].startswith("gid://shopify/"):
            return cls._parse_shopify(body, name=name)
        if body and re.match(r"^\d+\s+-\s+\S", body[0][1]):
            return cls._parse_google(body, name=name)
        _refuse_prose(file, body)
        return cls.from_paths([t for _, t in body], name=name, lines=[n for n, _ in body])

    @classmethod
    def from_google(cls, path: str | Path) -> Taxonomy:
        """Google's ``taxonomy-with-ids.en-US.txt``: ``<id> - A > B > C`` per line."""
        return cls._parse_google(_read_lines(Path(path)), name="google")

    @classmethod
    def from_shopify(cls, path: str | Path) -> Taxonomy:
        """Shopify's ``categories.txt``: ``gid://shopify/TaxonomyCategory/<id> : A > B`` per line."""
        return cls._parse_shopify(_read_lines(Path(path)), name="shopify")

    @classmethod
    def _parse_google(cls, lines: list[tuple[int, str]], *, name: str) -> Taxonomy:
        ids, paths = [], []
        for n, line in lines:
            m = re.match(r"^(\d+)\s+-\s+(.+)$", line.strip())
            if not m:
                raise TaxonomyError(f"line {n} is not '<id> - A > B': {line[:80]!r}")
            ids.append(m.group(1))
            paths.append(m.group(2))
        return cls.from_paths(paths, ids=ids, name=name, lines=[n for n, _ in lines])

    @classmethod
    def _parse_shopify(cls, lines: list[tuple[int, str]], *, name: str) -> Taxonomy:
        ids, paths = [], []
        for n, line in lines:
            m = re.match(r"^gid://shopify/TaxonomyCategory/(\S+)\s+:\s+(.+)$", line.strip())
            if not m:
                raise TaxonomyError(f"line {n} is not 'gid://shopify/... : A > B': {line[:80]!r}")
            ids.append(m.group(1))
            paths.append(m.group(2))
        return cls.from_paths(paths, ids=ids, name=name, lines=[n for n, _ in lines])

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
            # a description changes what is embedded; a tree without any keeps its old version
            described = f"\t{cat.description}" if cat.description else ""
            digest.update(f"{cat.id}\t{cat.path_text}{described}\n".encode())
        return digest.hexdigest()[:12]


def fold(name: str) -> str:
    """A name as a person reads it: Unicode NFKC (a no-break space is a space), case folded,
    inner whitespace collapsed. Two names that fold alike are one category to a reader."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def refuse_near_duplicates(paths: Sequence[tuple[str, ...]], *, what: str) -> None:
    """TaxonomyError naming both when two paths differ only in case, spacing or Unicode form."""
    seen: dict[tuple[str, ...], tuple[str, ...]] = {}
    for path in paths:
        key = tuple(fold(part) for part in path)
        if key not in seen:
            seen[key] = path
            continue
        other = seen[key]
        if other == path:
            raise TaxonomyError(f"duplicate {what}: {PATH_SEPARATOR.join(path)}")
        raise TaxonomyError(
            f"{what} {PATH_SEPARATOR.join(other)!r} and {PATH_SEPARATOR.join(path)!r} differ "
            "only in case, spacing or Unicode form; keep one"
        )


#: a line of prose, not a category: ends like a sentence, or is longer than any category name
_PROSE = re.compile(r"[.,;:!?]\s*$")


def _refuse_prose(file: Path, body: list[tuple[int, str]]) -> None:
    """A plain file of labels or paths must hold categories: a licence or a README does not
    (its lines are sentences), and is refused at its first such line."""
    if any(PATH_SEPARATOR.strip() in text for _, text in body):
        return  # paths: the tree's own structure says what it is
    for n, text in body:
        if _PROSE.search(text) or len(text) > 120 or len(text.split()) > 12:
            raise TaxonomyError(
                f"{file} line {n} is not a category ({text[:60]!r} reads as a sentence): give "
                "one label or 'A > B' path per line, or Google's or Shopify's taxonomy file"
            )


def _read_lines(file: Path) -> list[tuple[int, str]]:
    """The non-empty, non-comment lines of a UTF-8 text file with their line numbers (a
    byte-order mark is dropped); TaxonomyError for a file that cannot be read or is not UTF-8."""
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
    return [
        (n, ln)
        for n, ln in enumerate(text.splitlines(), 1)
        if ln.strip() and not ln.startswith("#")
    ]
