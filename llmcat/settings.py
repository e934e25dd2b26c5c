"""Settings: explicit arguments first, then environment variables, then defaults."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field

from .errors import ConfigError
from .options import CLI_FLAG, RUN_FLAG, Flag, RetryOptions, yes_no
from .redact import redact, register_secret

ENV_BASE_URL = "LLMCAT_BASE_URL"
ENV_MODEL = "LLMCAT_MODEL"
ENV_API_KEY = "LLMCAT_API_KEY"
ENV_BACKEND = "LLMCAT_BACKEND"
ENV_CACHE_DIR = "LLMCAT_CACHE_DIR"


class Settings(BaseModel):
    """How llmcat reaches a model. Every field may also come from the environment."""

    model_config = ConfigDict(extra="forbid")

    backend: Annotated[str | None, Flag()] = Field(
        default=None,
        description="Backend name: 'openai', 'local', 'vllm' (in process) or 'fake'. Default: 'openai' when a base URL "
        "is configured, else 'local'. Env: LLMCAT_BACKEND.",
    )
    base_url: Annotated[str | None, Flag()] = Field(
        default=None,
        description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1. Env: LLMCAT_BASE_URL.",
    )
    model: Annotated[str | None, Flag()] = Field(
        default=None,
        description="Model id on the server, a .gguf path for 'local', a Hugging Face folder or id "
        "for 'vllm'. Env: LLMCAT_MODEL. "
        "For a server that serves one model (vLLM) it may be left out.",
    )
    api_key: Annotated[str | None, RUN_FLAG] = Field(
        default=None, description="API key. Env: LLMCAT_API_KEY, then OPENAI_API_KEY."
    )
    structured_output: Annotated[
        Literal["auto", "vllm", "vllm-guided", "openai", "none"], RUN_FLAG
    ] = Field(
        default="auto",
        description="How the server takes output constraints; 'auto' detects it once per URL.",
    )
    timeout: Annotated[float, RUN_FLAG] = Field(
        default=60.0, gt=0, allow_inf_nan=False, description="Seconds allowed for one model call."
    )
    concurrency: Annotated[int | None, RUN_FLAG] = Field(
        default=None, ge=1, description="Requests in flight in a batch; default per backend."
    )
    cache: Annotated[bool, Flag()] = Field(
        default=True, description="Cache successful model calls on disk."
    )
    cache_dir: Annotated[Path | None, RUN_FLAG] = Field(
        default=None,
        description="Cache folder. Env: LLMCAT_CACHE_DIR; default: the platform cache dir.",
    )
    retry: RetryOptions = Field(
        default_factory=RetryOptions,
        description="The transport retry policy (attempts, backoff); see RetryOptions.",
    )
    progress: Annotated[bool | None, CLI_FLAG] = Field(
        default=None, description="Show a progress bar; default: when stderr is a terminal."
    )
    batch_export: Annotated[Path | None, Flag(frozenset({"cli"}), metavar="FILE")] = Field(
        default=None,
        description="Write the requests of the run to this file in the OpenAI Batch JSONL "
        "format instead of sending them (placeholder answers, never cached); openai backend.",
    )
    batch_import: Annotated[Path | None, Flag(frozenset({"cli"}), metavar="FILE")] = Field(
        default=None,
        description="Answer the requests of the run from this batch result file (OpenAI Batch "
        "API or vLLM run_batch output) instead of sending them; openai backend.",
    )
    dry_run: Annotated[bool, CLI_FLAG] = Field(
        default=False,
        description="Render and count every request (the model's tokenizer where the backend has "
        "one, else an estimate) and answer it with a placeholder: nothing is sent or cached "
        "(llmcat.backends.dryrun).",
    )

    images: Annotated[Literal["auto", "never", "require"], RUN_FLAG] = Field(
        default="auto",
        description="Product images (image_urls) shown to the model: 'auto' when it takes "
        "images (a server that refuses them gets the request again without, once), 'never', "
        "or 'require' (an error when the model or a product has none).",
    )
    vision: Annotated[
        bool | None, Flag(frozenset({"cli", "evals"}), metavar="yes|no", parse=yes_no)
    ] = Field(
        default=None,
        description="Whether the model takes images; default: detected (embedded llama.cpp "
        "model: no; in-process vLLM: its model config; a server: tried).",
    )
    image_dirs: list[Path] = Field(
        default_factory=list,
        description="Folders local image files may be read from; a path outside them is "
        "refused (the CLI adds the --input file's folder).",
    )
    max_image_bytes: Annotated[int, RUN_FLAG] = Field(
        default=20_000_000, ge=1, description="Largest image file or data URI accepted."
    )
    max_image_side: Annotated[int, RUN_FLAG] = Field(
        default=1024,
        ge=64,
        description="Local images with a longer side are scaled down to it (needs Pillow: "
        "the 'images' extra).",
    )

    def resolved(self) -> Settings:
        """A copy with environment variables and defaults filled in."""
        env = os.environ
        base_url = self.base_url or env.get(ENV_BASE_URL) or None
        if base_url:
            check_base_url(base_url, "the base URL" if self.base_url else ENV_BASE_URL)
        backend = self.backend or env.get(ENV_BACKEND) or ("openai" if base_url else "local")
        api_key = self.api_key or env.get(ENV_API_KEY) or env.get("OPENAI_API_KEY")
        register_secret(api_key)
        return self.model_copy(
            update={
                "backend": backend,
                "base_url": base_url,
                "model": self.model or env.get(ENV_MODEL) or None,
                "api_key": api_key,
                "cache_dir": self.cache_dir or default_cache_dir(),
            }
        )


def check_base_url(url: str, what: str = "the base URL") -> str:
    """``url`` if it is an http(s) URL with a host, else a ConfigError (not a retried transport
    error later). The message never shows credentials that the URL carries."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(
            f"{what} {redact(url)!r} is not an http(s) URL with a host - "
            "e.g. http://127.0.0.1:8000/v1"
        )
    return url


def default_cache_dir() -> Path:
    """LLMCAT_CACHE_DIR, else $XDG_CACHE_HOME/llmcat, else ~/.cache/llmcat."""
    explicit = os.environ.get(ENV_CACHE_DIR)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "llmcat"


def require(value: str | None, what: str, flag: str, env_var: str) -> str:
    """``value`` or a ConfigError that names both the flag and the environment variable."""
    if not value:
        raise ConfigError(
            f"no {what} given - pass {flag} or set the {env_var} environment variable"
        )
    return value
