"""One wire backend for every OpenAI-compatible server: vLLM, OpenAI, llama.cpp's server, Ollama.

Servers differ only in how they accept an output constraint (``StructuredMode``):

- ``vllm``: ``extra_body={"structured_outputs": {"choice": [...]}}`` or ``{"json": schema}``
  (vLLM 0.10.2 and newer; 0.12 removed the old fields and silently ignores them);
- ``vllm-guided``: ``guided_choice`` / ``guided_json``, for vLLM servers older than 0.10.2;
- ``openai``: ``response_format`` with a JSON schema; a choice becomes ``{"label": enum}``;
- ``none``: no constraint on the wire; llmcat lists the choices in the prompt, parses the text and
  re-asks (see ``llmcat.classify``).

``auto`` asks ``GET /models`` once per base URL: a server whose models are ``owned_by: vllm`` is
vLLM (and ``GET /version`` tells which fields it takes), ``api.openai.com`` is OpenAI, anything
else gets ``none``. The answer is cached per base URL for the process; ``structured_output=``
(``--structured-output``) overrides it. Request shaping and response
parsing are pure functions below, tested without a server.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

from ..completions import (
    ChoiceConstraint,
    Completion,
    CompletionRequest,
    JsonConstraint,
    TokenLogprob,
)
from ..errors import (
    BackendError,
    ConfigError,
    OutputError,
    RateLimitError,
    ServerError,
    TransportError,
)
from .base import Backend

if TYPE_CHECKING:
    from ..settings import Settings

StructuredMode = Literal["vllm", "vllm-guided", "openai", "none"]
#: the first vLLM release that takes ``structured_outputs``
STRUCTURED_OUTPUTS_SINCE = (0, 10, 2)
CHOICE_KEY = "label"

# Detected modes per base URL, so a batch asks the server only once per process.
_detected_modes: dict[str, StructuredMode] = {}


# -- pure request shaping -----------------------------------------------------------------------


def choice_schema(choices: list[str]) -> dict[str, Any]:
    """The JSON schema that carries a choice on servers that only take JSON schemas."""
    return {
        "type": "object",
        "properties": {CHOICE_KEY: {"type": "string", "enum": choices}},
        "required": [CHOICE_KEY],
        "additionalProperties": False,
    }


def build_chat_kwargs(
    request: CompletionRequest, *, model: str, mode: StructuredMode
) -> dict[str, Any]:
    """Keyword arguments for ``client.chat.completions.create`` for one request."""
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": [m.model_dump() for m in request.messages],
        "temperature": request.sampling.temperature,
        "max_tokens": request.sampling.max_tokens,
    }
    if request.sampling.seed is not None:
        kwargs["seed"] = request.sampling.seed
    if request.sampling.top_logprobs > 0:
        kwargs["logprobs"] = True
        kwargs["top_logprobs"] = min(request.sampling.top_logprobs, 20)
    constraint = request.constraint
    if constraint is None or mode == "none":
        return kwargs
    if mode == "vllm":
        field = (
            {"choice": constraint.choices}
            if isinstance(constraint, ChoiceConstraint)
            else {"json": constraint.json_schema}
        )
        kwargs["extra_body"] = {"structured_outputs": field}
        return kwargs
    if mode == "vllm-guided":
        kwargs["extra_body"] = (
            {"guided_choice": constraint.choices}
            if isinstance(constraint, ChoiceConstraint)
            else {"guided_json": constraint.json_schema}
        )
        return kwargs
    # OpenAI-style response_format. Strict mode is only safe for the choice wrapper: user schemas
    # may use keywords (maxLength, minItems) that strict mode rejects.
    if isinstance(constraint, ChoiceConstraint):
        schema, name, strict = choice_schema(constraint.choices), "choice", True
    else:
        schema, name, strict = constraint.json_schema, constraint.name, False
    kwargs["response_format"] = {
        "type": "json_schema",
        "json_schema": {"name": name, "schema": schema, "strict": strict},
    }
    return kwargs


def parse_logprobs(choice_logprobs: Any) -> list[TokenLogprob] | None:
    """The SDK's ``choice.logprobs`` as TokenLogprobs; None when the server sent none."""
    content = getattr(choice_logprobs, "content", None) if choice_logprobs is not None else None
    if not content:
        return None
    tokens = []
    for item in content:
        top = {alt.token: float(alt.logprob) for alt in (item.top_logprobs or [])}
        tokens.append(TokenLogprob(token=item.token, logprob=float(item.logprob), top=top))
    return tokens


def slice_logprobs(tokens: list[TokenLogprob], start: int, end: int) -> list[TokenLogprob]:
    """The tokens whose text overlaps characters ``start:end`` of the concatenated output."""
    kept, offset = [], 0
    for tok in tokens:
        tok_end = offset + len(tok.token)
        if tok_end > start and offset < end:
            kept.append(tok)
        offset = tok_end
    return kept


def unwrap_choice(
    text: str, tokens: list[TokenLogprob] | None
) -> tuple[str, list[TokenLogprob] | None]:
    """Take the label out of ``{"label": "..."}`` and keep only the logprobs of the label itself."""
    try:
        value = json.loads(text)[CHOICE_KEY]
    except (ValueError, KeyError, TypeError):
        raise OutputError("expected a JSON object with a 'label' field", raw=text) from None
    if not isinstance(value, str):
        raise OutputError("the 'label' field is not a string", raw=text)
    if tokens is None:
        return value, None
    encoded = json.dumps(value, ensure_ascii=False)[1:-1]
    start = text.find(encoded)
    if start < 0:
        return value, None
    return value, slice_logprobs(tokens, start, start + len(encoded))


def parse_retry_after(headers: Any) -> float | None:
    """Seconds from ``Retry-After`` (seconds or HTTP date) or ``retry-after-ms``."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        with contextlib.suppress(ValueError):
            return max(0.0, float(ms) / 1000)
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


@contextlib.contextmanager
def translate_errors(base_url: str) -> Iterator[None]:
    """Turn the openai SDK's exceptions into llmcat's BackendError tree, in this one place."""
    import openai

    try:
        yield
    except openai.APITimeoutError as exc:
        raise TransportError(f"request to {base_url} timed out", original=exc) from exc
    except openai.APIConnectionError as exc:
        raise TransportError(f"cannot reach {base_url}: {exc}", original=exc) from exc
    except openai.RateLimitError as exc:
        retry_after = parse_retry_after(exc.response.headers)
        raise RateLimitError(
            f"rate limited by {base_url}", retry_after=retry_after, original=exc
        ) from exc
    except openai.APIStatusError as exc:
        status = exc.status_code
        retryable = status >= 500 or status in (408, 409)
        detail = _error_detail(exc)
        raise ServerError(
            f"{base_url} answered HTTP {status}: {detail}",
            retryable=retryable,
            status_code=status,
            original=exc,
        ) from exc
    except (openai.APIResponseValidationError, json.JSONDecodeError) as exc:
        # The SDK lets a body that is not JSON escape as a bare JSONDecodeError.
        raise ServerError(
            f"{base_url} sent a malformed response body", retryable=True, original=exc
        ) from exc


def _error_detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("message", err))[:300]
        return str(err)[:300]
    return str(exc)[:300]


def async_client(*, base_url: str, api_key: str | None, timeout: float | None = None) -> Any:
    """The one way llmcat builds an ``openai.AsyncOpenAI``: the SDK's own retries are off, because
    transport retries are llmcat's (``llmcat.calls``: tenacity, honours Retry-After)."""
    import openai

    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key=api_key or "EMPTY",
        timeout=timeout if timeout is not None else openai.DEFAULT_TIMEOUT,
        max_retries=0,
    )


# -- the backend --------------------------------------------------------------------------------


class OpenAIBackend(Backend):
    """Chat completions over HTTP with the official ``openai`` SDK (AsyncOpenAI)."""

    name = "openai"
    max_concurrency = 16

    def __init__(
        self,
        *,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        structured_output: StructuredMode | Literal["auto"] = "auto",
        timeout: float = 60.0,
        max_concurrency: int | None = None,
    ) -> None:
        import openai

        self.base_url = (base_url or "https://api.openai.com/v1").rstrip("/")
        self._model = model or ""
        self._requested_mode = structured_output
        self._api_key = api_key or "EMPTY"
        self._timeout = timeout
        self._client: openai.AsyncOpenAI | None = None
        if max_concurrency is not None:
            self.max_concurrency = max_concurrency

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIBackend:
        if not settings.base_url and not settings.api_key:
            raise ConfigError(
                "the openai backend needs a server - pass --base-url or set LLMCAT_BASE_URL "
                "(or an API key in LLMCAT_API_KEY / OPENAI_API_KEY for api.openai.com)"
            )
        return cls(
            base_url=settings.base_url,
            model=settings.model,
            api_key=settings.api_key,
            structured_output=settings.structured_output,
            timeout=settings.timeout,
        )

    @property
    def model(self) -> str:
        return self._model

    @property
    def client(self) -> Any:
        """The SDK client, created on first use in the running event loop."""
        if self._client is None:
            self._client = async_client(
                base_url=self.base_url, api_key=self._api_key, timeout=self._timeout
            )
        return self._client

    async def release_loop_resources(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    @property
    def mode(self) -> StructuredMode | None:
        """The structured-output mode in use; None until the first request resolves ``auto``."""
        if self._requested_mode != "auto":
            return self._requested_mode
        return _detected_modes.get(self.base_url)

    async def prepare(self) -> None:
        await self.resolve()

    async def resolve(self) -> StructuredMode:
        """Find the server kind (once per base URL) and a model id when none was given."""
        mode = self.mode
        if mode is not None and self._model:
            return mode
        served: list[Any] = []
        try:
            with translate_errors(self.base_url):
                page = await self.client.models.list()
            served = list(page.data)
        except BackendError:
            if not self._model:
                raise
        if not self._model:
            if not served:
                raise ConfigError(
                    f"no model given and {self.base_url}/models lists none - pass model=... "
                    "or --model, or set LLMCAT_MODEL"
                )
            self._model = served[0].id
        if mode is None:
            mode = detect_mode(self.base_url, [getattr(m, "owned_by", "") for m in served])
            if mode == "vllm":
                mode = vllm_mode(await self._server_version())
            _detected_modes[self.base_url] = mode
        return mode

    async def _server_version(self) -> str | None:
        """vLLM's ``GET /version`` (served beside ``/v1``), or None when it does not answer."""
        import asyncio
        import urllib.error
        import urllib.request

        url = f"{self.base_url.removesuffix('/v1')}/version"

        def fetch() -> str | None:
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    version = json.loads(response.read()).get("version")
            except (urllib.error.URLError, OSError, ValueError, AttributeError):
                return None
            return str(version) if version else None

        return await asyncio.to_thread(fetch)

    async def complete(self, request: CompletionRequest) -> Completion:
        from . import check_allowed

        check_allowed(self.name)
        mode = await self.resolve()
        kwargs = build_chat_kwargs(request, model=self._model, mode=mode)
        with translate_errors(self.base_url):
            response = await self.client.chat.completions.create(**kwargs)
        if isinstance(response, str) or not getattr(response, "choices", None):
            raise ServerError(f"{self.base_url} sent a response without choices", retryable=True)
        choice = response.choices[0]
        text = choice.message.content or ""
        tokens = parse_logprobs(choice.logprobs)
        if isinstance(request.constraint, ChoiceConstraint) and mode == "openai":
            text, tokens = unwrap_choice(text, tokens)
        usage = response.usage
        return Completion(
            text=text,
            model=response.model or self._model,
            finish_reason=choice.finish_reason,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            logprobs=tokens,
        )

    async def aclose(self) -> None:
        await self.release_loop_resources()


def detect_mode(base_url: str, owners: list[str]) -> StructuredMode:
    """Which structured-output dialect a server speaks, from its URL and ``/models`` owners."""
    if any(owner == "vllm" for owner in owners):
        return "vllm"
    host = urlparse(base_url).hostname or ""
    if host == "api.openai.com" or host.endswith(".openai.azure.com"):
        return "openai"
    return "none"


def vllm_mode(version: str | None) -> StructuredMode:
    """``vllm`` for servers that take ``structured_outputs`` (or whose version is unknown),
    ``vllm-guided`` for releases before 0.10.2."""
    if not version:
        return "vllm"
    numbers = []
    for part in version.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit()) if part[:1].isdigit() else ""
        if not digits:
            return "vllm"  # dev builds and forks: assume the current API
        numbers.append(int(digits))
    return "vllm" if tuple(numbers) >= STRUCTURED_OUTPUTS_SINCE else "vllm-guided"


__all__ = [
    "JsonConstraint",
    "OpenAIBackend",
    "StructuredMode",
    "build_chat_kwargs",
    "detect_mode",
    "vllm_mode",
]
