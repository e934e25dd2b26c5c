"""The wire-neutral request model: what any backend is asked (messages, an output constraint,
sampling) and what it answers (text, token logprobs, usage). Pure data; backends, prompts, the
cache and the strategies all speak it, and only a backend module turns it into a wire format.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmcat.types import Usage


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
    # Any: a JSON schema as the caller wrote it; validating it as JsonValue would copy every node
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
    images: list[str] = Field(
        default_factory=list,
        description="Images shown with the last user message: http(s) URLs or data URIs.",
    )

    def wire_messages(self) -> list[dict[str, object]]:
        """The messages in the OpenAI chat format; images become ``image_url`` content parts
        after the text of the last user message."""
        out: list[dict[str, object]] = [m.model_dump() for m in self.messages]
        if self.images:
            last = max(i for i, m in enumerate(self.messages) if m.role == "user")
            out[last]["content"] = [
                {"type": "text", "text": self.messages[last].content},
                *({"type": "image_url", "image_url": {"url": url}} for url in self.images),
            ]
        return out

    def cache_key(self, backend: str, model: str) -> str:
        """A digest of exactly what changes the output (never timeouts or retry settings); an
        image counts by the digest of its URL or data URI (so by its content when inlined)."""
        payload: dict[str, object] = {
            "backend": backend,
            "model": model,
            "messages": [m.model_dump() for m in self.messages],
            "constraint": self.constraint.model_dump() if self.constraint else None,
            "sampling": self.sampling.model_dump(),
            "prompt_version": self.prompt_version,
        }
        if self.images:  # only then: keys of requests without images stay as they were
            payload["images"] = [hashlib.sha256(url.encode()).hexdigest() for url in self.images]
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
    images_sent: bool = Field(
        default=False,
        description="Whether the product's images went with the request (set by the Engine).",
    )
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


def usage_of(completion: Completion) -> Usage:
    """The tokens of one completion; a cache hit costs no call."""
    return Usage(
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        calls=0 if completion.cached else 1,
        with_images=int(completion.images_sent),
    )


# The requests made in the current context, when someone asked to see them (the eval harness
# keeps each item's prompts so that its report can show them). A ContextVar: concurrent items
# run in their own tasks, and each sees only its own list.
_SEEN: ContextVar[list[CompletionRequest] | None] = ContextVar("llmcat_requests_seen", default=None)


@contextmanager
def requests_seen() -> Iterator[list[CompletionRequest]]:
    """Collect every request made inside the block (cached answers included), in order."""
    seen: list[CompletionRequest] = []
    token = _SEEN.set(seen)
    try:
        yield seen
    finally:
        _SEEN.reset(token)


def note_request(request: CompletionRequest) -> None:
    """Record ``request`` for ``requests_seen``; nothing when no one is looking."""
    seen = _SEEN.get()
    if seen is not None:
        seen.append(request)
