"""Columnar data: Parquet files and pandas DataFrames in and out (``pip install 'llmcat[data]'``;
pandas and pyarrow are imported on first use, never by ``import llmcat``).

- ``read_parquet``: a Parquet file's rows as records, streamed by row group; columns map to
  product fields as CSV columns do (``id, title, description, brand``, an ``attributes`` map or
  JSON object, every other non-empty column an attribute).
- ``frame_records``: a DataFrame's rows as records, the index as ``id`` when there is no ``id``
  column, so results can be matched back.
- ``with_results``: the caller's DataFrame with result columns added (same index, same order),
  typed (``FRAME_DTYPES``: float64 confidence, boolean flags, string paths ``A > B``).
- ``write_parquet`` / ``read_parquet_results``: result records as a Parquet file and back; fields
  whose keys depend on the data (each result's ``experts``) are JSON text in their column.
- ``write_csv_results`` / ``read_csv_results``: result records as a CSV file a spreadsheet shows
  and back (no pandas needed): the product and its answer first, paths and alternatives as
  text, a missing value as an empty cell.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, Protocol, TypeVar

from pydantic import BaseModel

from llmcat.errors import ConfigError
from llmcat.io.cells import formula_text, spreadsheet_safe
from llmcat.io.columns import Columns

#: how a path is written in a cell
PATH_JOIN = " > "
#: result fields stored as JSON text: their keys are category ids, one struct field each otherwise
JSON_FIELDS = ("experts",)
#: the columns a DataFrame gains, per kind of result: column -> result field
CLASSIFICATION_COLUMNS = {
    "category_id": "category_id",
    "path": "path",
    "confidence": "confidence",
    "needs_review": "needs_review",
    "alternatives": "alternatives",
    "error": "error",
}
COPY_COLUMNS = {
    "copy_title": "title",
    "copy_bullets": "bullets",
    "copy_body": "body",
    "copy_flagged": "flagged",
    "copy_findings": "findings",
    "copy_source": "source",
    "error": "error",
}

#: result columns of ``Extractor.extract_frame`` (beside one ``value_<attribute>`` column each)
EXTRACT_COLUMNS = {
    "extract_category": "category",
    "extract_attributes": "attributes",
    "extract_dropped": "dropped",
    "error": "error",
}

#: DataFrame dtypes of result fields (lists and objects stay Python objects): ``.describe()``
#: and filters work on them; a failed item has NaN confidence, False flags, missing strings.
FRAME_DTYPES: dict[str, object] = {
    "confidence": "float64",
    "needs_review": bool,
    "flagged": bool,
    "category_id": "string",
    "path": "string",
    "error": "string",
    "title": "string",
    "body": "string",
    "source": "string",
}


def need(module: str) -> ModuleType:
    """Import pandas or pyarrow, or say which extra brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"{module.split('.')[0]} is needed for Parquet and DataFrames: "
            "pip install 'llmcat[data]'"
        ) from None


def read_parquet(file: Path) -> Iterator[dict[str, object]]:
    """The rows of a Parquet file as records, one row group at a time."""
    pq = need("pyarrow.parquet")
    try:
        reader = pq.ParquetFile(file)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid and OSError subclasses
        raise ConfigError(f"{file} is not a readable Parquet file: {exc}") from None

    def rows() -> Iterator[dict[str, object]]:
        n = 0
        for batch in reader.iter_batches(batch_size=4096):
            for row in batch.to_pylist(maps_as_pydicts="strict"):
                n += 1
                record = row_record(row)
                record.setdefault("id", str(n))
                yield record

    return rows()


def row_record(row: Mapping[str, object], columns: Columns | None = None) -> dict[str, object]:
    """One Arrow row (``to_pylist(maps_as_pydicts="strict")``) as a product record, empty cells
    dropped, its columns chosen as everywhere (``columns``; None: ``Columns()``, the product's
    own fields)."""
    record = {k: _plain(v) for k, v in row.items() if k and v not in (None, "")}
    return (columns or Columns()).select(record)


def _plain(value: object) -> object:
    """A map or struct without its empty fields (Arrow gives a struct every key any row has);
    other values as they are. Rows come from ``to_pylist(maps_as_pydicts="strict")``."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if v not in (None, "")}
    return value


class Frame(Protocol):
    """What llmcat uses of a pandas DataFrame (pandas is an optional install)."""

    @property
    def index(self) -> Iterable[Hashable]: ...

    @property
    def columns(self) -> Iterable[Hashable]: ...

    def to_dict(self, orient: Literal["records"]) -> list[dict[str, object]]: ...

    def copy(self: FrameT) -> FrameT: ...


FrameT = TypeVar("FrameT", bound=Frame)


def frame_records(frame: Frame, columns: Columns | None = None) -> list[dict[str, object]]:
    """A DataFrame's rows as records, their columns chosen as the CLI chooses a file's
    (``columns``; None: ``Columns()``, the product's own fields, so a gold category column
    never reaches a prompt); without an ``id`` column the index is the id."""
    df: Any = frame  # a pandas DataFrame: pandas is not typed
    if not (hasattr(frame, "to_dict") and hasattr(frame, "index")):
        raise ConfigError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if df.columns.has_duplicates:
        raise ConfigError("the DataFrame has duplicate column names")
    chosen = columns or Columns()
    records = [chosen.select(record) for record in df.to_dict(orient="records")]
    for record, index in zip(records, df.index, strict=True):
        if "id" not in record:
            record["id"] = str(index)
    return list(records)


def with_results(
    frame: FrameT, results: Sequence[BaseModel], columns: Mapping[str, str], prefix: str = ""
) -> FrameT:
    """A copy of ``frame`` with one column per entry of ``columns`` (named ``prefix + column``),
    row for row; ConfigError when a column would overwrite one of the caller's."""
    df: Any = frame  # a pandas DataFrame: pandas is not typed
    pd = need("pandas")
    names = {prefix + c: field for c, field in columns.items()}
    clash = sorted(set(names) & {str(c) for c in df.columns})
    if clash:
        raise ConfigError(
            f"the DataFrame already has column(s) {', '.join(clash)}; pass prefix='llmcat_' "
            "(or another) to name the result columns apart"
        )
    out = df.copy()
    dumped = [r.model_dump(mode="json") for r in results]
    for name, field in names.items():
        values = [_cell(d, field) for d in dumped]
        kind = FRAME_DTYPES.get(field, object)
        if field == "path":  # "A > B > C", as in taxonomy files
            values = [" > ".join(v) if isinstance(v, list) else v for v in values]
        if kind is bool:
            values = [bool(v) for v in values]
        out[name] = pd.Series(values, index=df.index, dtype=kind)
    copied: FrameT = out
    return copied


def with_columns(frame: FrameT, columns: Mapping[str, Sequence[object]]) -> FrameT:
    """``frame`` with these columns added (text or missing values), row for row; ConfigError
    when one would overwrite one of the caller's."""
    df: Any = frame  # a pandas DataFrame: pandas is not typed
    pd = need("pandas")
    clash = sorted(set(columns) & {str(c) for c in df.columns})
    if clash:
        raise ConfigError(
            f"the DataFrame already has column(s) {', '.join(clash)}; pass prefix='llmcat_' "
            "(or another) to name the result columns apart"
        )
    out = df.copy()
    for name, values in columns.items():
        out[name] = pd.Series(list(values), index=df.index, dtype="string")
    copied: FrameT = out
    return copied


def _cell(record: Mapping[str, object], field: str) -> object:
    if field == "error":
        error = record.get("error")
        if not isinstance(error, Mapping):
            return None if error is None else str(error)
        return f"{error.get('type', 'Error')}: {error.get('message', '')}"
    return record.get(field)


def products_table(products: Sequence[Any]) -> Any:
    """Products as a pyarrow Table (``id, title, description, brand, attributes``), the
    attributes as a map: a map keeps each product's own order, where a struct (what Arrow makes
    of a dict) gives every row one order, and a product's first attributes are part of its text."""
    pa = need("pyarrow")
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("title", pa.string()),
            ("description", pa.string()),
            ("brand", pa.string()),
            ("attributes", pa.map_(pa.string(), pa.string())),
        ]
    )
    rows = [
        {
            "id": p.id,
            "title": p.title,
            "description": p.description,
            "brand": p.brand,
            "attributes": list(p.attributes.items()),
        }
        for p in products
    ]
    return pa.Table.from_pylist(rows, schema=schema)


def _arrow_types() -> dict[str, object]:
    """The Arrow type of each result column, fixed so that every block of a distributed run
    has the same schema (an all-empty block would otherwise infer ``null``)."""
    pa = need("pyarrow")
    path = pa.list_(pa.string())
    return {
        "category_id": pa.string(),
        "path": path,
        "confidence": pa.float64(),
        "needs_review": pa.bool_(),
        "alternatives": pa.list_(
            pa.struct([("category_id", pa.string()), ("path", path), ("probability", pa.float64())])
        ),
        "error": pa.string(),
        "copy_title": pa.string(),
        "copy_bullets": path,
        "copy_body": pa.string(),
        "copy_flagged": pa.bool_(),
        "copy_findings": pa.list_(
            pa.struct([("kind", pa.string()), ("text", pa.string()), ("field", pa.string())])
        ),
        "copy_source": pa.string(),
    }


def with_arrow_results(
    table: Any, results: Sequence[BaseModel], columns: Mapping[str, str], prefix: str = ""
) -> Any:
    """``with_results`` for a pyarrow Table: the table with one typed column per entry of
    ``columns``, row for row."""
    pa = need("pyarrow")
    clash = sorted({prefix + c for c in columns} & set(table.column_names))
    if clash:
        raise ConfigError(
            f"the dataset already has column(s) {', '.join(clash)}; pass prefix='llmcat_' "
            "(or another) to name the result columns apart"
        )
    types = _arrow_types()
    dumped = [r.model_dump(mode="json") for r in results]
    for column, field in columns.items():
        values = [_cell(d, field) for d in dumped]
        table = table.append_column(prefix + column, pa.array(values, type=types[column]))
    return table


def write_parquet(records: Sequence[Mapping[str, object]], path: Path) -> None:
    """Result records as one Parquet file, written to a temporary name and renamed."""
    pa = need("pyarrow")
    pq = need("pyarrow.parquet")
    rows = [
        {k: (json.dumps(v) if k in JSON_FIELDS and v is not None else v) for k, v in r.items()}
        for r in records
    ]
    table = pa.Table.from_pylist(rows) if rows else pa.table({})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


#: the first columns of a results CSV, in this order, where its records have them: what a
#: person reads first (the product and its answer), then what it rests on
CSV_FIRST = (
    "product_id",
    "source_id",
    "title",
    "source_path",
    "path",
    "target_path",
    "confidence",
    "needs_review",
    "method",
    "alternatives",
    "bullets",
    "body",
    "flagged",
    "findings",
    "category_id",
    "target_id",
    "error",
)
#: fields no spreadsheet cell shows usefully: in JSONL and Parquet outputs only
CSV_LEFT_OUT = ("experts", "usage", "rejected_copy")
_ALTERNATIVE = re.compile(r"^(?P<path>.*) \((?P<p>[0-9.eE+-]+)\)$")


def write_csv_results(records: Sequence[Mapping[str, object]], path: Path) -> None:
    """Result records as one CSV file a spreadsheet shows: the product and its answer first
    (``CSV_FIRST``), paths as ``A > B``, alternatives as ``A > B (0.21); C (0.05)``, bullets one
    per line of their cell, findings and an error as text; the blobs of ``CSV_LEFT_OUT`` only in
    JSONL and Parquet. Written to a temporary name and renamed; None is an empty cell."""
    seen: dict[str, None] = {}
    for record in records:
        seen.update(dict.fromkeys(k for k in record if k not in CSV_LEFT_OUT))
    columns = [c for c in CSV_FIRST if c in seen] + [c for c in seen if c not in CSV_FIRST]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for record in records:
            writer.writerow({k: spreadsheet_safe(csv_cell(k, v)) for k, v in record.items()})
    os.replace(tmp, path)


def csv_cell(field: str, value: object) -> object:
    """One result field as a CSV cell (``write_csv_results``, which then neutralises a cell
    that a spreadsheet would run as a formula: ``output.spreadsheet_safe``);
    ``read_csv_results`` reads the path, alternatives, bullets, findings and error back."""
    if value is None:
        return ""
    if field == "confidence" and isinstance(value, float):
        return round(value, 4)
    if field in ("path", "source_path", "target_path") and isinstance(value, list):
        return PATH_JOIN.join(value)
    if field == "alternatives" and isinstance(value, list):
        return "; ".join(
            f"{_alternative_path(a)} ({float(a.get('probability') or 0.0):.4g})" for a in value
        )
    if field == "bullets" and isinstance(value, list):
        return "\n".join(value)
    if field in ("findings", "rejected_findings") and isinstance(value, list):
        return "; ".join(f"{f.get('kind')}: {f.get('text')}" for f in value)
    if field == "used_attributes" and isinstance(value, list):
        return ", ".join(value)
    if field == "error" and isinstance(value, dict):
        return f"{value.get('type')}: {value.get('message')}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return value


def _alternative_path(alternative: Mapping[str, object]) -> str:
    path = alternative.get("path") or alternative.get("target_path") or ""
    return PATH_JOIN.join(path) if isinstance(path, list) else str(path)


def read_csv_results(path: Path) -> list[dict[str, object]]:
    """Records written by ``write_csv_results``, for resuming: path, alternatives (their ids
    as their paths), bullets, findings and error parsed back, other JSON cells too, empty cells
    as None (scalars stay text: the records are read back for resuming, not for their values)."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{k: _parsed_cell(k, v) for k, v in row.items()} for row in rows]


def _parsed_cell(field: str, value: str | None) -> object:
    if not value:
        return None
    value = str(formula_text(value))  # the text as it was before write_csv_results kept it safe
    if field == "path":
        return value.split(PATH_JOIN)
    if field == "alternatives" and not value.startswith("["):
        parsed = []
        for part in value.split("; "):
            found = _ALTERNATIVE.match(part)
            if found is None:
                continue
            text, p = found.group("path"), float(found.group("p"))
            parsed.append(
                {"category_id": text, "path": text.split(PATH_JOIN), "probability": p}
                | {"target_id": text, "target_path": text}
            )
        return parsed
    if field == "bullets":
        return value.split("\n")
    if field in ("findings", "rejected_findings") and not value.startswith("["):
        kinds = [part.partition(": ") for part in value.split("; ")]
        return [{"kind": kind, "text": text} for kind, _, text in kinds]
    if field == "error" and not value.startswith("{"):
        kind, _, message = value.partition(": ")
        return {"type": kind, "message": message}
    if value[0] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def read_parquet_results(path: Path) -> list[dict[str, object]]:
    """Records written by ``write_parquet``, with their JSON fields parsed back."""
    pq = need("pyarrow.parquet")
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow's own errors
        raise ConfigError(f"{path} is not a readable Parquet file: {exc}") from None
    for row in rows:
        for key in JSON_FIELDS:
            if isinstance(row.get(key), str):
                row[key] = json.loads(row[key])
    return list(rows)


__all__ = [
    "CLASSIFICATION_COLUMNS",
    "COPY_COLUMNS",
    "EXTRACT_COLUMNS",
    "frame_records",
    "products_table",
    "read_parquet",
    "read_parquet_results",
    "row_record",
    "with_arrow_results",
    "with_columns",
    "with_results",
    "write_parquet",
]
