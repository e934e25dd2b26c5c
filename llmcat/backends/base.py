"""The backend contract: one async method that sends messages plus an output constraint.

A backend turns a ``CompletionRequest`` into a ``Completion``. Everything optional is a method or
attribute with a default here, so a new backend only has to implement ``complete``.
"""

from __future__ import annotations

import abc
import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    """One chat message."""

    role: Literal["system", "user", "assistant"]
    content: str


class ChoiceConstraint(BaseModel):
    """The answer must be exactly one of ``choices``."""

    kind: Literal["choice"] = "choice"
    choices: list[str]


class JsonConstraint(BaseModel):
    """The answer must be a JSON document valid against ``json_schema``."""

    kind: Literal["json"] = "json"
    name: str = "output"
    json_schema: dict[str, Any]


Constraint = ChoiceConstraint | JsonConstraint


class Sampling(BaseModel):
    """Sampling parameters: everything here is part of the cache key."""

    temperature: float = 0.0
    max_tokens: int = 512
    seed: int | None = 0
    top_logprobs: int = Field(
        default=0, description="0: no logprobs; otherwise how many per token."
    )


class CompletionRequest(BaseModel):
    """What one model call asks for."""

    messages: list[Message]
    constraint: Constraint | None = None
    sampling: Sampling = Field(default_factory=Sampling)
    prompt_version: str = ""

    def cache_key(self, backend: str, model: str) -> str:
        """A digest of exactly what changes the output (never timeouts or retry settings)."""
        payload = {
            "backend": backend,
            "model": model,
            "messages": [m.model_dump() for m in self.messages],
            "constraint": self.constraint.model_dump() if self.constraint else None,
            "sampling": self.sampling.model_dump(),
            "prompt_version": self.prompt_version,
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()


class TokenLogprob(BaseModel):
    """One generated token, its log-probability and the most likely alternatives at its place."""

    # -inf (a token a constraint forbids) must survive the JSON round trip of the response cache.
    model_config = ConfigDict(ser_json_inf_nan="constants")

    token: str
    logprob: float
    top: dict[str, float] = Field(default_factory=dict)


class Completion(BaseModel):
    """What a backend returns for one request."""

    model_config = ConfigDict(ser_json_inf_nan="constants")

    text: str
    model: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    logprobs: list[TokenLogprob] | None = None
    choice_logprobs: dict[str, float] | None = Field(
        default=None,
        description=(
            "Exact log-likelihood of every choice of a ChoiceConstraint, for backends that can "
            "score them (the local engine does); None elsewhere."
        ),
    )
    cached: bool = False


class Backend(abc.ABC):
    """An LLM that can answer a ``CompletionRequest``."""

    #: registry name, recorded with results and in cache keys
    name: str = "base"
    #: how many requests a batch keeps in flight by default
    max_concurrency: int = 8
    #: whether a ChoiceConstraint is enforced by the engine (else llmcat parses and re-asks)
    enforces_choice: bool = True
    #: whether a JsonConstraint is enforced by the engine
    enforces_json: bool = True
    #: whether llmcat's per-call timeout applies; an in-process engine that answers a whole batch
    #: in one call (and loads its model in the first) cannot be timed per request
    honours_timeout: bool = True

    @property
    @abc.abstractmethod
    def model(self) -> str:
        """The model id as the backend knows it."""

    @abc.abstractmethod
    async def complete(self, request: CompletionRequest) -> Completion:
        """Answer one request; raise ``BackendError`` subclasses on failure."""

    def retry_after(self, error: BaseException) -> float | None:
        """Seconds the server asked us to wait before retrying ``error``, if it said."""
        return getattr(error, "retry_after", None)

    async def release_loop_resources(self) -> None:  # noqa: B027 - optional hook
        """Close what is bound to the running event loop (pooled connections). The blocking API
        runs each call in a fresh loop and calls this before that loop ends."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, empty on purpose
        """Release connections or engines."""
