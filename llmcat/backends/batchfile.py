"""Provider batch jobs: the OpenAI Batch API's JSONL, which vLLM also runs offline
(``python -m vllm.entrypoints.openai.run_batch``).

- ``BatchExportBackend`` writes each request a run would send as one line
  ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}``: the exact body the
  ``openai`` backend sends (constraint, logprobs, sampling), and answers with a placeholder so the
  run goes on. Requests already in the cache are answered from it and not exported; placeholders
  are never cached.
- ``BatchImportBackend`` answers each request from a provider's result file, found by the same
  ``custom_id`` (a digest of the body), through the ``openai`` backend's own response parsing: the
  results, error records and cache entries are those of a live run.

A request that depends on an earlier answer (the next level of ``hierarchical``, a re-ask) is
exported along the placeholder's path; after an import it is missing from the results, which makes
its item an error record that says to export again: each export then holds the next round.
"""

from __future__ import annotations

import hashlib
import json
import threading
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from llmcat.backends.base import Backend
from llmcat.backends.fake import FakeBackend
from llmcat.backends.openai import OpenAIBackend, build_chat_kwargs
from llmcat.errors import BackendError, ConfigError
from llmcat.llm.completions import Completion, CompletionRequest

if TYPE_CHECKING:
    from pydantic import JsonValue

    from llmcat.backends.openai import StructuredMode

CHAT_URL = "/v1/chat/completions"


def batch_body(
    request: CompletionRequest, backend: OpenAIBackend, mode: StructuredMode
) -> dict[str, JsonValue]:
    """The JSON body ``backend`` would POST for ``request`` (``extra_body`` merged in)."""
    kwargs = build_chat_kwargs(request, model=backend.model, mode=mode)
    extra = kwargs.pop("extra_body", None) or {}
    return {**kwargs, **extra}


def custom_id(body: dict[str, JsonValue]) -> str:
    """The line's id: a digest of the body, so an import finds the answer of the same request."""
    blob = json.dumps(body, sort_keys=True, ensure_ascii=False).encode()
    return "llmcat-" + hashlib.sha256(blob).hexdigest()[:32]


def _openai(inner: Backend, what: str) -> OpenAIBackend:
    if not isinstance(inner, OpenAIBackend):
        raise ConfigError(
            f"{what} needs the openai backend (a server's --base-url, OpenAI's API or vLLM); "
            f"the {inner.name} backend has no batch jobs"
        )
    return inner


class _AroundServer(Backend):
    """What both batch backends share: the ``openai`` backend they stand in for, whose name
    they take so that cache keys are those of a live run."""

    def __init__(self, inner: Backend, what: str, path: Path) -> None:
        self.inner = _openai(inner, what)
        self.name = self.inner.name
        self.max_concurrency = self.inner.max_concurrency
        self.path = path

    @property
    def model(self) -> str:
        return self.inner.model

    async def prepare(self) -> None:
        await self.inner.prepare()

    async def release_loop_resources(self) -> None:
        await self.inner.release_loop_resources()

    async def aclose(self) -> None:
        await self.inner.aclose()


class BatchExportBackend(_AroundServer):
    """See the module docstring."""

    def __init__(self, inner: Backend, path: Path) -> None:
        super().__init__(inner, "--batch-export", path)
        self.exported = 0
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._placeholder = FakeBackend()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")

    async def complete(self, request: CompletionRequest) -> Completion:
        body = batch_body(request, self.inner, await self.inner.resolve())
        key = custom_id(body)
        line = {"custom_id": key, "method": "POST", "url": CHAT_URL, "body": body}
        with self._lock:
            if key not in self._seen:
                self._seen.add(key)
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(line, ensure_ascii=False) + "\n")
                self.exported += 1
        answer = await self._placeholder.complete(request)
        return answer.model_copy(update={"model": self.model})


class BatchImportBackend(_AroundServer):
    """See the module docstring."""

    def __init__(self, inner: Backend, path: Path) -> None:
        super().__init__(inner, "--batch-import", path)
        self.answers = read_results(path)

    async def complete(self, request: CompletionRequest) -> Completion:
        from openai.types.chat import ChatCompletion

        mode = await self.inner.resolve()
        key = custom_id(batch_body(request, self.inner, mode))
        entry = self.answers.get(key)
        if entry is None:
            raise BackendError(
                f"this request is not in {self.path} (a later round: run --batch-export again "
                "for the requests that are still missing)",
                retryable=False,
            )
        response: BatchResponse = entry.get("response") or {}
        status = response.get("status_code", 200)
        if entry.get("error") or status != 200:
            detail = entry.get("error") or response.get("body")
            raise BackendError(
                f"the batch answered this request with an error (status {status}): "
                f"{json.dumps(detail)[:300]}",
                retryable=False,
                status_code=status,
            )
        completion = ChatCompletion.model_validate(response.get("body") or {})
        return self.inner.completion_from(completion, request, mode)


class BatchResponse(TypedDict, total=False):
    """The ``response`` of a batch result line."""

    status_code: int
    body: dict[str, JsonValue]


class BatchResult(TypedDict, total=False):
    """One line of a provider's batch result file."""

    custom_id: str
    response: BatchResponse | None
    error: JsonValue


class RelaySlot(TypedDict, total=False):
    """One item's relay slot (``RelayBackend``)."""

    #: the request bodies the item made (``capture``)
    requests: list[dict[str, JsonValue]]
    #: chat completion bodies by ``custom_id`` of the request they answer (``answer``)
    responses: dict[str, JsonValue]


#: The current item's relay slot (``RelayBackend``): set by the caller around each item.
RELAY_SLOT: ContextVar[RelaySlot | None] = ContextVar("llmcat_relay_slot", default=None)


class RelayBackend(_AroundServer):
    """Model calls relayed through somebody else's transport (``llmcat.integrations.ray_data``'s path through
    ``ray.data.llm``'s HTTP processor), one item at a time; the item's slot is ``RELAY_SLOT``.

    - ``capture``: each request's body is appended to the slot's ``"requests"`` and answered with
      a placeholder (never cached), as ``BatchExportBackend`` does.
    - ``answer``: a request whose ``custom_id`` is in the slot's ``"responses"`` (chat completion
      bodies) is answered from it through the ``openai`` backend's parsing; any other (a re-ask,
      the next level of ``hierarchical``) is sent to the server as usual.
    """

    def __init__(self, inner: Backend, mode: str) -> None:
        super().__init__(inner, "the ray.data.llm HTTP path", Path("-"))
        if mode not in ("capture", "answer"):
            raise ValueError(f"unknown relay mode {mode!r}")
        self.mode = mode
        self._placeholder = FakeBackend()

    async def complete(self, request: CompletionRequest) -> Completion:
        slot = RELAY_SLOT.get()
        if slot is None:
            raise RuntimeError("RelayBackend needs RELAY_SLOT set around each item")
        mode = await self.inner.resolve()
        body = batch_body(request, self.inner, mode)
        if self.mode == "capture":
            slot.setdefault("requests", []).append(body)
            answer = await self._placeholder.complete(request)
            return answer.model_copy(update={"model": self.model})
        response = slot.get("responses", {}).get(custom_id(body))
        if response is None:
            return await self.inner.complete(request)
        if not isinstance(response, dict) or not response.get("choices"):
            raise BackendError(
                f"the server answered with an error: {json.dumps(response)[:300]}",
                retryable=False,
            )
        from openai.types.chat import ChatCompletion

        return self.inner.completion_from(ChatCompletion.model_validate(response), request, mode)


def read_results(path: Path) -> dict[str, BatchResult]:
    """A provider's result file: one JSON object per line with ``custom_id``."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read batch results {path}: {exc.strerror or exc}") from None
    answers: dict[str, BatchResult] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry: BatchResult = json.loads(line)
        except ValueError:
            raise ConfigError(f"{path} line {n} is not JSON: not a batch result file") from None
        if not isinstance(entry, dict) or "custom_id" not in entry:
            raise ConfigError(f"{path} line {n} has no custom_id: not a batch result file")
        answers[str(entry["custom_id"])] = entry
    return answers


__all__ = [
    "RELAY_SLOT",
    "BatchExportBackend",
    "BatchImportBackend",
    "RelayBackend",
    "RelaySlot",
    "batch_body",
    "custom_id",
    "read_results",
]
