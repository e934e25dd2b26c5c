"""Shopify's attributes per category, with their allowed values, as a ``Schema``; and
``schema_from``, what ``--attributes`` names (names, a schema file or Shopify's file).

The file is Shopify's product taxonomy data (github.com/Shopify/product-taxonomy, MIT) in one
JSON object: ``attributes`` = ``{id: {"name", "description", "values": [...]}}`` and
``categories`` = ``{"gid://shopify/TaxonomyCategory/<id>": [attribute ids]}``, every category
with all its attributes (inherited ones included). It is found in the taxonomy folders
(``llmcat.taxonomy.names``: ``LLMCAT_TAXONOMY_DIR``, then the cache's ``taxonomies``) as
``shopify_attributes*.json``, the newest name first, or named with ``--attributes FILE``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeGuard

from llmcat.attributes.schema import AttributeSpec, Schema, read_json
from llmcat.errors import ConfigError

#: the prefix of Shopify's category ids in the attributes file (the taxonomy's ids lack it)
GID_PREFIX = "gid://shopify/TaxonomyCategory/"
#: Shopify's catch-all value: a word any text may hold, never read as a value
CATCH_ALL = "Other"


def is_shopify_attributes(data: object) -> TypeGuard[Mapping[str, object]]:
    """Whether decoded JSON is Shopify's attributes file (not a schema file)."""
    return (
        isinstance(data, Mapping)
        and isinstance(data.get("attributes"), Mapping)
        and isinstance(data.get("categories"), Mapping)
    )


def shopify_schema(data: Mapping[str, object], where: object = "Shopify's attributes") -> Schema:
    """Each Shopify category's attributes with their allowed values (``Other`` left out), keyed
    by the taxonomy's category ids (``aa-1``)."""
    attributes, categories = data.get("attributes"), data.get("categories")
    if not isinstance(attributes, Mapping) or not isinstance(categories, Mapping):
        raise ConfigError(f"{where}: not Shopify's attributes file")
    specs: dict[str, AttributeSpec] = {}
    for key, given in attributes.items():
        if not isinstance(given, Mapping) or not isinstance(given.get("values"), list):
            raise ConfigError(f"{where}: attributes.{key} has no list of values")
        specs[str(key)] = AttributeSpec(
            name=str(given.get("name") or key),
            description=str(given.get("description") or ""),
            values=tuple(str(v) for v in given["values"] if str(v) != CATCH_ALL),
        )
    per_category: dict[str, tuple[AttributeSpec, ...]] = {}
    for gid, names in categories.items():
        if not isinstance(names, list):
            raise ConfigError(f"{where}: categories.{gid} is not a list of attribute ids")
        per_category[str(gid).removeprefix(GID_PREFIX)] = tuple(
            specs[n] for n in names if n in specs and specs[n].values
        )
    return Schema(categories=per_category)


def schema_from(argument: str | Path) -> Schema:
    """``--attributes``: a schema file or Shopify's attributes file when the argument names a
    file (or ends in ``.json``), else attribute names (``color,material``)."""
    path = Path(argument)
    if path.suffix.lower() != ".json" and not path.is_file():
        return Schema.from_names(str(argument))
    data = read_json(path)
    return (
        shopify_schema(data, path) if is_shopify_attributes(data) else Schema.from_json(data, path)
    )


def is_shopify_taxonomy(path: Path) -> bool:
    """Whether a taxonomy file is Shopify's (its first lines say so)."""
    try:
        with path.open(encoding="utf-8") as lines:
            head = [next(lines, "") for _ in range(3)]
    except (OSError, UnicodeDecodeError):
        return False
    return any("Shopify" in line or line.startswith(GID_PREFIX) for line in head)


def find_shopify_attributes(folders: Sequence[Path]) -> Path:
    """The newest ``shopify_attributes*.json`` of the taxonomy folders; ConfigError saying
    where it was looked for and how to give it."""
    for folder in folders:
        found = sorted(folder.glob("shopify_attributes*.json"), reverse=True)
        if found:
            return found[0]
    looked = ", ".join(str(f) for f in folders) or "no folder"
    raise ConfigError(
        "--taxonomy shopify extracts Shopify's attributes, but no shopify_attributes*.json is "
        f"in the taxonomy folders ({looked}): put it there, set LLMCAT_TAXONOMY_DIR, or name it "
        "with --attributes FILE (docs/attributes.md)"
    )


__all__ = [
    "CATCH_ALL",
    "GID_PREFIX",
    "find_shopify_attributes",
    "is_shopify_attributes",
    "is_shopify_taxonomy",
    "schema_from",
    "shopify_schema",
]
