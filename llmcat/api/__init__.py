"""The HTTP server (``llmcat api``; ``pip install 'llmcat[api]'``): FastAPI over a
``Service`` that holds one Classifier (and a Describer), with limits, keys, a deadline and
Prometheus metrics.

- ``create_app`` (``app``): the ASGI app, for uvicorn or Ray Serve;
- ``Service`` (``service``): admission, deadline and readiness, free of HTTP;
- ``ApiConfig`` (``config``): limits and keys; ``Metrics`` (``metrics``).
"""

from llmcat.api.app import create_app
from llmcat.api.config import ApiConfig, load_keys
from llmcat.api.metrics import Metrics
from llmcat.api.service import DeadlineExceeded, Overloaded, Service

__all__ = [
    "ApiConfig",
    "DeadlineExceeded",
    "Metrics",
    "Overloaded",
    "Service",
    "create_app",
    "load_keys",
]
