"""Listing copy: ``Describer`` writes title, bullets and body; the copy is composed, parsed,
grounded and checked here."""

from llmcat.listing.describer import Describer

__all__ = ["Describer"]
