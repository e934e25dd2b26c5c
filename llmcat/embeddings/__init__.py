"""Text embeddings for the ``shortlist`` and ``embedding`` strategies and for mapping."""
