"""Attribute values (colour, material, size, ...) read from each product's own text:
``Extractor`` (extractor.py) over a ``Schema`` (schema.py) of the caller's, a schema file's or
one learned from labelled ``AttributeExample``s (examples.py), with a ``SpanTagger``
(tagger.py) learned from them over the candidate runs of the text (spans.py)."""

from llmcat.attributes.examples import AttributeExample, read_examples
from llmcat.attributes.extractor import Extractor
from llmcat.attributes.schema import AttributeSpec, Schema
from llmcat.attributes.tagger import SpanTagger

__all__ = [
    "AttributeExample",
    "AttributeSpec",
    "Extractor",
    "Schema",
    "SpanTagger",
    "read_examples",
]
