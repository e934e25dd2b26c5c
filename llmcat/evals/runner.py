"""Run a suite, score every item, write run.json / samples.jsonl / summary.md / report.html, and
gate the run against a stored baseline.

Exit codes (``GateResult.exit_code``): 0 pass; 1 significant regression; 2 usage or configuration
error; 3 infrastructure errors above ``max_error_rate``; 4 baseline not comparable (dataset hash,
taxonomy or template differ).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import platform
import random
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llmcat import Backend, Classifier, Describer, Settings
from llmcat.embeddings import HashingEmbedder, local_embedder_available
from llmcat.errors import ConfigError
from llmcat.options import ClassifyOptions, CopyLimits
from llmcat.runner import map_ordered
from llmcat.types import Description

from . import metrics as M
from .paths import CHECKOUT
from .stats import mcnemar_exact, paired_bootstrap
from .suites import ClassificationRecord, DescriptionRecord, Suite

EXIT_PASS, EXIT_REGRESSION, EXIT_USAGE, EXIT_INFRA, EXIT_NOT_COMPARABLE = 0, 1, 2, 3, 4
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


def outcome_of(sample: dict[str, Any]) -> M.Outcome:
    output, scores = sample["output"], sample["scores"]
    pred = None if scores["invalid"] or scores["error"] else tuple(output["path"])
    return M.Outcome(
        gold=tuple(sample["gold"]),
        pred=pred,
        confidence=output.get("confidence"),
        error=scores["error"],
        invalid=scores["invalid"],
        in_shortlist=scores.get("in_shortlist"),
        shortlist_size=scores.get("shortlist_size"),
    )


# -- running ------------------------------------------------------------------------------------


async def _timed(
    worker: Any, items: Sequence[Any], concurrency: int
) -> tuple[list[tuple[Any, float]], float]:
    async def one(item: Any, _: int) -> tuple[Any, float]:
        start = time.perf_counter()
        result = await worker(item)
        return result, time.perf_counter() - start

    start = time.perf_counter()
    out = [r async for r in map_ordered(one, items, concurrency=concurrency)]
    return out, time.perf_counter() - start


async def run_classification(
    suite: Suite,
    options: RunOptions,
    *,
    strategy: str,
    backend: Backend | None = None,
    embedder: Any = None,
    examples: Any = None,
) -> tuple[list[dict[str, Any]], dict[str, Any], Classifier]:
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
    results, wall = await _timed(
        lambda r: clf.aclassify(r.product), suite.classify, clf.runner.concurrency
    )
    samples = []
    for record, (result, latency) in zip(suite.classify, results, strict=True):
        samples.append(
            {
                "task": "classify",
                "strategy": clf.strategy,
                "id": record.id,
                "input": record.product.model_dump(exclude_defaults=True),
                "gold": record.gold.path,
                "gold_id": _node_id(suite, record.gold.path),
                "output": result.model_dump(),
                "scores": M.score_classification(
                    record.gold.path, result, suite.taxonomy, suite.max_level
                ),
                "latency_s": latency,
                "prompt_tokens": result.usage.prompt_tokens,
                "completion_tokens": result.usage.completion_tokens,
                "cached": result.cached,
            }
        )
    outcomes = [outcome_of(s) for s in samples]
    block: dict[str, Any] = dict(M.classification_metrics(outcomes, suite.max_level))
    block.update(M.usage_metrics(samples, wall))
    block["strategy"] = clf.strategy
    block["model"] = next(
        (s["output"]["model"] for s in samples if s["output"]["model"]), clf.backend.model
    )
    block["prompt_version"] = clf.prompt_version
    block["plan"] = (await clf.aplan()).as_dict()
    # How fused experts were weighted (the same for every item of a run), for the summary.
    block["trust"] = next((s["output"]["trust"] for s in samples if s["output"].get("trust")), "")
    return samples, block, clf


async def run_description(
    suite: Suite, options: RunOptions, *, backend: Backend | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any], Describer]:
    describer = Describer(backend=backend, settings=options.settings)
    lim = options.limits

    async def one(record: DescriptionRecord) -> Description:
        return await describer.adescribe(record.product, **_copy_options(record, lim))

    results, wall = await _timed(one, suite.describe, describer.runner.concurrency)
    samples = [
        _description_sample(record, result, lim, latency)
        for record, (result, latency) in zip(suite.describe, results, strict=True)
    ]
    block = _description_block(suite, samples, wall)
    block["model"] = next(
        (s["output"]["model"] for s in samples if s["output"]["model"]), describer.backend.model
    )
    block["prompt_version"] = describer.template.version
    return samples, block, describer


def run_composed(
    suite: Suite, options: RunOptions, describer: Describer
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The copy baseline: composed copy for every copy case, scored like the model's."""
    lim = options.limits
    t0 = time.perf_counter()
    samples = []
    for record in suite.describe:
        start = time.perf_counter()
        result = describer.compose(record.product, **_copy_options(record, lim))
        samples.append(_description_sample(record, result, lim, time.perf_counter() - start))
        samples[-1]["baseline"] = True
    block = _description_block(suite, samples, time.perf_counter() - t0)
    # No model wrote this copy: the model-copy rows do not apply.
    block.update({k: None for k in block if k.startswith("model_")})
    block["model"] = "composed"
    return samples, block


def _copy_options(record: DescriptionRecord, limits: CopyLimits) -> dict[str, Any]:
    return {
        "language": record.language,
        "must_mention": record.must_mention,
        **limits.model_dump(),
    }


def _description_sample(
    record: DescriptionRecord, result: Description, limits: CopyLimits, latency: float
) -> dict[str, Any]:
    return {
        "task": "describe",
        "id": record.id,
        "input": record.product.model_dump(exclude_defaults=True),
        "must_mention": record.must_mention,
        "language": record.language,
        "output": result.model_dump(),
        "scores": M.score_description(
            record.product,
            result,
            limits,
            must_mention=record.must_mention,
            forbidden=record.forbidden,
            language=record.language,
        ),
        "latency_s": latency,
        "prompt_tokens": result.usage.prompt_tokens,
        "completion_tokens": result.usage.completion_tokens,
        "cached": result.cached,
    }


def _description_block(suite: Suite, samples: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    block: dict[str, Any] = M.description_metrics(
        [s["scores"] for s in samples], [r.language for r in suite.describe]
    )
    block.update(M.usage_metrics(samples, wall))
    return block


async def run_suite(
    suite: Suite, options: RunOptions, *, backend: Backend | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Everything for run.json (metrics + manifest) and the samples."""
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    samples: list[dict[str, Any]] = []
    metrics: dict[str, Any] = {}
    baselines: dict[str, Any] = {}
    templates: dict[str, str] = {}
    backend_name = ""
    examples: Any = options.examples
    if options.example_split is not None:
        pool, test = split_examples(suite.classify, options.example_split, options.seed)
        suite = replace(suite, classify=test)
        examples = [(r.product, r.gold.path) for r in pool]
    if options.task in ("all", "classify") and suite.classify:
        cls_samples, block, clf = await run_classification(
            suite, options, strategy=options.classify.strategy, backend=backend, examples=examples
        )
        samples += cls_samples
        metrics.update({k: v for k, v in block.items()})
        templates["classify"] = clf.prompt_version
        backend_name = clf.backend.name
        if options.embedding_baseline and clf.strategy != "embedding":
            usable = options.classify.embedding_model is not None or local_embedder_available()
            embedder = None if usable else HashingEmbedder()
            base_samples, base_block, base_clf = await run_classification(
                suite, options, strategy="embedding", backend=backend, embedder=embedder
            )
            await base_clf.aclose()
            for s in base_samples:
                s["baseline"] = True
            samples += base_samples
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
    run = {
        "suite": suite.name,
        "metrics": metrics,
        "baselines": baselines,
        "manifest": {
            "started": started.isoformat(timespec="seconds"),
            "duration_s": round(time.perf_counter() - t0, 3),
            "git": git_state(),
            "packages": package_versions(),
            "python": platform.python_version(),
            "backend": backend_name,
            "model": metrics.get("model") or metrics.get("description", {}).get("model", ""),
            "strategy": metrics.get("strategy", ""),
            "calibration": _named(options.classify.calibration),
            "templates": templates,
            "dataset_sha256": suite.dataset_sha256,
            "taxonomy_version": suite.taxonomy.version,
            "taxonomy_nodes": len(suite.taxonomy),
            "seed": options.seed,
            "examples": str(options.examples) if options.examples else None,
            "example_split": options.example_split,
            "trust": None if options.classify.trust == "auto" else _named(options.classify.trust),
            "embedding_model": options.classify.embedding_model,
            "limit": options.limit,
            "task": options.task,
        },
    }
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


def git_state() -> dict[str, Any]:
    """The checkout's commit and whether it has uncommitted changes (None outside a checkout)."""
    if CHECKOUT is None:
        return {"commit": None, "dirty": False}

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=CHECKOUT, capture_output=True, text=True, check=False
            )
        except OSError:  # no git on the machine
            return ""
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    return {
        "commit": commit or None,
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def write_run(out: Path, run: dict[str, Any], samples: list[dict[str, Any]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps(run, indent=2, ensure_ascii=False) + "\n")
    with (out / "samples.jsonl").open("w", encoding="utf-8") as handle:
        for sample in samples:
            handle.write(json.dumps(sample, ensure_ascii=False) + "\n")


def read_run(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not (folder / "run.json").exists():
        raise ConfigError(f"{folder} holds no run.json - give the --out folder of a run")
    run = json.loads((folder / "run.json").read_text())
    samples = [
        json.loads(line)
        for line in (folder / "samples.jsonl").read_text().splitlines()
        if line.strip()
    ]
    return run, samples


# -- baselines and the gate ---------------------------------------------------------------------


def baseline_from_run(run: dict[str, Any], samples: list[dict[str, Any]]) -> dict[str, Any]:
    """What a baseline stores: identity, metrics and the per-item outcomes."""
    return {
        "suite": run["suite"],
        "manifest": run["manifest"],
        "metrics": run["metrics"],
        "items": {
            s["id"]: {
                "gold": s["gold"],
                "pred": s["output"]["path"],
                "confidence": s["output"]["confidence"],
                "scores": s["scores"],
            }
            for s in samples
            if s["task"] == "classify" and not s.get("baseline")
        },
        "description_items": {
            s["id"]: s["scores"]
            for s in samples
            if s["task"] == "describe" and not s.get("baseline")
        },
    }


@dataclass
class GateResult:
    exit_code: int
    lines: list[str]
    flipped: list[dict[str, Any]] = field(default_factory=list)


def _sample_outcomes(items: dict[str, dict[str, Any]], ids: list[str]) -> list[M.Outcome]:
    out = []
    for i in ids:
        item = items[i]
        s = item["scores"]
        pred = None if s["invalid"] or s["error"] else tuple(item["pred"])
        out.append(
            M.Outcome(tuple(item["gold"]), pred, item.get("confidence"), s["error"], s["invalid"])
        )
    return out


def _paired_accuracy(
    a: Sequence[M.Outcome],
    b: Sequence[M.Outcome],
    level: int | None,
    *,
    max_drop: float,
    alpha: float,
) -> tuple[str, bool]:
    """One McNemar line for the full path (``level`` None) or the first ``level`` names, over
    the items whose gold is that deep; and whether it is a regression."""

    def right(o: M.Outcome) -> bool:
        if level is None:
            return o.correct
        return o.pred is not None and o.pred[:level] == o.gold[:level]

    pairs = [(x, y) for x, y in zip(a, b, strict=True) if level is None or len(x.gold) >= level]
    only_a = sum(right(x) and not right(y) for x, y in pairs)
    only_b = sum(right(y) and not right(x) for x, y in pairs)
    n = max(len(pairs), 1)
    acc_a, acc_b = sum(right(x) for x, _ in pairs) / n, sum(right(y) for _, y in pairs) / n
    p = mcnemar_exact(only_a, only_b)
    worse = acc_a - acc_b > max_drop and p < alpha
    name = "accuracy" if level is None else f"accuracy level {level}"
    return (
        f"{name} {acc_a:.3f} -> {acc_b:.3f} (McNemar exact p={p:.4f}, {only_a} lost / {only_b} gained){' REGRESSION' if worse else ''}",
        worse,
    )


def gate(
    run: dict[str, Any],
    samples: list[dict[str, Any]],
    baseline: dict[str, Any] | None,
    *,
    max_drop: float = 0.01,
    alpha: float = 0.05,
    max_error_rate: float = 0.05,
    allow_template_change: bool = False,
) -> GateResult:
    """Decide the exit code of a run, against a baseline when one is given."""
    lines: list[str] = []
    errors = [
        run["metrics"].get("error_rate", 0.0),
        run["metrics"].get("description", {}).get("error_rate", 0.0),
    ]
    if baseline is not None:
        mine, theirs = run["manifest"], baseline["manifest"]
        problems = []
        if mine["dataset_sha256"] != theirs["dataset_sha256"]:
            problems.append("the dataset differs (sha256)")
        if mine["taxonomy_version"] != theirs["taxonomy_version"]:
            problems.append("the taxonomy differs")
        if not allow_template_change:
            for task, version in mine["templates"].items():
                if task in theirs["templates"] and theirs["templates"][task] != version:
                    problems.append(
                        f"the {task} template differs ({theirs['templates'][task]} -> {version}; pass --allow-template-change to compare anyway)"
                    )
        if problems:
            return GateResult(
                EXIT_NOT_COMPARABLE, [f"baseline not comparable: {p}" for p in problems]
            )
    if max(errors) > max_error_rate:
        return GateResult(
            EXIT_INFRA,
            [
                f"error rate {max(errors):.1%} is above --max-error-rate {max_error_rate:.1%}: infrastructure problem, not a quality verdict"
            ],
        )
    if baseline is None:
        return GateResult(EXIT_PASS, ["no baseline given: nothing to compare"])
    current = baseline_from_run(run, samples)
    ids = sorted(set(current["items"]) & set(baseline["items"]))
    regression = False
    flipped = []
    if ids:
        a = _sample_outcomes(baseline["items"], ids)
        b = _sample_outcomes(current["items"], ids)
        deepest = max(len(o.gold) for o in a)
        for level in [None, *range(1, min(deepest, 3) + 1)]:
            line, worse = _paired_accuracy(a, b, level, max_drop=max_drop, alpha=alpha)
            regression |= worse
            lines.append(line)
        for name, fn in (
            ("macro_f1", M.macro_f1),
            ("hierarchical_f1", lambda o: M.hierarchical_prf(o)[2]),
        ):
            boot = paired_bootstrap(fn, a, b, alpha=alpha, seed=0)
            worse = -boot.difference > max_drop and boot.p_drop < alpha
            regression |= worse
            lines.append(
                f"{name} {fn(a):.3f} -> {fn(b):.3f} (paired bootstrap 95% CI of change [{boot.low:+.3f}, {boot.high:+.3f}], p={boot.p_drop:.4f}){' REGRESSION' if worse else ''}"
            )
        for i, x, y in zip(ids, a, b, strict=True):
            if x.correct != y.correct:
                flipped.append(
                    {
                        "id": i,
                        "gold": list(x.gold),
                        "baseline": list(x.pred or ()),
                        "run": list(y.pred or ()),
                        "now_correct": y.correct,
                    }
                )
    d_ids = sorted(set(current["description_items"]) & set(baseline.get("description_items", {})))
    if d_ids:
        theirs, mine = baseline["description_items"], current["description_items"]
        checks: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
            ("description schema validity", lambda s: bool(s["schema_valid"])),
        ]
        if all("findings" in theirs[i] for i in d_ids):  # baselines from before the copy checks
            checks.append(("copy without findings", lambda s: not s["findings"] and not s["error"]))
        for name, good in checks:
            va = [good(theirs[i]) for i in d_ids]
            vb = [good(mine[i]) for i in d_ids]
            only_a = sum(x and not y for x, y in zip(va, vb, strict=True))
            only_b = sum(y and not x for x, y in zip(va, vb, strict=True))
            p = mcnemar_exact(only_a, only_b)
            drop = (sum(va) - sum(vb)) / len(d_ids)
            worse = drop > max_drop and p < alpha
            regression |= worse
            lines.append(
                f"{name} {sum(va) / len(d_ids):.3f} -> {sum(vb) / len(d_ids):.3f} (McNemar p={p:.4f}){' REGRESSION' if worse else ''}"
            )
    lines.insert(
        0,
        "significant regression against the baseline"
        if regression
        else "no significant regression against the baseline",
    )
    return GateResult(EXIT_REGRESSION if regression else EXIT_PASS, lines, flipped)


def load_baseline(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(
            f"baseline {path} does not exist - create one with 'python -m evals baseline update RUN'"
        )
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def run_blocking(
    suite: Suite, options: RunOptions, backend: Backend | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return asyncio.run(run_suite(suite, options, backend=backend))
