"""Classification: ``Classifier`` puts products into categories of a taxonomy (strategies live in
``llmcat.strategies``)."""

from llmcat.classify.classifier import Classifier

__all__ = ["Classifier"]
