"""The HTTP clients of the wire backend: the openai SDK's client, one per event loop
(``LoopClients``), and a small JSON fetch for the probes (``fetch_json``)."""

from __future__ import annotations

import asyncio
import json
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import openai
    from pydantic import JsonValue


def fetch_json(
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    deadline: float = 10.0,
) -> JsonValue:
    """GET (or POST ``data``) ``url`` and parse its JSON, within ``deadline`` seconds in all:
    the socket timeout bounds each read, and the body is read piece by piece against the
    deadline, so a server that trickles bytes cannot hold the caller. None on any failure."""
    import time
    import urllib.error
    import urllib.request

    ends = time.monotonic() + deadline
    ask = urllib.request.Request(url, data, headers or {})
    try:
        with urllib.request.urlopen(ask, timeout=deadline) as response:
            body = bytearray()
            while chunk := response.read1(65536):
                body += chunk
                if time.monotonic() > ends or len(body) > 16 * 1024 * 1024:
                    return None
            value: JsonValue = json.loads(bytes(body))
            return value
    except (urllib.error.URLError, OSError, ValueError):
        return None


def async_client(
    *, base_url: str, api_key: str | None, timeout: float | None = None
) -> openai.AsyncOpenAI:
    """The one way llmcat builds an ``openai.AsyncOpenAI``: the SDK's own retries are off, because
    transport retries are llmcat's (``llmcat.llm.calls``: tenacity, honours Retry-After)."""
    import openai

    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key=api_key or "EMPTY",
        timeout=timeout if timeout is not None else openai.DEFAULT_TIMEOUT,
        max_retries=0,
    )


class LoopClients:
    """SDK clients, one per running event loop and made there on first use: a client's
    connections belong to its loop, so their owner serves any number of threads and loops."""

    def __init__(self, *, base_url: str, api_key: str | None, timeout: float | None = None) -> None:
        self.base_url = base_url
        self._api_key = api_key
        self._timeout = timeout
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, openai.AsyncOpenAI]
        self._clients = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self) -> openai.AsyncOpenAI:
        """The client of the running event loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.get(loop)
            if client is None:
                client = async_client(
                    base_url=self.base_url, api_key=self._api_key, timeout=self._timeout
                )
                self._clients[loop] = client
        return client

    async def release(self) -> None:
        """Close the running loop's client (the next ``get`` there makes a new one)."""
        with self._lock:
            client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close()

    def forget(self) -> None:
        """Drop every client; those of other loops close with their loops."""
        with self._lock:
            self._clients.clear()
