"""Settings: explicit arguments first, then environment variables, then defaults.

pydantic-settings reads the environment: every field from ``LLMCAT_<FIELD>`` (``LLMCAT_TIMEOUT``,
``LLMCAT_CONCURRENCY``, ``LLMCAT_RETRY`` as JSON ...), the base URL also from ``OPENAI_BASE_URL``
and the key also from ``OPENAI_API_KEY`` (the ``LLMCAT_`` name wins). A bad value is a
ConfigError naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

import platformdirs
from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from llmcat.config.options import CLI_FLAG, RUN_FLAG, Flag, RetryOptions, yes_no
from llmcat.errors import ConfigError
from llmcat.redact import MASK, redact, register_secret, register_url_credentials

ENV_CACHE_DIR = "LLMCAT_CACHE_DIR"


def _env(name: str, *more: str) -> AliasChoices:
    """The variables a field is read from, in this order (arguments use the field's name; the
    bare name is no alias, so that an unrelated BASE_URL in the environment is never read)."""
    return AliasChoices(f"LLMCAT_{name.upper()}", *more)


class Settings(BaseSettings):
    """How llmcat reaches a model. Every field may also come from the environment
    (``LLMCAT_<FIELD>``)."""

    model_config = SettingsConfigDict(extra="forbid", env_prefix="LLMCAT_", validate_by_name=True)

    def __init__(self, **values: Any) -> None:  # Any: pydantic validates each field's value
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError(_problem(exc, values)) from None
        except SettingsError as exc:  # a variable that is not JSON where a field needs it
            field = re.search(r'field "(\w+)"', str(exc))
            name = f"LLMCAT_{field.group(1).upper()}" if field else "an LLMCAT_ variable"
            raise ConfigError(f"environment variable {name} is not valid JSON: {exc}") from None

    backend: Annotated[str | None, Flag()] = Field(
        default=None,
        description="Backend name: 'openai', 'local', 'vllm' (in process) or 'fake'. Default: 'openai' when a base URL "
        "is configured, else 'local'. Env: LLMCAT_BACKEND.",
    )
    base_url: Annotated[str | None, Flag()] = Field(
        default=None,
        validation_alias=_env("base_url", "OPENAI_BASE_URL"),
        description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1. "
        "Env: LLMCAT_BASE_URL, then OPENAI_BASE_URL.",
    )
    model: Annotated[str | None, Flag()] = Field(
        default=None,
        description="Model id on the server, a .gguf path for 'local', a Hugging Face folder or id "
        "for 'vllm'. Env: LLMCAT_MODEL. "
        "For a server that serves one model (vLLM) it may be left out.",
    )
    api_key: Annotated[str | None, RUN_FLAG] = Field(
        default=None,
        validation_alias=_env("api_key", "OPENAI_API_KEY"),
        description="API key. Env: LLMCAT_API_KEY, then OPENAI_API_KEY.",
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

    def __repr_args__(self) -> Iterator[tuple[str | None, object]]:
        """repr() and str() without the key or URL credentials (model_dump keeps them)."""
        for name, value in super().__repr_args__():
            if name == "api_key" and value:
                yield name, MASK
            elif name == "base_url" and isinstance(value, str):
                yield name, redact(value)
            else:
                yield name, value

    def resolved(self) -> Settings:
        """A copy with the defaults that depend on other fields filled in: the backend (openai
        when a base URL is configured, else local) and the cache folder."""
        if self.base_url:
            check_base_url(self.base_url)
        register_secret(self.api_key)
        register_url_credentials(self.base_url)
        return self.model_copy(
            update={
                "backend": self.backend or ("openai" if self.base_url else "local"),
                "base_url": self.base_url or None,
                "model": self.model or None,
                "api_key": self.api_key or None,
                "cache_dir": self.cache_dir or default_cache_dir(),
            }
        )


def _problem(exc: ValidationError, given: Mapping[str, object]) -> str:
    """The first error of ``exc``, naming the environment variable when the value came from one."""
    first = exc.errors()[0]
    loc = [str(p) for p in first.get("loc", ())]
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    field = loc[0] if loc else ""
    if field and field not in given:
        info = Settings.model_fields.get(field)
        names = (
            info.validation_alias.choices
            if info is not None and isinstance(info.validation_alias, AliasChoices)
            else [f"LLMCAT_{field.upper()}"]
        )
        for name in names:
            if isinstance(name, str) and name in os.environ:
                return f"environment variable {name}={redact(os.environ[name])!r}: {message}"
    return f"invalid settings option {'.'.join(loc) or 'settings'}: {message}"


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
    """LLMCAT_CACHE_DIR, else the platform's user cache folder (platformdirs): on Linux
    $XDG_CACHE_HOME/llmcat or ~/.cache/llmcat, on macOS ~/Library/Caches/llmcat, on Windows
    %LOCALAPPDATA%\\llmcat\\Cache."""
    explicit = os.environ.get(ENV_CACHE_DIR)
    if explicit:
        return Path(explicit)
    return Path(platformdirs.user_cache_dir("llmcat", appauthor=False))
