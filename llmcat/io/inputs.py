"""Turning what users hand us into clean ``Product`` objects, and reading product files.

Cleaning rules (documented in docs/behaviour.md, applied to every product before prompting):

- control characters, invalid code points and zero-width characters are removed; runs of
  whitespace fold to one space (the description keeps its line breaks);
- ``title`` is cut to 300 characters, ``description`` to 4,000, ``brand`` to 100, every attribute
  value to 300 and key to 100, and at most 60 attributes are kept; a cut text ends in "…";
- a product whose title is empty after cleaning raises ``InputError`` (one item's error, never the
  batch's).
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from llmcat.errors import ConfigError, InputError
from llmcat.io.columns import ATTRIBUTE_ALIASES, TITLE_ALIASES, Columns
from llmcat.io.specifications import parse_specifications
from llmcat.types import Product

#: the path that means standard input (``--input -``) or output (``--output -``)
STDIO = "-"

MAX_TITLE = 300
MAX_DESCRIPTION = 4000
MAX_BRAND = 100
MAX_ATTRIBUTES = 60
MAX_ATTRIBUTE_KEY = 100
MAX_ATTRIBUTE_VALUE = 300

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")
# Zero-width and invisible formatting characters: a title made only of these is empty.
_INVISIBLE = re.compile(r"[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


#: What the workers accept as a product: a Product, a title, or a mapping of Product fields.
ProductLike = Product | str | Mapping[str, object]
#: A batch item: a product, or an InputError that a reader put at a line it could not read.
Item = ProductLike | InputError


def item_id(item: object, index: int) -> str:
    """The caller's id of an item when it has one, else its position counted from 1."""
    if isinstance(item, Product) and item.id:
        return item.id
    if isinstance(item, InputError) and item.product_id:
        return item.product_id
    if isinstance(item, Mapping) and item.get("id") not in (None, ""):
        return str(item["id"])
    return str(index + 1)


def clean_text(text: str, limit: int, *, keep_newlines: bool = False) -> str:
    """Remove control characters, fold whitespace and cut to ``limit`` characters."""
    text = _INVISIBLE.sub("", _CONTROL.sub(" ", text))
    if keep_newlines:
        lines = [_SPACES.sub(" ", ln).strip() for ln in text.split("\n")]
        text = "\n".join(ln for ln in lines if ln)
    else:
        text = _SPACES.sub(" ", text.replace("\n", " ")).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.8:
        cut = cut[:space]
    return cut.rstrip() + "…"


def clean_product(product: Product) -> Product:
    """The product with the cleaning rules applied; InputError when no title is left."""
    title = clean_text(product.title, MAX_TITLE)
    if not title:
        raise InputError(f"product {product.id or '?'} has an empty title")
    attributes: dict[str, str] = {}
    for key, value in list(product.attributes.items())[:MAX_ATTRIBUTES]:
        k = clean_text(str(key), MAX_ATTRIBUTE_KEY)
        v = clean_text(str(value), MAX_ATTRIBUTE_VALUE)
        if k and v:
            attributes[k] = v
    return product.model_copy(
        update={
            "title": title,
            "description": clean_text(product.description, MAX_DESCRIPTION, keep_newlines=True),
            "brand": clean_text(product.brand, MAX_BRAND),
            "attributes": attributes,
        }
    )


def coerce_product(item: Product | str | Mapping[str, object], index: int) -> Product:
    """A Product from a Product, a title string or a mapping; the id defaults to the position
    counted from 1 (``index + 1``), as the CLI numbers lines and rows."""
    if isinstance(item, Product):
        product = item
    elif isinstance(item, str):
        product = Product(title=item)
    elif isinstance(item, Mapping):
        try:
            product = Product.model_validate(_normalise_record(item))
        except ValidationError as exc:
            # Named by its own id when it has one: a position means nothing to a caller whose
            # items arrive in batches (Ray), and an id finds the row in any file.
            given = item.get("id")
            where = f"product {given}" if given not in (None, "") else f"item {index + 1}"
            raise InputError(f"{where} is not a product: {_first_error(exc)}") from exc
    else:
        raise InputError(f"item {index + 1} is a {type(item).__name__}, not a product")
    if not product.id:
        product = product.model_copy(update={"id": str(index + 1)})
    return clean_product(product)


def _normalise_record(record: Mapping[str, object]) -> dict[str, object]:
    """Accept common column spellings and stringify attribute values."""
    data = {k: v for k, v in record.items() if not _missing(v)}
    for alias in TITLE_ALIASES:
        if "title" not in data and alias in data:
            data["title"] = data.pop(alias)
    if "id" in data:
        data["id"] = str(data["id"])
    for alias in ATTRIBUTE_ALIASES:
        if "attributes" not in data and alias in data:
            data["attributes"] = data.pop(alias)
    attributes: dict[str, str] | None = None
    if "attributes" in data:
        attributes = data["attributes"] = parse_specifications(data["attributes"])
        # An export's empty brand column beside a specification that names it
        named = next((v for k, v in attributes.items() if k.lower() == "brand"), None)
        if named and not _text(data.get("brand", "")).strip():
            data["brand"] = named
    for key in ("title", "description", "brand"):
        if key in data and not isinstance(data[key], str):
            data[key] = _text(data[key])
    if isinstance(urls := data.get("image_urls"), str):
        data["image_urls"] = [u for u in urls.split() if u]
    known = {"id", "title", "description", "brand", "attributes", "image_urls"}
    extra = {k: v for k, v in data.items() if k not in known}
    if extra:
        merged = dict(attributes or {})
        merged.update({str(k): _text(v) for k, v in extra.items() if _text(v).strip()})
        data = {k: v for k, v in data.items() if k in known}
        data["attributes"] = merged
    return data


def _missing(value: object) -> bool:
    """None, or NaN (a missing cell of a DataFrame or a CSV read by pandas)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value: object) -> str:
    """A cell as text: whole floats without ".0" (an id or year read as a number)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ()))
    return f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid"))


RawItem = dict[str, object] | InputError


def read_records(
    path: str | Path,
    *,
    encoding: str = "utf-8",
    columns: Columns | None = None,
    report: Callable[[str], None] | None = None,
    scanned: InputScan | None = None,
) -> Iterator[RawItem]:
    """Records from a ``.jsonl``, ``.json`` (an array of objects, or one object), ``.csv`` /
    ``.tsv`` or ``.parquet`` file (``llmcat.io.tables``), streamed where the format allows: exactly
    one per input record, an unreadable one (or one with an empty or repeated id) as an
    InputError naming its line. The file is checked here, before the first record is asked for
    (it exists, is text in ``encoding``, a CSV has a title column), so a bad file is a
    ConfigError at once. A UTF-8 byte-order mark is ignored.

    Records hold Product fields; ``columns`` chooses which column is which field and which other
    columns become attributes (None: fields by their own names, every other column an
    attribute). ``report`` is told once which columns are used for what. ``scanned``: this
    file's ``scan_input``, whose decoding check is not repeated.
    """
    if str(path) == STDIO:  # JSONL lines from standard input
        return _finished(_jsonl_records(sys.stdin), columns, report)
    file = _readable(Path(path))
    suffix = file.suffix.lower()
    if suffix == ".parquet":  # binary by nature; its columns map as CSV columns do
        from llmcat.io.tables import read_parquet

        rows = ((f"row {n}", str(n), r) for n, r in enumerate(read_parquet(file), 1))
        return _finished(rows, columns, report)
    text_encoding = (scanned.codec if scanned else None) or check_encoding(file, encoding)
    if suffix == ".json":
        return _finished(_read_json(file, text_encoding), columns, report)
    if suffix in (".csv", ".tsv"):
        delimiter = "\t" if suffix == ".tsv" else ","
        located = _read_csv(file, delimiter=delimiter, encoding=text_encoding, columns=columns)
        return _finished(located, columns, report)
    return _finished(_read_jsonl(file, text_encoding), columns, report)


def _readable(file: Path) -> Path:
    """``file`` if it is an input llmcat reads: it exists, is a file of a known kind and, when
    a text format, is not binary; else the ConfigError that says what is wrong."""
    if not file.exists():
        raise ConfigError(f"input file {file} does not exist")
    if file.is_dir():
        raise ConfigError(f"input {file} is a folder; give a .jsonl, .json, .csv or .parquet file")
    suffix = file.suffix.lower()
    if suffix == ".parquet":
        return file
    if suffix not in (".jsonl", ".ndjson", ".json", ".csv", ".tsv"):
        raise ConfigError(f"cannot read {file}: use .jsonl, .json, .csv or .parquet")
    try:
        with file.open("rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise ConfigError(f"cannot read input file {file}: {exc.strerror or exc}") from None
    if b"\0" in head:
        raise ConfigError(f"input file {file} is binary, not {suffix} text")
    return file


@dataclass(frozen=True)
class InputScan:
    """What one pass over an input file found before a batch starts: the codec it decodes with
    (None: standard input, read as it comes), how many records it holds (None: not known
    cheaply), and the messages of the CSV rows the parser cannot read."""

    codec: str | None
    records: int | None
    unreadable: tuple[str, ...] = ()


#: ASCII whitespace, as ``bytes.strip`` strips it: a blank JSONL line holds only these
_BLANK = " \t\n\r\x0b\x0c"


def scan_input(
    path: str | Path, *, encoding: str = "utf-8", columns: Columns | None = None
) -> InputScan:
    """Check, decode and count an input in one pass, before anything is written: the file is
    readable, decodes whole in ``encoding`` (ConfigError with the byte offset where it does
    not), a CSV has its title column, and its unreadable rows are listed. ``read_records``
    then reads it once more, without checking again (``scanned=``)."""
    if str(path) == STDIO:
        return InputScan(None, None)
    file = _readable(Path(path))
    suffix = file.suffix.lower()
    if suffix == ".parquet":
        try:
            from llmcat.io.tables import need

            count = int(need("pyarrow.parquet").ParquetFile(file).metadata.num_rows)
        except Exception:  # the reader says what is wrong with the file
            return InputScan(None, None)
        return InputScan(None, count)
    codec = _codec(encoding)
    try:
        if suffix in (".csv", ".tsv"):
            delimiter = "\t" if suffix == ".tsv" else ","
            located = _read_csv(file, delimiter=delimiter, encoding=codec, columns=columns)
            rows, bad = 0, []
            for _, _, record in located:
                rows += 1
                if isinstance(record, InputError):
                    bad.append(str(record))
            return InputScan(codec, rows, tuple(bad))
        with file.open(encoding=codec, newline="\n") as handle:
            lines = sum(1 for line in handle if line.strip(_BLANK))
        return InputScan(codec, None if suffix == ".json" else lines)
    except UnicodeDecodeError:
        check_encoding(file, encoding)  # raises the ConfigError that names the byte
        raise


def count_records(path: str | Path, *, encoding: str = "utf-8") -> int | None:
    """How many records ``read_records`` will yield, for a progress bar: non-blank lines of a
    JSONL file, rows of a CSV (quoted newlines counted once), a Parquet file's metadata; None
    when that is not cheap (``.json``) or the file cannot be counted (the reader will say why)."""
    file = Path(path)
    suffix = file.suffix.lower()
    try:
        if suffix == ".parquet":
            from llmcat.io.tables import need

            return int(need("pyarrow.parquet").ParquetFile(file).metadata.num_rows)
        if suffix in (".jsonl", ".ndjson"):
            with file.open("rb") as handle:
                return sum(1 for line in handle if line.strip())
        if suffix in (".csv", ".tsv"):
            csv.field_size_limit(16 * 1024 * 1024)
            with file.open(encoding=encoding, newline="", errors="replace") as handle:
                rows = csv.reader(handle, delimiter="\t" if suffix == ".tsv" else ",")
                return max(sum(1 for row in rows if row) - 1, 0)
    except Exception:  # a count is a nicety: reading the file reports the real problem
        return None
    return None


#: what a reader yields: where the record is ("line 5"), its default id, the record or an error
Located = tuple[str, str, "RawItem"]


def _finished(
    items: Iterator[Located], columns: Columns | None, report: Callable[[str], None] | None
) -> Iterator[RawItem]:
    """Records with their columns chosen (``columns``; None keeps every column) and their ids
    checked: a record without an id gets its position; an empty id, or one an earlier record of
    the file already has, is an error record naming the line. ``report`` is told once, from the
    first record, which columns are used for what."""
    ids: dict[str, str] = {}
    first = True
    for where, default_id, item in items:
        if isinstance(item, InputError):
            yield item
            continue
        if first and columns is not None:  # its keys (a CSV's header is checked before)
            columns.check(list(item), where, fixed=False)
        first = False
        if report is not None:
            report((columns or Columns(attributes="*")).describe(item))
            report = None
        record = columns.select(item) if columns is not None else item
        given = record.get("id")
        if given is None or (isinstance(given, float) and math.isnan(given)):
            record["id"] = default_id
        elif not str(given).strip():
            yield InputError(f"{where}: the id is empty")
            continue
        key = _text(record["id"])
        if key in ids:
            yield InputError(f"{where}: id {key!r} is already {ids[key]}'s", product_id=key)
            continue
        ids[key] = where
        yield record


def _codec(encoding: str) -> str:
    """The codec for ``encoding``: UTF-8 drops a byte-order mark; an unknown name is a
    ConfigError."""
    import codecs

    try:
        return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    except LookupError:
        raise ConfigError(f"unknown encoding {encoding!r} (e.g. utf-8, latin-1, cp1252)") from None


def check_encoding(file: Path, encoding: str) -> str:
    """The codec to read ``file`` with, after checking that the whole file decodes with it:
    text is never decoded silently into replacement characters. UTF-8 drops a byte-order
    mark."""
    import codecs

    codec = _codec(encoding)
    decoder = codecs.getincrementaldecoder(codec)("strict")
    offset = 0  # bytes of the file before the current buffer
    with file.open("rb") as handle:
        while True:
            chunk = handle.read(1 << 20)
            pending = decoder.getstate()[0]  # the start of a character cut by the last chunk
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                buffer = pending + chunk
                at = offset - len(pending) + exc.start
                raise ConfigError(
                    f"{file} is not valid {encoding} text: byte {at} "
                    f"(0x{buffer[exc.start]:02x}) cannot be decoded; give its encoding with "
                    "--encoding (e.g. latin-1, cp1252) or convert it to UTF-8"
                ) from None
            if not chunk:
                break
            offset += len(chunk)
    return codec


def _record(value: object, where: str) -> RawItem:
    """A JSON value as a record: an object, or a bare string (a title)."""
    if isinstance(value, str):
        return {"title": value}
    if not isinstance(value, dict):
        return InputError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def _read_jsonl(file: Path, encoding: str = "utf-8-sig") -> Iterator[Located]:
    with file.open(encoding=encoding) as handle:
        yield from _jsonl_records(handle)


def _jsonl_records(handle: Iterable[str]) -> Iterator[Located]:
    """Each non-blank line of ``handle`` as a record (or an InputError naming its line)."""
    for n, line in enumerate(handle, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
            surrogate = _lone_surrogate(value)
        except json.JSONDecodeError as exc:
            yield f"line {n}", str(n), InputError(f"line {n}: not JSON ({exc.msg})")
            continue
        except (ValueError, RecursionError) as exc:  # a 5,000-digit number, deep nesting
            error = InputError(f"line {n}: not readable JSON ({type(exc).__name__}: {exc})")
            yield f"line {n}", str(n), error
            continue
        if surrogate:
            error = InputError(f"line {n}: {surrogate} holds a lone surrogate (\\ud800-\\udfff)")
            yield f"line {n}", str(n), error
            continue
        yield f"line {n}", str(n), _record(value, f"line {n}")


def _lone_surrogate(value: object, where: str = "the record") -> str:
    """Where a JSON value holds a lone surrogate (valid JSON, not valid text: no file or stream
    can hold it), or ""."""
    if isinstance(value, str):
        return where if _SURROGATE.search(value) else ""
    if isinstance(value, dict):
        for key, item in value.items():
            found = _lone_surrogate(key, f"a key of {where}") or _lone_surrogate(item, str(key))
            if found:
                return found
    if isinstance(value, list):
        for item in value:
            if found := _lone_surrogate(item, where):
                return found
    return ""


def _read_json(file: Path, encoding: str = "utf-8-sig") -> Iterator[Located]:
    try:
        value = json.loads(file.read_text(encoding=encoding))
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{file} is not JSON (line {exc.lineno}: {exc.msg}); for one object per line use .jsonl"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{file} is not readable JSON ({type(exc).__name__}: {exc})") from None
    values = value if isinstance(value, list) else [value]
    for n, item in enumerate(values, 1):
        try:
            surrogate = _lone_surrogate(item)
        except RecursionError:
            surrogate = "a value nested too deep"
        if surrogate:
            error = InputError(f"item {n}: {surrogate} holds a lone surrogate or cannot be read")
            yield f"item {n}", str(n), error
            continue
        yield f"item {n}", str(n), _record(item, f"item {n}")


#: Columns that hold a product's title, in the order they are looked for.
TITLE_COLUMNS = ("title", "name", "product_name")


def _read_csv(
    file: Path, *, delimiter: str, encoding: str = "utf-8-sig", columns: Columns | None = None
) -> Iterator[Located]:
    """The rows of a CSV file as records; the header is checked at once, the rows are read when
    asked for. A row the CSV parser cannot read (an unterminated quote swallows the rest of the
    file) becomes an InputError naming its row and line, and reading goes on with the line after
    its first."""
    csv.field_size_limit(16 * 1024 * 1024)
    with file.open(encoding=encoding, newline="") as handle:
        try:
            header = next(csv.reader(_Lines(handle), delimiter=delimiter, strict=True), None)
        except csv.Error as exc:
            raise ConfigError(f"{file}: the header line cannot be read as CSV ({exc})") from None
    if header is None or not any(h.strip() for h in header):
        raise ConfigError(f"{file} has no header line; the first line must name the columns")
    names = [h.strip() for h in header]
    title_column = columns.fields.get("title") if columns is not None else None
    titles = (title_column,) if title_column else TITLE_COLUMNS
    if columns is not None:
        columns.check(names, file)
    if not any(c in names for c in titles):
        raise ConfigError(
            f"{file} has no title column: a product's title is read from a column named "
            f"{', '.join(titles)} (columns here: {', '.join(c for c in names if c)}); "
            "say which with --columns title=COLUMN"
        )
    return _csv_rows(file, names, delimiter, encoding)


class _Lines:
    """The lines of a file for ``csv.reader``, numbered, with the lines of the record being read
    kept so that a record the parser gives up on can be read again from its second line."""

    def __init__(self, handle: Iterator[str]) -> None:
        self.handle = handle
        self.number = 0  # lines handed out so far
        self.record: list[str] = []  # the lines of the record being read
        self.again: list[str] = []  # lines to hand out again, last first

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.again.pop() if self.again else next(self.handle)
        self.number += 1
        self.record.append(line)
        return line

    def replay_after_first(self, first: int) -> None:
        """Hand out again the lines of the current record after its first one (line ``first``)."""
        self.again.extend(reversed(self.record[1:]))
        self.number = first
        self.record = []


def _csv_rows(file: Path, columns: list[str], delimiter: str, encoding: str) -> Iterator[Located]:
    with file.open(encoding=encoding, newline="") as handle:
        lines = _Lines(handle)
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        next(reader, None)  # the header, checked by _read_csv
        row = 0
        while True:
            lines.record = []
            first = lines.number + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                row += 1
                error = InputError(f"row {row} (line {first}) cannot be read as CSV: {exc}")
                yield f"row {row} (line {first})", str(row), error
                lines.replay_after_first(first)
                reader = csv.reader(lines, delimiter=delimiter, strict=True)
                continue
            if not values:
                continue  # a blank line
            row += 1
            record: dict[str, object] = {
                k: v for k, v in zip(columns, values, strict=False) if k and v not in (None, "")
            }
            yield f"row {row} (line {first})", str(row), record
