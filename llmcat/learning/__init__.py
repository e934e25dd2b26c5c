"""Learning from labelled products: reading examples and the logistic head on frozen embeddings."""
