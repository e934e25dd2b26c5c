"""Learning from labelled products: reading examples and the logistic head on frozen embeddings."""

from llmcat.learning.examples import Example, load_examples

__all__ = ["Example", "load_examples"]
