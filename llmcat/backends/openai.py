"""One wire backend for every OpenAI-compatible server: vLLM, OpenAI, llama.cpp's server, Ollama.

Servers differ only in how they accept an output constraint (``StructuredMode``):

- ``vllm``: ``extra_body={"structured_outputs": {"choice": [...]}}`` or ``{"json": schema}``
  (vLLM 0.10.2 and newer; 0.12 removed the old fields and silently ignores them);
- ``vllm-guided``: ``guided_choice`` / ``guided_json``, for vLLM servers older than 0.10.2;
- ``openai``: ``response_format`` with a JSON schema; a choice becomes ``{"label": enum}``;
- ``none``: no constraint on the wire; llmcat lists the choices in the prompt, parses the text and
  re-asks (see ``llmcat.classify.classifier``).

``auto`` asks ``GET /models`` once per base URL and process, however many requests start at
once (the first probes, the others wait for its answer): a server whose models are ``owned_by:
vllm`` is vLLM (and ``GET /version`` tells which fields it takes), ``api.openai.com`` is OpenAI,
anything else gets ``none``. ``structured_output=`` (``--structured-output``) overrides it.
Request shaping and response parsing are pure functions below, tested without a server.

HTTP clients are bound to an event loop, so the backend keeps one per running loop: one backend
serves any number of threads and loops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

from llmcat.backends.base import Backend
from llmcat.backends.clients import LoopClients, fetch_json
from llmcat.errors import (
    ConfigError,
    EndpointError,
    ImagesRejected,
    OutputError,
    RateLimitError,
    ServerError,
    TransportError,
)
from llmcat.llm.completions import (
    ChoiceConstraint,
    Completion,
    CompletionRequest,
    JsonConstraint,
    TokenLogprob,
)
from llmcat.llm.once import AsyncOnce
from llmcat.redact import redact, register_secret, register_url_credentials

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletion
    from openai.types.chat.chat_completion import ChoiceLogprobs
    from pydantic import JsonValue

    from llmcat.config.settings import Settings

StructuredMode = Literal["vllm", "vllm-guided", "openai", "none"]
#: the first vLLM release that takes ``structured_outputs``
STRUCTURED_OUTPUTS_SINCE = (0, 10, 2)
CHOICE_KEY = "label"


@dataclass(frozen=True)
class ServerInfo:
    """What ``GET /models`` (and vLLM's ``/version``) told about a server."""

    mode: StructuredMode
    models: tuple[str, ...]  # ids it serves; empty when it lists none or has no /models


# Per base URL, for the process: what the server is, probed once (see ``server_info``).
_servers: dict[str, AsyncOnce[ServerInfo]] = {}
_servers_lock = threading.Lock()
# Base URLs that have answered (any HTTP status) in this process: a refused connection there is a
# server restarting, retried; before that it is a wrong URL or a server not started, and retrying
# it for every item only delays the one error the caller can act on.
_answered: set[str] = set()


# -- pure request shaping -----------------------------------------------------------------------


def choice_schema(choices: list[str]) -> dict[str, JsonValue]:
    """The JSON schema that carries a choice on servers that only take JSON schemas."""
    return {
        "type": "object",
        "properties": {CHOICE_KEY: {"type": "string", "enum": list(choices)}},
        "required": [CHOICE_KEY],
        "additionalProperties": False,
    }


# How servers say a model takes no images (vLLM: "... is not a multimodal model", "At most 0
# image(s) may be provided"; OpenAI: "image_url is only supported by certain models").
_IMAGE_REFUSAL = re.compile(r"image|multi-?modal|vision", re.IGNORECASE)


def build_chat_kwargs(
    request: CompletionRequest, *, model: str, mode: StructuredMode
) -> dict[str, Any]:
    """Keyword arguments for ``client.chat.completions.create`` for one request."""
    # Any: these go to the SDK's create(), whose overloads take its own TypedDicts of messages
    # and formats; the JSON built here is checked by the server, not against those.
    kwargs: dict[str, Any] = {
        "model": model,
        "messages": request.wire_messages(),
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


def parse_logprobs(choice_logprobs: ChoiceLogprobs | None) -> list[TokenLogprob] | None:
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


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
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


#: HTTP statuses that say the setup is wrong (key, model, path): a ConfigError, not retried
_SETUP_STATUSES = {401: "rejected the API key", 403: "refused access", 404: "does not know"}


def connection_refused(error: BaseException) -> bool:
    """Whether ``error`` (an SDK exception) comes from a refused connection: nothing listens at
    the address. The SDK wraps the socket's error several times (and anyio groups one per
    address), so the whole chain is searched."""
    seen: set[int] = set()
    todo: list[BaseException] = [error]
    while todo:
        exc = todo.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        if isinstance(exc, ConnectionRefusedError):
            return True
        todo.extend(e for e in (exc.__cause__, exc.__context__) if e is not None)
        todo.extend(getattr(exc, "exceptions", ()))
    return False


@contextlib.contextmanager
def translate_errors(base_url: str) -> Iterator[None]:
    """Turn the openai SDK's exceptions into llmcat's error tree, in this one place. Messages
    show the URL without credentials and the server's words redacted. A refused connection to a
    server that has not answered yet in this process is an ``EndpointError`` (fail fast, like a
    wrong key); once it has answered, it is a ``TransportError`` (retried: a restart)."""
    import openai

    where = redact(base_url)
    try:
        yield
    except openai.APITimeoutError as exc:
        raise TransportError(f"request to {where} timed out", original=exc) from exc
    except openai.APIConnectionError as exc:
        if base_url not in _answered and connection_refused(exc):
            raise EndpointError(
                f"cannot reach {where}: connection refused, nothing listens there - check "
                "--base-url / LLMCAT_BASE_URL and that the server is running (llmcat serve "
                "returns once it is ready)"
            ) from None
        raise TransportError(f"cannot reach {where}: {redact(str(exc))}", original=exc) from exc
    except openai.RateLimitError as exc:
        _answered.add(base_url)
        retry_after = parse_retry_after(exc.response.headers)
        raise RateLimitError(
            f"rate limited by {where}: {redact(_error_detail(exc))}",
            retry_after=retry_after,
            original=exc,
        ) from exc
    except openai.APIStatusError as exc:
        _answered.add(base_url)
        status = exc.status_code
        detail = redact(_error_detail(exc))
        if status in _SETUP_STATUSES:
            hint = {
                401: "check --api-key / LLMCAT_API_KEY",
                403: "check the key's permissions",
                404: "check --base-url (it usually ends in /v1) and --model",
            }[status]
            raise EndpointError(
                f"{where} answered HTTP {status} ({_SETUP_STATUSES[status]}): {detail} - {hint}",
                status_code=status,
            ) from None
        if status in (400, 415, 422) and _IMAGE_REFUSAL.search(detail):
            raise ImagesRejected(
                f"{where} refused the images (HTTP {status}): {detail}",
                retryable=False,
                status_code=status,
                original=exc,
            ) from exc
        retryable = status >= 500 or status in (408, 409)
        raise ServerError(
            f"{where} answered HTTP {status}: {detail}",
            retryable=retryable,
            status_code=status,
            original=exc,
        ) from exc
    except (openai.APIResponseValidationError, json.JSONDecodeError) as exc:
        _answered.add(base_url)
        # The SDK lets a body that is not JSON escape as a bare JSONDecodeError.
        raise ServerError(
            f"{where} sent a malformed response body", retryable=True, original=exc
        ) from exc
    _answered.add(base_url)


def _error_detail(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("message", err))[:300]
        return str(err)[:300]
    return str(exc)[:300]


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
        self.base_url = (base_url or "https://api.openai.com/v1").rstrip("/")
        self._model = model or ""
        self._requested_mode = structured_output
        self._api_key = api_key or "EMPTY"
        register_secret(api_key)
        register_url_credentials(self.base_url)
        self._timeout = timeout
        self._clients = LoopClients(base_url=self.base_url, api_key=self._api_key, timeout=timeout)
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
    def client(self) -> openai.AsyncOpenAI:
        """The SDK client of the running event loop, created there on first use."""
        return self._clients.get()

    async def release_loop_resources(self) -> None:
        await self._clients.release()

    @property
    def mode(self) -> StructuredMode | None:
        """The structured-output mode in use; None until the first request resolves ``auto``."""
        if self._requested_mode != "auto":
            return self._requested_mode
        known = _servers[self.base_url].value if self.base_url in _servers else None
        return known.mode if known is not None else None

    async def prepare(self) -> None:
        await self.resolve()

    async def resolve(self) -> StructuredMode:
        """The structured-output mode, and a model id when none was given (the server's first);
        asks the server once per base URL and process."""
        if self._requested_mode != "auto" and self._model:
            return self._requested_mode
        info = await self.server_info()
        if not self._model:
            if not info.models:
                raise ConfigError(
                    f"no model given and {redact(self.base_url)}/models lists none - pass "
                    "model=... or --model, or set LLMCAT_MODEL"
                )
            self._model = info.models[0]
        elif (
            info.mode in ("vllm", "vllm-guided") and info.models and self._model not in info.models
        ):
            # vLLM lists every name it serves (aliases and adapters too): this one would 404.
            raise EndpointError(
                f"{redact(self.base_url)} does not serve model {self._model!r}; it serves "
                f"{', '.join(info.models)}",
                status_code=404,
            )
        return self._requested_mode if self._requested_mode != "auto" else info.mode

    async def server_info(self) -> ServerInfo:
        """What the server is, probed once per base URL and process: the first caller probes,
        callers that arrive meanwhile (any thread, any loop) wait for its answer. A failed probe
        is not remembered, so the next request tries again."""
        with _servers_lock:
            once = _servers.setdefault(self.base_url, AsyncOnce())
        return await once.get(self._probe)

    async def _probe(self) -> ServerInfo:
        """``GET /models`` (and ``/version`` of a vLLM server)."""
        owners: list[str] = []
        ids: list[str] = []
        not_openai = EndpointError(
            f"{redact(self.base_url)} is not an OpenAI-compatible API: GET /models did not answer "
            "with a model list (does the base URL end in /v1?)"
        )
        try:
            with translate_errors(self.base_url):
                # A deadline on the whole call: the SDK's timeout is per read, and a server that
                # trickles a byte at a time would hold the run for minutes.
                page = await asyncio.wait_for(self.client.models.list(), self._timeout)
        except asyncio.TimeoutError:
            raise TransportError(
                f"{redact(self.base_url)}: GET /models did not finish within {self._timeout:g}s"
            ) from None
        except EndpointError as exc:
            if exc.status_code != 404:
                raise
            page = None  # a server without /models: it can still serve a model given by name
        except (AttributeError, TypeError) as exc:  # the SDK choking on an HTML page
            raise not_openai from exc
        if page is not None:
            data = getattr(page, "data", None)
            if not isinstance(data, list) or not all(
                isinstance(getattr(m, "id", None), str) for m in data
            ):
                raise not_openai
            ids = [m.id for m in data]
            owners = [str(getattr(m, "owned_by", "") or "") for m in data]
        mode = detect_mode(self.base_url, owners)
        if mode == "vllm":
            mode = vllm_mode(await self._server_version())
        return ServerInfo(mode=mode, models=tuple(ids))

    async def _server_version(self) -> str | None:
        """vLLM's ``GET /version`` (served beside ``/v1``), or None when it does not answer."""

        url = f"{self.base_url.removesuffix('/v1')}/version"
        answer = await asyncio.to_thread(fetch_json, url, deadline=min(self._timeout, 10.0))
        version = answer.get("version") if isinstance(answer, dict) else None
        return str(version) if version else None

    async def count_prompt_tokens(self, request: CompletionRequest) -> int | None:
        """A vLLM server's ``POST /tokenize`` with the chat messages; None from other servers."""

        if await self.resolve() not in ("vllm", "vllm-guided"):
            return None
        body = {
            "model": self._model,
            "messages": request.wire_messages(),
            "add_generation_prompt": True,
        }
        url = f"{self.base_url.removesuffix('/v1')}/tokenize"

        headers = {"Content-Type": "application/json"}
        if self._api_key != "EMPTY":
            headers["Authorization"] = f"Bearer {self._api_key}"
        answer = await asyncio.to_thread(
            fetch_json,
            url,
            data=json.dumps(body).encode(),
            headers=headers,
            deadline=min(self._timeout, 30.0),
        )
        count = answer.get("count") if isinstance(answer, dict) else None
        return int(count) if isinstance(count, int) else None

    async def complete(self, request: CompletionRequest) -> Completion:
        from llmcat.backends import check_allowed

        check_allowed(self.name)
        mode = await self.resolve()
        kwargs = build_chat_kwargs(request, model=self._model, mode=mode)
        with translate_errors(self.base_url):
            response = await self.client.chat.completions.create(**kwargs)
        return self.completion_from(response, request, mode)

    def completion_from(
        self, response: ChatCompletion | str, request: CompletionRequest, mode: StructuredMode
    ) -> Completion:
        """A chat completion response (the SDK's object) as a ``Completion`` for ``request``."""
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
        self._clients.forget()


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
