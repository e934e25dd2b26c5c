"""Taxonomies by name: ``google``, ``shopify``, ``google@2021-09-21``, found offline.

A name is looked up in the taxonomy folders, in order: ``LLMCAT_TAXONOMY_DIR`` (one folder or
several, separated by ``os.pathsep``), then ``<cache dir>/taxonomies``, where ``llmcat taxonomy
fetch`` and ``llmcat taxonomy add`` keep the files they get. A folder's files are recognised by
their content, whatever their names: Google's ``taxonomy-with-ids`` (its version from its
``# Google_Product_Taxonomy_Version:`` line) and Shopify's ``categories.txt`` (from ``#
Shopify Product Taxonomy - Categories: <version>``); a file without a version line takes it
from its name (``..._2024-10.txt``). A bare name is the newest version found.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from llmcat.errors import TaxonomyError

#: the taxonomies llmcat knows by name, with where their publishers put the current release
OFFICIAL = {
    "google": "https://www.google.com/basepages/producttype/taxonomy-with-ids.en-US.txt",
    "shopify": "https://raw.githubusercontent.com/Shopify/product-taxonomy/v2024-10/dist/en/categories.txt",
}
_VERSION_LINE = {
    "google": re.compile(r"^#\s*Google_Product_Taxonomy_Version:\s*(\S+)"),
    "shopify": re.compile(r"^#\s*Shopify Product Taxonomy - Categories:\s*(\S+)"),
}
_FIRST_LINE = {
    "google": re.compile(r"^\d+\s+-\s+\S"),
    "shopify": re.compile(r"^gid://shopify/TaxonomyCategory/"),
}
_NAME = re.compile(r"^(?P<kind>[a-z][a-z0-9_-]*)(?:@(?P<version>[\w.-]+))?$", re.IGNORECASE)


@dataclass(frozen=True)
class NamedTaxonomy:
    """One taxonomy file found in a folder: ``kind@version``."""

    kind: str
    version: str
    path: Path

    @property
    def name(self) -> str:
        return f"{self.kind}@{self.version}"


def taxonomy_folders(cache_dir: Path | None = None) -> list[Path]:
    """The folders names are looked up in, in order (see the module docstring)."""
    folders = [Path(p) for p in os.environ.get("LLMCAT_TAXONOMY_DIR", "").split(os.pathsep) if p]
    if cache_dir is None:
        from llmcat.config.settings import Settings

        cache_dir = Settings().resolved().cache_dir
    if cache_dir is not None:
        folders.append(cache_dir / "taxonomies")
    return folders


def recognise(path: Path) -> NamedTaxonomy | None:
    """What ``path`` is, from its first lines (and its name for the version), or None."""
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            head = [handle.readline() for _ in range(5)]
    except OSError:
        return None
    for kind in OFFICIAL:
        version = next((m.group(1) for ln in head if (m := _VERSION_LINE[kind].match(ln))), None)
        data = next((ln for ln in head if ln.strip() and not ln.startswith("#")), "")
        if version is None and not _FIRST_LINE[kind].match(data):
            continue
        if version is None:
            dated = re.search(r"(\d{4}-\d{2}(?:-\d{2})?)", path.stem)
            version = dated.group(1) if dated else "unversioned"
        return NamedTaxonomy(kind, version, path)
    return None


def available(folders: list[Path] | None = None) -> list[NamedTaxonomy]:
    """Every named taxonomy in the folders, the first folder's first for one name."""
    found: dict[str, NamedTaxonomy] = {}
    for folder in taxonomy_folders() if folders is None else folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.txt")):
            named = recognise(path)
            if named is not None:
                found.setdefault(named.name, named)
    return sorted(found.values(), key=lambda n: (n.kind, n.version))


def is_name(text: str) -> bool:
    """True when ``text`` reads as a taxonomy name rather than a file path."""
    return bool(_NAME.match(text)) and not text.endswith((".txt", ".csv", ".json", ".jsonl"))


def resolve(name: str, folders: list[Path] | None = None) -> NamedTaxonomy:
    """The file of taxonomy ``name`` (``google``: the newest version found); a TaxonomyError
    that lists what exists and how to get more when it is not found."""
    match = _NAME.match(name)
    if match is None:
        raise TaxonomyError(f"{name!r} is not a taxonomy name (kind or kind@version)")
    kind, version = match.group("kind").lower(), match.group("version")
    known = available(folders)
    candidates = [n for n in known if n.kind == kind and version in (None, n.version)]
    if candidates:
        return max(candidates, key=lambda n: n.version)
    have = ", ".join(n.name for n in known) or "none"
    close = difflib.get_close_matches(kind, sorted({*OFFICIAL, *(n.kind for n in known)}), n=1)
    if close and close[0] != kind:
        raise TaxonomyError(
            f"no taxonomy named {name!r}: did you mean {close[0]!r}? (found: {have})"
        )
    where = ", ".join(str(f) for f in (taxonomy_folders() if folders is None else folders))
    how = (
        f"`llmcat taxonomy fetch {kind}` downloads it"
        if kind in OFFICIAL
        else f"known names: {', '.join(OFFICIAL)}"
    )
    raise TaxonomyError(
        f"no taxonomy named {name!r} (found: {have}; looked in {where or 'no folder'}). "
        f"{how}; `llmcat taxonomy add FILE` keeps a file you have; or give a file path"
    )


def taxonomy_path(ref: str | Path) -> Path:
    """The file of ``ref``: a path as given, or the file a name stands for."""
    path = Path(ref)
    return resolve(str(ref)).path if not path.exists() and is_name(str(ref)) else path


__all__ = [
    "OFFICIAL",
    "NamedTaxonomy",
    "available",
    "is_name",
    "recognise",
    "resolve",
    "taxonomy_path",
]
