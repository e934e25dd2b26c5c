"""A scriptable OpenAI-compatible HTTP server on loopback, for wire tests.

It answers ``GET /v1/models`` with ``owned_by`` set to the kind it imitates (``vllm``, ``openai``,
``llamacpp``) and ``POST /v1/chat/completions`` from a queue of scripted replies or a responder
function. Every request body is recorded.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted HTTP answer."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None
    cut: int | None = None  # send only this many bytes of the body, then close: a torn response
    content_type: str = "application/json"


def chat_reply(
    text: str,
    *,
    logprobs: list[tuple[str, float, dict[str, float]]] | None = None,
    model: str = "served-model",
) -> Reply:
    """A chat.completion body with optional token logprobs [(token, logprob, {alt: logprob})]."""
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": "stop",
        "logprobs": None,
    }
    if logprobs is not None:
        choice["logprobs"] = {
            "content": [
                {
                    "token": tok,
                    "logprob": lp,
                    "bytes": None,
                    "top_logprobs": [
                        {"token": t, "logprob": v, "bytes": None} for t, v in top.items()
                    ],
                }
                for tok, lp, top in logprobs
            ]
        }
    return Reply(
        body={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [choice],
            "usage": {"prompt_tokens": 50, "completion_tokens": 3, "total_tokens": 53},
        }
    )


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) drops connections when a batch opens 64 at once: the client
    # would see timeouts the server never knew of.
    request_queue_size = 1024
    daemon_threads = True


class FakeServer:
    """Start with ``with FakeServer("vllm") as server:``; ``server.base_url`` ends in /v1."""

    def __init__(
        self,
        owned_by: str = "vllm",
        model: str = "served-model",
        version: str | None = None,
        keep_alive: bool = False,
    ) -> None:
        self.owned_by = owned_by
        self.version = version
        self.model = model
        self.replies: deque[Reply] = deque()
        self.responder: Callable[[dict[str, Any]], Reply] | None = None
        self.requests: list[dict[str, Any]] = []
        self.gets: list[str] = []  # paths of every GET (/v1/models, /version, ...)
        self.models_reply: Reply | None = None  # instead of the model list
        self.get_routes: dict[str, Callable[[], Reply]] = {}  # extra GET paths a test serves
        #: called with each request's headers first; a Reply it returns is the answer
        self.on_headers: Callable[[dict[str, str]], Reply | None] | None = None
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1 keeps connections open between requests, as real servers do.
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with server._lock:
                    server.gets.append(self.path)
                early = server.on_headers(dict(self.headers)) if server.on_headers else None
                if early is not None:
                    server._send(self, early)
                elif self.path.rstrip("/").endswith("/models") and server.models_reply is not None:
                    server._send(self, server.models_reply)
                elif self.path.rstrip("/").endswith("/models"):
                    server._send(
                        self,
                        Reply(
                            body={
                                "object": "list",
                                "data": [
                                    {
                                        "id": server.model,
                                        "object": "model",
                                        "created": 0,
                                        "owned_by": server.owned_by,
                                    }
                                ],
                            }
                        ),
                    )
                elif self.path in server.get_routes:
                    server._send(self, server.get_routes[self.path]())
                elif self.path == "/version" and server.version is not None:
                    server._send(self, Reply(body={"version": server.version}))
                elif self.path == "/health":
                    server._send(self, Reply(body={}))
                else:
                    server._send(self, Reply(status=404, body={"error": {"message": "not found"}}))

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append(body)
                    server.in_flight += 1
                    server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
                try:
                    early = server.on_headers(dict(self.headers)) if server.on_headers else None
                    if early is not None:
                        reply = early
                    elif server.replies:
                        reply = server.replies.popleft()
                    elif server.responder is not None:
                        reply = server.responder(body)
                    else:
                        reply = Reply(status=500, body={"error": {"message": "no scripted reply"}})
                    server._send(self, reply)
                finally:
                    with server._lock:
                        server.in_flight -= 1

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def _send(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        if reply.delay:
            time.sleep(reply.delay)
        payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
        try:
            handler.send_response(reply.status)
            handler.send_header("content-type", reply.content_type)
            handler.send_header("content-length", str(len(payload)))
            for key, value in reply.headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            if reply.cut is not None:
                handler.wfile.write(payload[: reply.cut])
                handler.wfile.flush()
                handler.close_connection = True
                handler.connection.shutdown(2)  # the client sees a body shorter than promised
                return
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the client gave up (a timeout test)

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


if __name__ == "__main__":
    # ``python tests/fake_server.py PORT``: a stand-in for a vLLM server process (lifecycle tests).
    import sys

    fake = FakeServer("vllm", version="0.32.0")
    fake._httpd.server_close()
    fake._httpd = _Server(("127.0.0.1", int(sys.argv[1])), fake._httpd.RequestHandlerClass)
    fake._httpd.serve_forever()
