"""The work behind the HTTP endpoints, free of HTTP: admission (a bounded number of products
in flight), the deadline, readiness, and the status a result maps to."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import urllib.request
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Protocol, TypeVar

from llmcat.api.config import ApiConfig
from llmcat.api.metrics import Metrics
from llmcat.attributes.extractor import Extractor
from llmcat.classify.classifier import Classifier
from llmcat.errors import EndpointError
from llmcat.listing.describer import Describer
from llmcat.redact import redact
from llmcat.types import Classification, Description, ErrorRecord, Extraction, Product

log = logging.getLogger(__name__)

R = TypeVar("R", Classification, Description, Extraction)

#: a product's error type -> the status of a single-product answer (others: 500)
ERROR_STATUS = {
    "InputError": 422,
    "RateLimitError": 503,
    "TransportError": 502,
    "ServerError": 502,
    "ImagesRejected": 502,
    "BackendError": 502,
    "OutputError": 502,
}
#: the throughput is measured over the last ``THROUGHPUT_WINDOW`` seconds, or over the last
#: ``THROUGHPUT_SAMPLES`` products answered when that window holds fewer (a slow server: 0.6
#: products/s on a busy machine), within ``THROUGHPUT_MEMORY`` seconds
THROUGHPUT_WINDOW = 10.0
THROUGHPUT_SAMPLES = 20
THROUGHPUT_MEMORY = 300.0
#: how long a model server's answer to readiness is reused, in seconds
PROBE_TTL = 5.0
PROBE_TIMEOUT = 2.0
WARM_UP = Product(id="warm-up", title="warm-up product")


class Overloaded(Exception):
    """More products are waiting than the server admits; the caller retries later."""


class DeadlineExceeded(Exception):
    """A request ran out of its deadline; its work was cancelled."""


class NotServed(LookupError):
    """The endpoint's work was not configured when the server started (the message says how)."""


class Result(Protocol):
    @property
    def error(self) -> ErrorRecord | None: ...


def status_of(record: Result) -> int:
    """The HTTP status of a single product's answer."""
    if record.error is None:
        return 200
    return ERROR_STATUS.get(record.error.type, 500)


class Service:
    """A Classifier (None: attribute extraction only), a Describer made on first use and an
    Extractor when one is given, behind the endpoints. ``start`` warms them up (the
    taxonomy's vectors, the plan, the attribute tagger) and ``readiness`` says when that is
    done."""

    def __init__(
        self,
        classifier: Classifier | None,
        config: ApiConfig,
        metrics: Metrics,
        *,
        describer: Callable[[], Describer] | None = None,
        extractor: Extractor | None = None,
    ) -> None:
        self.classifier = classifier
        self.extractor = extractor
        self.config = config
        self.metrics = metrics
        self._make_describer = describer
        self._describer: Describer | None = None
        self.pending = 0
        self._ready = asyncio.Event()
        self._starting = "building the taxonomy's vectors"
        self.failure: str | None = None  # why start failed, for /readyz
        self._probe: tuple[float, str | None] = (0.0, None)
        self._answered: deque[tuple[float, int]] = deque()  # (when, products), the last window
        if classifier is not None:
            classifier.context.embed_batch_observers.append(metrics.batch_size.observe)

    # -- life ------------------------------------------------------------------------------

    async def start(self) -> None:
        """The plan and one product classified, so the first caller does not pay for the
        taxonomy's vectors (cached on disk after the first start)."""
        started = time.perf_counter()
        try:
            if self.classifier is not None:
                await self.classifier.prepare()
                warm = await self.classifier.aclassify(WARM_UP)
                if warm.error is not None:
                    log.warning("the warm-up product failed: %s", warm.error.message)
            if self.extractor is not None:
                self._starting = "learning the attribute tagger from the examples"
                await self.extractor.prepare()
        except EndpointError as exc:
            # a model server that is down or still starting: /readyz says so, and each request
            # tries it again (a failed probe is not remembered)
            log.warning("the model server cannot be used yet: %s", redact(str(exc)))
        except Exception as exc:
            self.failure = f"{type(exc).__name__}: {redact(str(exc))}"
            log.error("the server did not start: %s", self.failure)
            raise
        self._ready.set()
        log.info(
            "ready in %.1f s: %s",
            time.perf_counter() - started,
            self.classifier.context.plan.summary()
            if self.classifier is not None
            else "attribute extraction only",
        )

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def readiness(self) -> tuple[bool, str]:
        """Whether requests can be answered now, and why not."""
        if self.failure is not None:
            return False, f"failed to start: {self.failure}"
        problem = await self._model_server_problem()
        if problem is not None:
            return False, problem
        if not self.ready:
            return False, f"starting: {self._starting}"
        return True, "ready"

    async def _model_server_problem(self) -> str | None:
        """Why the model server the plan asks cannot be reached (None: it can, or none is
        asked); probed at most every ``PROBE_TTL`` seconds."""
        if self.classifier is None:
            return None
        settings = self.classifier.settings
        if not (self.classifier.context.plan.asks_llm and settings.base_url):
            return None
        at, problem = self._probe
        if time.monotonic() - at < PROBE_TTL:
            return problem
        url = settings.base_url.rstrip("/") + "/models"
        headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}

        def probe() -> str | None:
            request = urllib.request.Request(url, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT):
                    return None
            except Exception as exc:
                return f"model server {settings.base_url} unreachable: {redact(str(exc))}"

        problem = await asyncio.to_thread(probe)
        self._probe = (time.monotonic(), problem)
        return problem

    async def aclose(self) -> None:
        if self.classifier is not None:
            await self.classifier.aclose()
        if self._describer is not None:
            await self._describer.aclose()
        if self.extractor is not None:
            await self.extractor.aclose()

    # -- work ------------------------------------------------------------------------------

    async def classify(self, products: Sequence[Product]) -> list[Classification]:
        """One Classification per product, in order (errors as records)."""
        if self.classifier is None:
            raise NotServed(
                "classification is not served: start the server with --labels or --taxonomy"
            )
        return await self._run(products, "/v1/classify", self.classifier.aclassify)

    async def describe(self, products: Sequence[Product]) -> list[Description]:
        """One Description per product, in order (errors as records)."""
        if self._describer is None:
            if self._make_describer is None:
                raise NotServed("describe is not served here")
            self._describer = self._make_describer()
        return await self._run(products, "/v1/describe", self._describer.adescribe)

    async def extract(self, products: Sequence[Product]) -> list[Extraction]:
        """One Extraction per product, in order (errors as records)."""
        if self.extractor is None:
            raise NotServed(
                "attribute extraction is not served: start the server with --attribute-examples "
                "FILE or --attributes NAMES|FILE (or --taxonomy shopify for Shopify's attributes)"
            )
        return await self._run(products, "/v1/extract", self.extractor.aextract)

    async def _run(
        self, products: Sequence[Product], endpoint: str, one: Callable[[Product], Awaitable[R]]
    ) -> list[R]:
        with self._admitted(len(products)):
            # Not held until start-up is done: what a product needs that is not built yet (the
            # taxonomy's vectors) is built once, by whichever caller comes first, and the
            # others wait for it within their deadline.
            everything = asyncio.gather(*(one(p) for p in products))
            try:
                results = list(await asyncio.wait_for(everything, self.config.deadline))
            except asyncio.TimeoutError:
                raise DeadlineExceeded(
                    f"no answer within the server's deadline of {self.config.deadline:g} s; "
                    "the work was cancelled"
                ) from None
        self._answered.append((time.monotonic(), len(results)))
        self.metrics.products.labels(endpoint).inc(len(results))
        for record in results:
            if record.error is not None:
                self.metrics.errors.labels(record.error.type).inc()
            if getattr(record, "cached", False):  # an Extraction is never from the cache
                self.metrics.cache_hits.inc()
        return results

    def throughput(self) -> float | None:
        """Products answered per second lately: over the last ``THROUGHPUT_WINDOW`` seconds,
        or the last ``THROUGHPUT_SAMPLES`` products where the window holds fewer (None until
        that many were answered within ``THROUGHPUT_MEMORY`` seconds)."""
        now = time.monotonic()
        answered = self._answered
        while answered and answered[0][0] < now - THROUGHPUT_MEMORY:
            answered.popleft()
        total = sum(count for _, count in answered)
        # old answers go while the rest still hold enough products to measure by
        while (
            len(answered) > 1
            and answered[0][0] < now - THROUGHPUT_WINDOW
            and total - answered[0][1] >= THROUGHPUT_SAMPLES
        ):
            total -= answered.popleft()[1]
        if total < THROUGHPUT_SAMPLES:
            return None
        return total / max(now - answered[0][0], 1.0)

    @contextlib.contextmanager
    def _admitted(self, count: int) -> Iterator[None]:
        """Room for ``count`` products, or Overloaded: at most ``max_pending`` in flight, and
        none that would wait past the deadline at the throughput measured. Work that cannot
        be answered in time is refused at once rather than done and thrown away, so a server
        past its capacity still answers what it admits."""
        retry = f"retry after {self.config.retry_after} s"
        if self.pending + count > self.config.max_pending:
            raise Overloaded(
                f"{self.pending} products are in flight and the server admits "
                f"{self.config.max_pending}; {retry}"
            )
        rate = self.throughput()
        if (
            rate is not None
            and self.pending
            and (self.pending + count) / rate > self.config.deadline
        ):
            raise Overloaded(
                f"{self.pending} products are ahead; these {count} would be answered in about "
                f"{(self.pending + count) / rate:.1f} s at the {rate:.1f} products/s answered "
                f"lately, past the deadline of {self.config.deadline:g} s; {retry}"
            )
        self.pending += count
        self.metrics.pending.set(self.pending)
        try:
            yield
        finally:
            self.pending -= count
            self.metrics.pending.set(self.pending)
