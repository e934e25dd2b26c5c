"""Mapping one taxonomy onto another: the mapper, the optional LLM judge and known pairs."""
