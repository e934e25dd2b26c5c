"""Mapping one taxonomy onto another: ``TaxonomyMapper`` (``mapper``) runs the pure algorithm
(``algorithm``) under ``MapOptions`` (``options``) into ``CategoryMapping`` rows (``results``);
known pairs are read by ``known_pairs``; the optional LLM judge (``judge``) depends on these,
never the reverse."""

from llmcat.mapping.known_pairs import read_pairs
from llmcat.mapping.mapper import TaxonomyMapper
from llmcat.mapping.options import MapOptions
from llmcat.mapping.results import CategoryMapping, MappedAlternative

__all__ = ["CategoryMapping", "MapOptions", "MappedAlternative", "TaxonomyMapper", "read_pairs"]
