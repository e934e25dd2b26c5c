"""Taxonomies: the tree (``Taxonomy``, ``Category``) and taxonomies found by name."""

from llmcat.taxonomy.tree import Category, Taxonomy

__all__ = ["Category", "Taxonomy"]
