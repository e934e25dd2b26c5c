"""Which columns of an input are which product fields, and which become attributes (pure).

A raw catalogue export has columns the model must never see (a gold ``category`` column leaks
the answer) and fields under other names (``product_name``, ``pid``). ``Columns`` says it once:
``Columns.parse("title=product_name,id=pid", "brand_name,colour")``, the CLI's ``--columns`` and
``--attributes``. With a mapping, only the columns it names are product fields; without one, the
fields under their own names are (``title`` also as ``name`` or ``product_name``). Other columns
reach a product only as the attributes named; ``attributes="*"`` makes every other column an
attribute, as files were read before.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal

from llmcat.errors import ConfigError

#: product fields a column can be mapped to
FIELDS = ("id", "title", "description", "brand", "attributes", "image_urls")
#: other names a title is found under when no column is mapped to it (``input``: the attribute
#: benchmarks' product text)
TITLE_ALIASES = ("name", "product_name", "input")
#: other names of the attributes column (a specification table: ``llmcat.io.specifications``)
ATTRIBUTE_ALIASES = ("product_specifications", "specifications", "specs")
#: other names of an id column, in the order they are looked for (a catalogue's own ids travel
#: to the results, so they can be joined back)
ID_ALIASES = ("product_id", "sku", "uniq_id", "pid", "item_id")
_ALIASES = {"title": TITLE_ALIASES, "attributes": ATTRIBUTE_ALIASES, "id": ID_ALIASES}


@dataclass(frozen=True)
class Columns:
    """Product field -> column name, and the columns that become attributes (``"*"``: all the
    others)."""

    fields: Mapping[str, str] = field(default_factory=dict)
    attributes: tuple[str, ...] | Literal["*"] = ()
    #: how a caller makes an unused column an attribute, said beside the unused ones (None: no
    #: way, as for extract, whose attribute columns are its category only)
    hint: str | None = "--attributes NAMES, or '*' for all"
    #: a column that, where a record has it, becomes the attribute of that name (extract's
    #: ``category``: never product text, and a file without it is still read)
    category: str | None = None

    @classmethod
    def parse(cls, columns: str | None = None, attributes: str | None = None) -> Columns:
        """From ``"title=product_name,id=pid"`` and ``"colour,size"`` (or ``"*"``)."""
        mapping: dict[str, str] = {}
        for pair in (columns or "").split(","):
            if not pair.strip():
                continue
            name, sep, column = (part.strip() for part in pair.partition("="))
            if not sep or not column:
                raise ConfigError(f"--columns takes FIELD=COLUMN pairs, got {pair.strip()!r}")
            if name not in FIELDS:
                raise ConfigError(
                    f"--columns: {name!r} is not a product field; use {', '.join(FIELDS)}"
                )
            if name in mapping:
                raise ConfigError(f"--columns maps {name!r} twice")
            mapping[name] = column
        chosen: tuple[str, ...] | Literal["*"]
        if attributes is not None and attributes.strip() == "*":
            chosen = "*"
        else:
            chosen = tuple(a.strip() for a in (attributes or "").split(",") if a.strip())
        return cls(mapping, chosen)

    def check(self, columns: Collection[str], where: object, *, fixed: bool = True) -> None:
        """ConfigError when a file whose records have ``columns`` cannot give what was asked
        (naming what is needed and the file's columns): ``--columns`` mapping fields but no
        title (every row would be an error record), and, for a file whose columns are fixed
        (``fixed``: a CSV header, not one JSON record's keys), a mapped or ``--attributes``
        column it lacks (ignored silently before)."""
        names = ", ".join(str(c) for c in columns if c) or "none"
        if self.fields and "title" not in self.fields:
            mapped = ",".join(f"{k}={v}" for k, v in self.fields.items())
            raise ConfigError(
                f"{where}: --columns {mapped} maps no title column, and every product needs a "
                f"title: add title=COLUMN (columns here: {names})"
            )
        if not fixed:
            return
        missing = [f"{k}={v}" for k, v in self.fields.items() if v not in columns]
        if missing:
            raise ConfigError(
                f"{where}: --columns {','.join(missing)} names columns it does not have "
                f"(columns here: {names})"
            )
        if self.attributes != "*":
            absent = [a for a in self.attributes if a not in columns]
            if absent:
                raise ConfigError(
                    f"{where}: --attributes {','.join(absent)} names columns it does not have "
                    f"(columns here: {names})"
                )

    def column_of(self, name: str, record: Mapping[str, object]) -> str | None:
        """The column that holds field ``name`` in ``record``, if any: with a mapping, only the
        columns it names; without, the fields under their own names (and a title's aliases)."""
        if self.fields:
            column = self.fields.get(name)
            return column if column is not None and column in record else None
        if name in record:
            return name
        return next((alias for alias in _ALIASES.get(name, ()) if alias in record), None)

    def select(self, record: Mapping[str, object]) -> dict[str, object]:
        """The record with mapped columns under their field names, and only the chosen other
        columns (``inputs`` makes them attributes)."""
        out: dict[str, object] = {}
        used: set[str] = set()
        for name in FIELDS:
            column = self.column_of(name, record)
            if column is not None:
                out[name] = record[column]
                used.add(column)
        for key in self._chosen(record, used):
            out[key] = record[key]
        return out

    def _chosen(self, record: Mapping[str, object], used: set[str]) -> list[str]:
        others = [key for key in record if key not in used and key not in FIELDS]
        if self.attributes == "*":
            return others
        return [k for k in others if k in self.attributes or k == self.category]

    def describe(self, record: Mapping[str, object]) -> str:
        """One line saying which columns of ``record`` are used for what, and which are not."""
        parts = []
        used: set[str] = set()
        for name in FIELDS:
            column = self.column_of(name, record)
            if column is not None:
                used.add(column)
                parts.append(name if column == name else f"{name} <- {column}")
        chosen = self._chosen(record, used)
        ignored = [k for k in record if k not in used and k not in FIELDS and k not in chosen]
        line = f"columns: {', '.join(parts) or 'none'}; attributes: {', '.join(chosen) or 'none'}"
        if ignored:
            line += f"; not used: {', '.join(ignored)}"
            line += f" ({self.hint})" if self.hint else ""
        return line


__all__ = ["ATTRIBUTE_ALIASES", "FIELDS", "TITLE_ALIASES", "Columns"]
