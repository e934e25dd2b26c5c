"""A scripted, deterministic backend for tests, docs and dry runs. No model, no network.

    backend = FakeBackend()
    backend.enqueue("Shoes")                  # next answer, verbatim
    backend.enqueue(BackendError("boom", retryable=True))   # next call raises
    backend.responder = lambda request: ...   # or compute answers from the request

With nothing queued and no responder it answers the first choice of a ChoiceConstraint, a
minimal JSON object for a JsonConstraint, and ``"ok"`` otherwise.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from llmcat.backends.base import Backend
from llmcat.llm.completions import ChoiceConstraint, Completion, CompletionRequest, JsonConstraint

if TYPE_CHECKING:
    from pydantic import JsonValue

    from llmcat.config.settings import Settings

Responder = Callable[[CompletionRequest], "str | Completion"]


class FakeBackend(Backend):
    """Answers from a queue or a function; records every request it saw in ``requests``."""

    name = "fake"
    max_concurrency = 4

    def __init__(
        self,
        responses: list[str | Completion | BaseException] | None = None,
        *,
        responder: Responder | None = None,
        model: str = "fake-model",
        choice_probabilities: dict[str, float] | None = None,
        vision: bool | None = None,
    ) -> None:
        self.vision = vision
        self._queue: deque[str | Completion | BaseException] = deque(responses or [])
        self.responder = responder
        self._model = model
        self.choice_probabilities = choice_probabilities
        self.requests: list[CompletionRequest] = []

    @classmethod
    def from_settings(cls, settings: Settings) -> FakeBackend:
        return cls(model=settings.model or "fake-model")

    @property
    def model(self) -> str:
        return self._model

    def enqueue(self, *responses: str | Completion | BaseException) -> None:
        """Queue answers (or exceptions to raise) for the next calls, in order."""
        self._queue.extend(responses)

    async def complete(self, request: CompletionRequest) -> Completion:
        self.requests.append(request)
        item: str | Completion | BaseException
        if self._queue:
            item = self._queue.popleft()
        elif self.responder is not None:
            item = self.responder(request)
        else:
            item = _default_answer(request)
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, Completion):
            return item
        return self._completion(request, item)

    def _completion(self, request: CompletionRequest, text: str) -> Completion:
        prompt_tokens = sum(len(m.content.split()) for m in request.messages)
        choice_logprobs = None
        if isinstance(request.constraint, ChoiceConstraint) and self.choice_probabilities:
            choice_logprobs = {
                c: math.log(max(self.choice_probabilities.get(c, 1e-9), 1e-12))
                for c in request.constraint.choices
            }
        return Completion(
            text=text,
            model=self._model,
            finish_reason="stop",
            prompt_tokens=prompt_tokens,
            completion_tokens=max(1, len(text.split())),
            choice_logprobs=choice_logprobs,
        )


def _default_answer(request: CompletionRequest) -> str:
    constraint = request.constraint
    if isinstance(constraint, ChoiceConstraint):
        return constraint.choices[0]
    if isinstance(constraint, JsonConstraint):
        return json.dumps(_minimal_instance(constraint.json_schema))
    return "ok"


def _minimal_instance(schema: dict[str, Any]) -> JsonValue:
    """The smallest value that validates against a simple JSON schema."""
    # Any: a schema is walked by key; what each key holds is the schema's to say, not mypy's.
    kind = schema.get("type")
    if "enum" in schema:
        first: JsonValue = schema["enum"][0]
        return first
    if kind == "object":
        props = schema.get("properties", {})
        return {
            k: _minimal_instance(v) for k, v in props.items() if k in schema.get("required", [])
        }
    if kind == "array":
        return [
            _minimal_instance(schema.get("items", {})) for _ in range(schema.get("minItems", 0))
        ]
    if kind == "string":
        return "x" * max(1, int(schema.get("minLength", 1)))
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    return None
