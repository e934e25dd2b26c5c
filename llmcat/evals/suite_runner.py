"""Run a suite: classify and describe every item, score it, and return the run's summary and
samples (``records``: their types and files; ``gate``: the verdict against a baseline;
``stop_and_progress``: how a run shows progress and stops early, as a partial run).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import platform
import random
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import cast

from llmcat import Backend, Classifier, Describer, Embedder, Settings
from llmcat.config.options import ClassifyOptions, CopyLimits
from llmcat.config.overrides import CopyOverrides
from llmcat.embeddings import HashingEmbedder, local_embedder_available
from llmcat.errors import ConfigError
from llmcat.evals import metrics as M
from llmcat.evals.paths import CHECKOUT
from llmcat.evals.records import (
    ClassificationSample,
    DescriptionSample,
    GitState,
    Manifest,
    Metrics,
    RunSummary,
    Samples,
)
from llmcat.evals.stop_and_progress import Stop, Stopped, timed
from llmcat.evals.suites import ClassificationRecord, DescriptionRecord, Suite
from llmcat.learning.examples import ExampleSource
from llmcat.llm.completions import CompletionRequest
from llmcat.types import Description

PACKAGES = (
    "llmcat",
    "openai",
    "pydantic",
    "jinja2",
    "llama_cpp_python",
    "sentence-transformers",
    "torch",
    "vllm",
)


@dataclass
class RunOptions:
    """What a run is: the suite and how it is cut, and the library's own options as they are
    (``classify``: ``ClassifyOptions``; ``settings``: ``Settings``), never restated here."""

    suite: str = "golden"
    task: str = "all"  # all | classify | describe
    limit: int | None = None
    seed: int = 0
    embedding_baseline: bool = True
    examples: Path | None = None  # labelled products (a file in any example format)
    example_split: float | None = None  # or: this share of the suite becomes the examples
    classify: ClassifyOptions = field(default_factory=ClassifyOptions)
    settings: Settings = field(default_factory=lambda: Settings(progress=False))
    limits: CopyLimits = field(default_factory=CopyLimits)


async def run_classification(
    suite: Suite,
    options: RunOptions,
    *,
    strategy: str,
    backend: Backend | None = None,
    embedder: Embedder | None = None,
    examples: ExampleSource | None = None,
    stop: Stop | None = None,
) -> tuple[list[ClassificationSample], Metrics, Classifier]:
    """The samples and metrics of the items classified (all, or those finished before a stop:
    no metrics when none did); the classifier, for the caller to close."""
    stop = stop or Stop()
    chosen = options.classify
    clf = Classifier(
        suite.taxonomy,
        chosen,
        backend=backend,
        settings=options.settings,
        strategy=strategy,
        embedder=embedder,
        calibration=chosen.calibration if strategy != "embedding" else None,
        examples=examples,
        embedding_model=chosen.embedding_model if embedder is None else None,
    )
    observing = time.perf_counter()
    # One catalogue: its confidence follows the suite's spread, as a batch's would.
    try:
        await stop.race(clf.aobserve_catalogue([r.product for r in suite.classify]))
    except Stopped:
        return [], {}, clf
    observing = time.perf_counter() - observing
    results, wall = await timed(
        lambda r: clf.aclassify(r.product),
        suite.classify,
        clf.concurrency,
        label=f"{suite.name}: classify ({clf.strategy})",
        stop=stop,
    )
    if not results:
        return [], {}, clf
    wall += observing
    samples = [
        ClassificationSample(
            strategy=clf.strategy,
            id=record.id,
            input=record.product.model_dump(mode="json", exclude_defaults=True),
            gold=list(record.gold.path),
            gold_id=_node_id(suite, record.gold.path),
            output=result,
            scores=M.score_classification(
                record.gold.path, result, suite.taxonomy, suite.max_level
            ),
            latency_s=latency,
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
            cached=result.cached,
            prompts=prompt_messages(seen),
        )
        for record, (result, latency, seen) in zip(
            suite.classify[: len(results)], results, strict=True
        )
    ]
    block: Metrics = dict(M.classification_metrics([s.outcome() for s in samples], suite.max_level))
    block.update(M.usage_metrics(samples, wall))
    block["strategy"] = clf.strategy
    block["model"] = next((s.output.model for s in samples if s.output.model), clf.backend.model)
    block["prompt_version"] = clf.prompt_version
    # How fused experts were weighted (the same for every item of a run), for the summary.
    block["trust"] = next((s.output.trust for s in samples if s.output.trust), "")
    return samples, block, clf


async def run_description(
    suite: Suite, options: RunOptions, *, backend: Backend | None = None, stop: Stop | None = None
) -> tuple[list[DescriptionSample], Metrics, Describer]:
    """As ``run_classification``, for the copy cases."""
    describer = Describer(backend=backend, settings=options.settings)
    lim = options.limits

    async def one(record: DescriptionRecord) -> Description:
        return await describer.adescribe(record.product, **_copy_options(record, lim))

    results, wall = await timed(
        one, suite.describe, describer.concurrency, label=f"{suite.name}: describe", stop=stop
    )
    if not results:
        return [], {}, describer
    done = suite.describe[: len(results)]
    samples = [
        _description_sample(record, result, lim, latency, seen)
        for record, (result, latency, seen) in zip(done, results, strict=True)
    ]
    block = _description_block(replace(suite, describe=done), samples, wall)
    block["model"] = next(
        (s.output.model for s in samples if s.output.model), describer.backend.model
    )
    block["prompt_version"] = describer.template.version
    return samples, block, describer


def run_composed(
    suite: Suite, options: RunOptions, describer: Describer
) -> tuple[list[DescriptionSample], Metrics]:
    """The copy baseline: composed copy for every copy case, scored like the model's."""
    lim = options.limits
    t0 = time.perf_counter()
    samples = []
    for record in suite.describe:
        start = time.perf_counter()
        result = describer.compose(record.product, **_copy_options(record, lim))
        sample = _description_sample(record, result, lim, time.perf_counter() - start)
        samples.append(sample.model_copy(update={"baseline": True}))
    block = _description_block(suite, samples, time.perf_counter() - t0)
    # No model wrote this copy: the model-copy rows do not apply.
    block.update({k: None for k in block if k.startswith("model_")})
    block["model"] = "composed"
    return samples, block


def _copy_options(record: DescriptionRecord, limits: CopyLimits) -> CopyOverrides:
    options = {"language": record.language, "must_mention": record.must_mention}
    return cast(CopyOverrides, {**options, **limits.model_dump()})


def prompt_messages(requests: Sequence[CompletionRequest]) -> list[list[dict[str, str]]]:
    """The messages of each request, as a sample keeps them."""
    return [[m.model_dump() for m in r.messages] for r in requests]


def _description_sample(
    record: DescriptionRecord,
    result: Description,
    limits: CopyLimits,
    latency: float,
    requests: Sequence[CompletionRequest] = (),
) -> DescriptionSample:
    return DescriptionSample(
        id=record.id,
        input=record.product.model_dump(mode="json", exclude_defaults=True),
        must_mention=list(record.must_mention),
        language=record.language,
        output=result,
        scores=M.score_description(
            record.product,
            result,
            limits,
            must_mention=record.must_mention,
            forbidden=record.forbidden,
            language=record.language,
        ),
        latency_s=latency,
        prompt_tokens=result.usage.prompt_tokens,
        completion_tokens=result.usage.completion_tokens,
        cached=result.cached,
        prompts=prompt_messages(requests),
    )


def _description_block(suite: Suite, samples: list[DescriptionSample], wall: float) -> Metrics:
    block: Metrics = {}
    block.update(
        M.description_metrics([s.scores for s in samples], [r.language for r in suite.describe])
    )
    block.update(M.usage_metrics(samples, wall))
    return block


async def run_suite(
    suite: Suite, options: RunOptions, *, backend: Backend | None = None, stop: Stop | None = None
) -> tuple[RunSummary, Samples]:
    """Everything for run.json (metrics + manifest) and the samples; after a stop, those of the
    items finished by then, with ``interrupted`` saying so."""
    stop = stop or Stop()
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    samples: Samples = []
    metrics: Metrics = {}
    baselines: dict[str, Metrics] = {}
    templates: dict[str, str] = {}
    backend_name = ""
    plan = None
    examples: ExampleSource | None = options.examples
    if options.example_split is not None:
        pool, test = split_examples(suite.classify, options.example_split, options.seed)
        suite = replace(suite, classify=test)
        examples = [(r.product, r.gold.path) for r in pool]
    classified = described = 0
    try:
        if options.task in ("all", "classify") and suite.classify:
            cls_samples, block, clf = await run_classification(
                suite,
                options,
                strategy=options.classify.strategy,
                backend=backend,
                examples=examples,
                stop=stop,
            )
            try:
                samples += cls_samples
                classified = len(cls_samples)
                metrics.update(block)
                templates["classify"] = clf.prompt_version
                backend_name = clf.backend.name
                plan = (await stop.race(clf.aplan())).as_dict()  # Stopped after a stop
                if options.embedding_baseline and clf.strategy != "embedding":
                    usable = (
                        options.classify.embedding_model is not None or local_embedder_available()
                    )
                    embedder = None if usable else HashingEmbedder()
                    base_samples, base_block, base_clf = await run_classification(
                        suite,
                        options,
                        strategy="embedding",
                        backend=backend,
                        embedder=embedder,
                        stop=stop,
                    )
                    await base_clf.aclose()
                    if stop.signum is not None:
                        raise Stopped  # a baseline of some items only would not compare
                    samples += [s.model_copy(update={"baseline": True}) for s in base_samples]
                    baselines["embedding"] = base_block
            finally:
                await clf.aclose()
        if stop.signum is None and options.task in ("all", "describe") and suite.describe:
            desc_samples, block, describer = await run_description(
                suite, options, backend=backend, stop=stop
            )
            try:
                samples += desc_samples
                described = len(desc_samples)
                if desc_samples:
                    metrics["description"] = block
                templates["describe"] = describer.template.version
                backend_name = backend_name or describer.backend.name
                if stop.signum is None:
                    composed_samples, baselines["composed"] = run_composed(
                        suite, options, describer
                    )
                    samples += composed_samples
            finally:
                await describer.aclose()
    except Stopped:
        pass  # what finished is kept below
    interrupted = None
    if stop.signum is not None:
        interrupted = _interrupted(stop, suite, options, classified, described)
    elif not samples:
        raise ConfigError(f"suite {suite.name!r} has nothing to run for task {options.task!r}")
    description = metrics.get("description")
    copy_model = description.get("model", "") if isinstance(description, dict) else ""
    model = metrics.get("model") or copy_model
    manifest = Manifest(
        started=started.isoformat(timespec="seconds"),
        duration_s=round(time.perf_counter() - t0, 3),
        git=git_state(),
        packages=package_versions(),
        python=platform.python_version(),
        backend=backend_name,
        model=model if isinstance(model, str) else "",
        strategy=str(metrics.get("strategy", "")),
        calibration=_named(options.classify.calibration),
        templates=templates,
        dataset_sha256=suite.dataset_sha256,
        taxonomy_version=suite.taxonomy.version,
        taxonomy_nodes=len(suite.taxonomy),
        seed=options.seed,
        examples=str(options.examples) if options.examples else None,
        example_split=options.example_split,
        trust=None if options.classify.trust == "auto" else _named(options.classify.trust),
        embedding_model=options.classify.embedding_model,
        limit=options.limit,
        task=options.task,
        plan=plan,
    )
    run = RunSummary(
        suite=suite.name,
        metrics=metrics,
        baselines=baselines,
        manifest=manifest,
        interrupted=interrupted,
    )
    return run, samples


def _interrupted(
    stop: Stop, suite: Suite, options: RunOptions, classified: int, described: int
) -> str:
    """How far a stopped run got, in words, for run.json and the summary."""
    parts = []
    if options.task in ("all", "classify") and suite.classify:
        parts.append(f"{classified} of {len(suite.classify)} products classified")
    if options.task in ("all", "describe") and suite.describe:
        parts.append(f"{described} of {len(suite.describe)} copy cases written")
    return f"{stop.name} after {', '.join(parts) or 'nothing'}"


def _named(choice: object) -> str | None:
    """An option that may be a path or a fitted object, as the manifest records it."""
    if choice is None or isinstance(choice, (str, Path)):
        return None if choice is None else str(choice)
    return type(choice).__name__


def _node_id(suite: Suite, path: Sequence[str]) -> str | None:
    node = suite.taxonomy.find_path(list(path))
    return node.id if node is not None else None


def split_examples(
    records: Sequence[ClassificationRecord], share: float, seed: int
) -> tuple[list[ClassificationRecord], list[ClassificationRecord]]:
    """(pool, test): ``share`` of every group (stratified, seeded) becomes the labelled pool."""
    if not 0 < share < 1:
        raise ConfigError(f"--example-split must be between 0 and 1, got {share}")
    groups: dict[str, list[ClassificationRecord]] = {}
    for r in records:
        groups.setdefault(r.group or " > ".join(r.gold.path[:1]), []).append(r)
    rng = random.Random(seed)
    pool_ids: set[str] = set()
    for members in groups.values():
        chosen = rng.sample(members, round(len(members) * share))
        pool_ids.update(r.id for r in chosen)
    pool = [r for r in records if r.id in pool_ids]
    return pool, [r for r in records if r.id not in pool_ids]


def git_state() -> GitState:
    """The checkout's commit and whether it has uncommitted changes (None outside a checkout)."""
    if CHECKOUT is None:
        return GitState()

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=CHECKOUT, capture_output=True, text=True, check=False
            )
        except OSError:  # no git on the machine
            return ""
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    return GitState(
        commit=commit or None, dirty=bool(git("status", "--porcelain", "--untracked-files=no"))
    )


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def run_blocking(
    suite: Suite, options: RunOptions, backend: Backend | None = None, *, stop: Stop | None = None
) -> tuple[RunSummary, Samples]:
    """``run_suite`` in an event loop of its own. With ``stop``, SIGINT and SIGTERM stop the run
    (``Stop``), and a stopped run returns without waiting for model calls still running in
    threads (the caller ends the process soon after: ``exit_soon``)."""
    if stop is None:
        return asyncio.run(run_suite(suite, options, backend=backend))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # as asyncio.run does
    try:
        with stop.handling(loop):
            return loop.run_until_complete(run_suite(suite, options, backend=backend, stop=stop))
    finally:
        try:
            _cancel_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            if stop.signum is None:  # as asyncio.run does; a stopped run does not wait
                loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_tasks(loop: asyncio.AbstractEventLoop) -> None:
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
