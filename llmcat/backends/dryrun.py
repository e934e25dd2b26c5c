"""``DryRunBackend``: what a run would send, counted, with nothing sent.

It wraps the backend a real run would use: every request is rendered as usual, its prompt tokens
are counted by the model's own tokenizer where the backend can (``Backend.count_prompt_tokens``:
llama.cpp in process, a vLLM server's ``/tokenize``) and estimated at 4 characters a token
otherwise, and it is answered by ``FakeBackend``'s placeholder (the first choice, a minimal JSON
object) so the run goes on. Strategies whose next request depends on the answer (hierarchical)
are therefore counted along the placeholder's path, and output re-asks are not counted.
``DryRunTally`` adds it all up, with the expected completion tokens: a label's length for a
choice (estimated), ``max_tokens`` for free text and JSON (an upper bound).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

from llmcat.backends.base import Backend
from llmcat.backends.fake import FakeBackend
from llmcat.llm.completions import ChoiceConstraint, Completion, CompletionRequest
from llmcat.types import Usage

#: characters a token, for estimates (English text with BPE tokenizers)
CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """A token count from the length of ``text``."""
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


@dataclass
class DryRunTally:
    """Requests and tokens a dry run saw; safe to update from several threads."""

    requests: int = 0
    prompt_counted: int = 0  # by the model's tokenizer
    prompt_estimated: int = 0  # by length, where no tokenizer answered
    completion_expected: int = 0  # choice labels (estimated)
    completion_at_most: int = 0  # free text and JSON: max_tokens
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, request: CompletionRequest, counted: int | None) -> None:
        constraint = request.constraint
        with self._lock:
            self.requests += 1
            if counted is None:
                self.prompt_estimated += sum(
                    estimate_tokens(m.content) + 4 for m in request.messages
                )
            else:
                self.prompt_counted += counted
            if isinstance(constraint, ChoiceConstraint):
                lengths = [estimate_tokens(c) for c in constraint.choices]
                self.completion_expected += round(sum(lengths) / len(lengths)) + 1
            else:
                self.completion_at_most += request.sampling.max_tokens or 0

    @property
    def prompt_tokens(self) -> int:
        return self.prompt_counted + self.prompt_estimated

    def lines(self, items: int, price_in: float | None, price_out: float | None) -> list[str]:
        """The report a dry run prints."""
        how = (
            "the model's tokenizer"
            if not self.prompt_estimated
            else "estimated at 4 characters a token"
            if not self.prompt_counted
            else f"{self.prompt_counted:,} by the model's tokenizer, the rest estimated"
        )
        out = [
            f"dry run: {items:,} items, {self.requests:,} model requests (no model was asked)",
            f"prompt tokens: {self.prompt_tokens:,} ({how})",
            f"completion tokens: about {self.completion_expected:,} for category answers "
            f"(estimated from the labels)"
            + (
                f", at most {self.completion_at_most:,} for free text and copy (max_tokens)"
                if self.completion_at_most
                else ""
            ),
        ]
        if price_in is not None or price_out is not None:
            low = cost(self.prompt_tokens, self.completion_expected, price_in, price_out)
            high = cost(
                self.prompt_tokens,
                self.completion_expected + self.completion_at_most,
                price_in,
                price_out,
            )
            shown = f"${low:,.4f}" if low == high else f"${low:,.4f} to ${high:,.4f}"
            out.append(
                f"cost: {shown} at ${price_in or 0:g} / ${price_out or 0:g} per million prompt / "
                "completion tokens"
            )
        return out


def cost(prompt: int, completion: int, price_in: float | None, price_out: float | None) -> float:
    """Dollars for token counts at per-million-token prices."""
    return Usage(prompt_tokens=prompt, completion_tokens=completion).cost(price_in, price_out)


class DryRunBackend(Backend):
    """See the module docstring."""

    name = "dry-run"
    honours_timeout = False

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.max_concurrency = inner.max_concurrency
        self.tally = DryRunTally()
        self._placeholder = FakeBackend()
        self._tokenizer = True  # until the inner backend fails to count once

    @property
    def model(self) -> str:
        return self.inner.model

    async def prepare(self) -> None:
        try:
            await self.inner.prepare()
        except Exception:  # an absent server: the dry run still counts, by estimate
            self._tokenizer = False

    async def complete(self, request: CompletionRequest) -> Completion:
        counted = None
        if self._tokenizer:
            try:
                counted = await self.inner.count_prompt_tokens(request)
            except Exception:  # the tokenizer is unavailable: estimate from here on
                self._tokenizer = False
        self.tally.add(request, counted)
        answer = await self._placeholder.complete(request)
        return answer.model_copy(
            update={"model": self.model, "prompt_tokens": counted or 0, "completion_tokens": 0}
        )

    async def release_loop_resources(self) -> None:
        await self.inner.release_loop_resources()

    async def aclose(self) -> None:
        await self.inner.aclose()


__all__ = ["DryRunBackend", "DryRunTally", "cost", "estimate_tokens"]
