"""Which attributes to extract, per category: from the caller, a schema file or examples.

A schema file is JSON (docs/attributes.md)::

    {"attributes": [{"name": "color", "description": "main colour",
                     "values": ["Black", "White"], "multiple": false}],
     "categories": {"Shoes": ["color", {"name": "size"}]}}

``attributes`` apply to every product; ``categories`` add attributes (a name from
``attributes`` or a whole spec) for the products of that category. A spec without ``values``
is free text: its value is read from the product's text as written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llmcat.attributes.examples import AttributeExample, attributes_by_category
from llmcat.errors import ConfigError


class AttributeSpec(BaseModel):
    """One attribute: its name, what it means, its allowed values (empty: free text)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    description: str = ""
    values: tuple[str, ...] = ()
    multiple: bool = False

    @field_validator("name")
    @classmethod
    def _trimmed(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("an attribute needs a name")
        return name.strip()


class Schema(BaseModel):
    """The attributes of every product (``common``) and those of each category."""

    model_config = ConfigDict(frozen=True)

    common: tuple[AttributeSpec, ...] = ()
    categories: Mapping[str, tuple[AttributeSpec, ...]] = Field(default_factory=dict)

    def for_category(self, category: str | None) -> list[AttributeSpec]:
        """The attributes a product of ``category`` gets: the common ones, then its category's
        (a category the schema lacks takes its nearest listed ancestor's by id: ``bt-10-3-3``
        -> ``bt-10-3`` -> ``bt-10``; a product of no category, only the common ones)."""
        own = self.own(category) if category else None
        merged = {spec.name: spec for spec in (*self.common, *(own or ()))}
        return list(merged.values())

    def own(self, category: str) -> tuple[AttributeSpec, ...] | None:
        """``category``'s own attributes, or its nearest listed ancestor's (None: neither)."""
        parts = category.split("-")
        while parts:
            found = self.categories.get("-".join(parts))
            if found is not None:
                return found
            parts.pop()
        return None

    def every(self) -> list[AttributeSpec]:
        """Every attribute the schema names, common ones first (one per name)."""
        merged = {spec.name: spec for spec in (*self.common, *self._every_category())}
        return list(merged.values())

    def _every_category(self) -> Iterable[AttributeSpec]:
        seen: set[str] = set()
        for specs in self.categories.values():
            for spec in specs:
                if spec.name not in seen:
                    seen.add(spec.name)
                    yield spec

    @property
    def names(self) -> list[str]:
        """Every attribute name, common ones first."""
        return (
            [s.name for s in self.for_category(None)]
            if not self.common
            else [s.name for s in self.common]
            + [s.name for s in self._every_category() if s not in self.common]
        )

    @classmethod
    def from_names(cls, names: str | Sequence[str]) -> Schema:
        """Free-text attributes from ``"color,material"`` or a list of names."""
        given = names.split(",") if isinstance(names, str) else list(names)
        specs = [AttributeSpec(name=n.strip()) for n in given if n.strip()]
        if not specs:
            raise ConfigError("--attributes names no attribute")
        return cls(common=tuple(specs))

    @classmethod
    def builtin(cls) -> Schema:
        """Color and Material with the values llmcat knows (``builtin_schema.json``): what a
        title states is read without examples. Measured on titles whose product lists the
        attribute, the value read is the listed one (or part of it) for Color 0.95 and
        Material 0.95 of Flipkart's, 0.94 and 0.92 of OA-Mine's (docs/attributes.md)."""
        return _builtin()

    @classmethod
    def from_file(cls, path: Path) -> Schema:
        """A schema file (see the module docstring); ConfigError naming the file and the
        field when it does not read."""
        return cls.from_json(read_json(path), path)

    @classmethod
    def from_json(cls, data: object, path: object) -> Schema:
        """A schema from a schema file's decoded JSON; ConfigError naming ``path``."""
        if isinstance(data, list):
            data = {"attributes": data}
        if not isinstance(data, dict) or not set(data) <= {"attributes", "categories"}:
            raise ConfigError(f"{path}: a schema is an object with 'attributes' and 'categories'")
        attributes, listed = data.get("attributes", []), data.get("categories") or {}
        if not isinstance(attributes, list) or not isinstance(listed, dict):
            raise ConfigError(
                f"{path}: 'attributes' is a list of attributes and 'categories' maps a category "
                "to a list of attributes"
            )
        common = tuple(_spec(s, f"{path}: attributes[{i}]") for i, s in enumerate(attributes))
        named = {spec.name: spec for spec in common}
        categories: dict[str, tuple[AttributeSpec, ...]] = {}
        for category, specs in listed.items():
            if not isinstance(specs, list):
                raise ConfigError(f"{path}: categories.{category} is not a list of attributes")
            categories[str(category)] = tuple(
                named[s]
                if isinstance(s, str) and s in named
                else _spec(s, f"{path}: categories.{category}[{i}]")
                for i, s in enumerate(specs)
            )
        schema = cls(common=common, categories=categories)
        if not schema.every():
            raise ConfigError(f"{path}: the schema names no attribute")
        return schema

    @classmethod
    def learned(cls, examples: Iterable[AttributeExample]) -> Schema:
        """Each category's attributes as its labelled products have them; an attribute whose
        examples hold few distinct values is still free text (values are read, not chosen)."""
        per_category = attributes_by_category(examples)
        return cls(
            categories={
                category: tuple(AttributeSpec(name=name) for name in names)
                for category, names in per_category.items()
            }
        )


@lru_cache(maxsize=1)
def _builtin() -> Schema:
    return Schema.from_file(Path(__file__).with_name("builtin_schema.json"))


def read_json(path: Path) -> object:
    """A JSON file's content; ConfigError naming the file when it cannot be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the schema file ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None


def _spec(given: object, where: str) -> AttributeSpec:
    """An attribute from a name or a spec object; ConfigError naming ``where`` and the field."""
    try:
        if isinstance(given, str):
            return AttributeSpec(name=given)
        return AttributeSpec.model_validate(given)
    except ValidationError as exc:
        first = exc.errors()[0]
        place = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{where}{'.' + place if place else ''}: {first['msg']}") from None


__all__ = ["AttributeSpec", "Schema"]
