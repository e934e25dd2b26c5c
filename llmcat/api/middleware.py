"""Plain ASGI middleware, outermost first: timing and counts (every answer, refusals too), the
key check, the body limit. Each answers a refusal itself, in the error body's shape."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from llmcat.api.config import authorised
from llmcat.api.metrics import Metrics
from llmcat.api.schema import error_body

# ASGI's own types: messages are dicts of anything (the spec's wording)
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

#: answered without a key: an orchestrator's probes
PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
#: the endpoints metrics are labelled with; anything else is "other" (bounded label values)
ENDPOINTS = frozenset(
    {
        "/v1/classify",
        "/v1/describe",
        "/v1/extract",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
    }
)


async def send_error(
    send: Send, status: int, kind: str, message: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """An error answer in the error body's shape."""
    body = json.dumps(error_body(kind, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class Timing:
    """Counts every answer by endpoint and status, and times it."""

    def __init__(self, app: App, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        endpoint = path if path in ENDPOINTS else "other"
        # a client that left before any answer: nginx's 499, not a 500 that would page someone
        status = 499
        started = time.perf_counter()

        async def noted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        work = path.startswith("/v1/")  # the probes and /metrics are not counted as work
        self.metrics.received += work
        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, noted)
        except Exception:
            status = 500
            raise
        finally:
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
            self.metrics.requests.labels(endpoint, str(status)).inc()
            self.metrics.in_flight.dec()
            self.metrics.finished += work


class KeyCheck:
    """401 unless the request carries one of the keys (``Authorization: Bearer KEY``); the
    probes in ``PUBLIC_PATHS`` pass. With no keys configured, everything passes."""

    def __init__(self, app: App, keys: Sequence[str], metrics: Metrics) -> None:
        self.app = app
        self.keys = tuple(keys)
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.keys
            or scope.get("path") in PUBLIC_PATHS
            or authorised(_header(scope, b"authorization"), self.keys)
        ):
            await self.app(scope, receive, send)
            return
        self.metrics.errors.labels("unauthorised").inc()
        await send_error(
            send,
            401,
            "unauthorised",
            "a valid API key is needed: send 'Authorization: Bearer <key>'",
            [(b"www-authenticate", b"Bearer")],
        )


class BodyLimit:
    """413 for a body over ``limit`` bytes: by its Content-Length before reading, else while
    reading (the body is held, at most ``limit`` bytes, and handed on whole). 408 for a body
    not read whole within ``timeout`` seconds (a client that trickles it holds a connection
    and, at a stop, the server)."""

    def __init__(self, app: App, limit: int, metrics: Metrics, timeout: float = 10.0) -> None:
        self.app = app
        self.limit = limit
        self.metrics = metrics
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send)
            return
        body = bytearray()
        more = True
        loop = asyncio.get_running_loop()
        until = loop.time() + self.timeout
        while more:
            try:
                message = await asyncio.wait_for(receive(), max(until - loop.time(), 0.001))
            except asyncio.TimeoutError:
                self.metrics.errors.labels("slow_body").inc()
                await send_error(
                    send,
                    408,
                    "slow_body",
                    f"the body was not read whole within {self.timeout:g} s",
                    [(b"connection", b"close")],
                )
                return
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
            if len(body) > self.limit:
                await self._refuse(send)
                return
        handed = False

        async def replay() -> Message:
            nonlocal handed
            if not handed:
                handed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        self.metrics.errors.labels("too_large").inc()
        await send_error(
            send,
            413,
            "too_large",
            f"the body is larger than the server's limit of {self.limit:,} bytes",
            [(b"connection", b"close")],
        )
