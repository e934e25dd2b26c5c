"""Run a suite: classify and describe every item, score it, and return the run's summary and
samples (``records``: their types and files; ``gate``: the verdict against a baseline)."""

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
from typing import Any, cast

from llmcat import Backend, Classifier, Describer, Embedder, Settings
from llmcat.completions import CompletionRequest, requests_seen
from llmcat.embeddings import HashingEmbedder, local_embedder_available
from llmcat.errors import ConfigError
from llmcat.examples import ExampleSource
from llmcat.options import ClassifyOptions, CopyLimits
from llmcat.overrides import CopyOverrides
from llmcat.runner import Progress, map_ordered
from llmcat.types import Description

from . import metrics as M
from .paths import CHECKOUT
from .records import (
    ClassificationSample,
    DescriptionSample,
    GitState,
    Manifest,
    Metrics,
    RunSummary,
    Samples,
)
from .suites import ClassificationRecord, DescriptionRecord, Suite

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


# -- running ------------------------------------------------------------------------------------


async def _timed(
    worker: Any, items: Sequence[Any], concurrency: int, *, label: str
) -> tuple[list[tuple[Any, float, list[CompletionRequest]]], float]:
    """Each item's result, latency and requests, and the wall time; a progress bar on a
    terminal."""

    async def one(item: Any, _: int) -> tuple[Any, float, list[CompletionRequest]]:
        start = time.perf_counter()
        with requests_seen() as seen:  # the item's prompts, for the report
            result = await worker(item)
        return result, time.perf_counter() - start, seen

    bar = Progress(len(items), label=label)
    start = time.perf_counter()
    out = []
    try:
        async for result in map_ordered(one, items, concurrency=concurrency):
            out.append(result)
            bar.update(error=getattr(result[0], "error", None) is not None)
    finally:
        bar.close()
    return out, time.perf_counter() - start


async def run_classification(
    suite: Suite,
    options: RunOptions,
    *,
    strategy: str,
    backend: Backend | None = None,
    embedder: Embedder | None = None,
    examples: ExampleSource | None = None,
) -> tuple[list[ClassificationSample], Metrics, Classifier]:
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
    await clf.aobserve_catalogue([r.product for r in suite.classify])
    observing = time.perf_counter() - observing
    results, wall = await _timed(
        lambda r: clf.aclassify(r.product),
        suite.classify,
        clf.concurrency,
        label=f"{suite.name}: classify ({clf.strategy})",
    )
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
        for record, (result, latency, seen) in zip(suite.classify, results, strict=True)
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
    suite: Suite, options: RunOptions, *, backend: Backend | None = None
) -> tuple[list[DescriptionSample], Metrics, Describer]:
    describer = Describer(backend=backend, settings=options.settings)
    lim = options.limits

    async def one(record: DescriptionRecord) -> Description:
        return await describer.adescribe(record.product, **_copy_options(record, lim))

    results, wall = await _timed(
        one, suite.describe, describer.concurrency, label=f"{suite.name}: describe"
    )
    samples = [
        _description_sample(record, result, lim, latency, seen)
        for record, (result, latency, seen) in zip(suite.describe, results, strict=True)
    ]
    block = _description_block(suite, samples, wall)
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
    suite: Suite, options: RunOptions, *, backend: Backend | None = None
) -> tuple[RunSummary, Samples]:
    """Everything for run.json (metrics + manifest) and the samples."""
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
    if options.task in ("all", "classify") and suite.classify:
        cls_samples, block, clf = await run_classification(
            suite, options, strategy=options.classify.strategy, backend=backend, examples=examples
        )
        samples += cls_samples
        metrics.update(block)
        plan = (await clf.aplan()).as_dict()
        templates["classify"] = clf.prompt_version
        backend_name = clf.backend.name
        if options.embedding_baseline and clf.strategy != "embedding":
            usable = options.classify.embedding_model is not None or local_embedder_available()
            embedder = None if usable else HashingEmbedder()
            base_samples, base_block, base_clf = await run_classification(
                suite, options, strategy="embedding", backend=backend, embedder=embedder
            )
            await base_clf.aclose()
            samples += [s.model_copy(update={"baseline": True}) for s in base_samples]
            baselines["embedding"] = base_block
        await clf.aclose()
    if options.task in ("all", "describe") and suite.describe:
        desc_samples, block, describer = await run_description(suite, options, backend=backend)
        samples += desc_samples
        metrics["description"] = block
        composed_samples, baselines["composed"] = run_composed(suite, options, describer)
        samples += composed_samples
        templates["describe"] = describer.template.version
        backend_name = backend_name or describer.backend.name
        await describer.aclose()
    if not samples:
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
    run = RunSummary(suite=suite.name, metrics=metrics, baselines=baselines, manifest=manifest)
    return run, samples


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
    suite: Suite, options: RunOptions, backend: Backend | None = None
) -> tuple[RunSummary, Samples]:
    return asyncio.run(run_suite(suite, options, backend=backend))
