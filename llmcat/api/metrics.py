"""The server's Prometheus metrics, in a registry of its own (two apps in one process never
share counts)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: latency buckets in seconds: an embedder call is ~0.1 s, a model call up to the deadline
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    """Requests by endpoint and status, latency, products, embedder batch sizes, errors by
    kind, cache hits, products in flight."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "llmcat_api_requests", "HTTP requests answered", ["endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            "llmcat_api_request_seconds",
            "Time from a request's arrival to its answer",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.products = Counter(
            "llmcat_api_products", "Products answered", ["endpoint"], registry=r
        )
        self.batch_size = Histogram(
            "llmcat_api_embed_batch_size",
            "Product texts embedded together in one embedder call (micro-batching)",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "llmcat_api_errors",
            "Errors by kind: a request's (invalid, too_large, unauthorised, overloaded, "
            "deadline) or a product's (its error type)",
            ["kind"],
            registry=r,
        )
        self.cache_hits = Counter(
            "llmcat_api_cache_hits", "Products answered from the model-call cache", registry=r
        )
        self.pending = Gauge(
            "llmcat_api_pending_products", "Products admitted and not yet answered", registry=r
        )
        self.in_flight = Gauge(
            "llmcat_api_requests_in_flight",
            "HTTP requests received and not yet answered",
            registry=r,
        )
        # every request to /v1/ the app received and every one it finished (answered, or its
        # client left): equal once the server has stopped, which the log says at shutdown
        self.received = 0
        self.finished = 0

    def text(self) -> bytes:
        """Everything, in Prometheus's text format."""
        return generate_latest(self.registry)
