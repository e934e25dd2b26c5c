"""Files in and out: reading products (``inputs``, ``columns``, ``specifications``, ``tables``),
writing results crash-safe and resumable (``output``), and the review loop (``review``)."""

from llmcat.io.columns import Columns
from llmcat.io.inputs import InputScan, Item, ProductLike, coerce_product, read_records, scan_input
from llmcat.io.output import ResultWriter
from llmcat.io.review import ReviewWriter

__all__ = [
    "Columns",
    "InputScan",
    "Item",
    "ProductLike",
    "ResultWriter",
    "ReviewWriter",
    "coerce_product",
    "read_records",
    "scan_input",
]
