"""What a run writes and reads, typed: one line of ``samples.jsonl`` (``ClassificationSample`` or
``DescriptionSample``), ``run.json`` (``RunSummary``: the metrics, the baselines beside them, the
``Manifest`` and the gate's verdict) and a stored baseline (``Baseline``). Every file of a run is
read and written here, nowhere else.

Metric blocks stay open mappings (``Metrics``): the metric registry (``metrics.METRICS``) names
their keys, and a new metric needs no field here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, ValidationError

from llmcat.errors import ConfigError
from llmcat.evals.metrics import Outcome
from llmcat.types import Classification, Description

#: a block of metrics: name -> value (numbers, strings, nested blocks)
Metrics = dict[str, JsonValue]
#: the per-item scores of ``metrics.score_classification`` / ``score_description``
Scores = dict[str, JsonValue]


class _Record(BaseModel):
    # Files from older versions may hold keys this one does not know: kept as they are.
    model_config = ConfigDict(extra="allow")


class _SampleBase(_Record):
    """What every sample has: the item, its scores, and what answering it cost."""

    id: str
    input: dict[str, JsonValue]
    scores: Scores
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    #: True for the samples of the baseline run beside the model (embedding, composed)
    baseline: bool = False
    #: the messages of each model request made for the item (its rendered prompts), in order
    prompts: list[list[dict[str, str]]] = Field(default_factory=list)


class ClassificationSample(_SampleBase):
    """One classified item: the product, its gold path and what the classifier returned."""

    task: Literal["classify"] = "classify"
    strategy: str
    gold: list[str]
    gold_id: str | None = None
    output: Classification

    def outcome(self) -> Outcome:
        """The item as the metrics see it."""
        s = self.scores
        invalid, error = bool(s.get("invalid")), bool(s.get("error"))
        in_shortlist = s.get("in_shortlist")
        size = s.get("shortlist_size")
        return Outcome(
            gold=tuple(self.gold),
            pred=None if invalid or error else tuple(self.output.path),
            confidence=self.output.confidence,
            error=error,
            invalid=invalid,
            in_shortlist=in_shortlist if isinstance(in_shortlist, bool) else None,
            shortlist_size=size if isinstance(size, int) else None,
            needs_review=None if error else self.output.needs_review,
        )


class DescriptionSample(_SampleBase):
    """One copy case: the product, what the copy must mention, and the copy returned."""

    task: Literal["describe"] = "describe"
    must_mention: list[str] = Field(default_factory=list)
    language: str = "en"
    output: Description


Sample = Annotated[ClassificationSample | DescriptionSample, Field(discriminator="task")]
#: one run's samples, in file order
Samples = list[ClassificationSample | DescriptionSample]
_SAMPLE: TypeAdapter[ClassificationSample | DescriptionSample] = TypeAdapter(Sample)


class GitState(_Record):
    commit: str | None = None
    dirty: bool = False


class Manifest(_Record):
    """What a run was: code, packages, model, options, data; what makes two runs comparable."""

    started: str = ""
    duration_s: float = 0.0
    git: GitState = Field(default_factory=GitState)
    packages: dict[str, str] = Field(default_factory=dict)
    python: str = ""
    backend: str = ""
    model: str = ""
    strategy: str = ""
    calibration: str | None = None
    templates: dict[str, str] = Field(default_factory=dict)
    dataset_sha256: str = ""
    taxonomy_version: str = ""
    taxonomy_nodes: int = 0
    seed: int = 0
    examples: str | None = None
    example_split: float | None = None
    trust: str | None = None
    embedding_model: str | None = None
    limit: int | None = None
    task: str = "all"
    #: the classifier's plan (``Plan.as_dict``): why it did what it did
    plan: dict[str, JsonValue] | None = None


class GateRecord(_Record):
    exit_code: int
    lines: list[str]
    baseline: str | None = None


class RunSummary(_Record):
    """``run.json``: the run's metrics, the baselines run beside it, its manifest, its verdict."""

    suite: str
    metrics: Metrics
    baselines: dict[str, Metrics] = Field(default_factory=dict)
    manifest: Manifest
    gate: GateRecord | None = None
    #: how a run stopped early (``SIGINT after 37 of 200 products classified``): its metrics
    #: cover the items finished by then, it never passes a gate and is never a baseline
    interrupted: str | None = None


class BaselineItem(_Record):
    gold: list[str]
    pred: list[str] | None = None
    confidence: float | None = None
    scores: Scores

    def outcome(self) -> Outcome:
        s = self.scores
        invalid, error = bool(s.get("invalid")), bool(s.get("error"))
        return Outcome(
            tuple(self.gold),
            None if invalid or error else tuple(self.pred or ()),
            self.confidence,
            error,
            invalid,
        )


class Baseline(_Record):
    """What a stored baseline keeps: identity, metrics and each item's outcome and scores."""

    suite: str
    manifest: Manifest
    metrics: Metrics
    items: dict[str, BaselineItem]
    description_items: dict[str, Scores] = Field(default_factory=dict)

    @classmethod
    def of_run(cls, run: RunSummary, samples: Samples) -> Baseline:
        """The baseline a run makes: its own samples, not those of the baselines beside it."""
        return cls(
            suite=run.suite,
            manifest=run.manifest,
            metrics=run.metrics,
            items={
                s.id: BaselineItem(
                    gold=s.gold,
                    pred=s.output.path,
                    confidence=s.output.confidence,
                    scores=s.scores,
                )
                for s in samples
                if isinstance(s, ClassificationSample) and not s.baseline
            },
            description_items={
                s.id: s.scores
                for s in samples
                if isinstance(s, DescriptionSample) and not s.baseline
            },
        )

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.model_dump(mode="json")
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n")


def classification_samples(
    samples: Samples, *, baseline: bool = False
) -> list[ClassificationSample]:
    """The classified items (of the run, or with ``baseline`` of the baseline beside it)."""
    return [s for s in samples if isinstance(s, ClassificationSample) and s.baseline == baseline]


def description_samples(samples: Samples, *, baseline: bool = False) -> list[DescriptionSample]:
    """The copy cases (of the model, or with ``baseline`` of the composed baseline)."""
    return [s for s in samples if isinstance(s, DescriptionSample) and s.baseline == baseline]


def sample_line(sample: ClassificationSample | DescriptionSample) -> str:
    """One line of samples.jsonl (``baseline`` only where it is true, as before)."""
    data = sample.model_dump(mode="json")
    if not sample.baseline:
        data.pop("baseline")
    return json.dumps(data, ensure_ascii=False)


def write_run(out: Path, run: RunSummary, samples: Samples) -> None:
    """run.json and samples.jsonl in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    data = run.model_dump(mode="json", exclude_none=False)
    if run.gate is None:
        data.pop("gate")
    (out / "run.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    with (out / "samples.jsonl").open("w", encoding="utf-8") as handle:
        for sample in samples:
            handle.write(sample_line(sample) + "\n")


def read_run(folder: Path) -> tuple[RunSummary, Samples]:
    """A run folder's run.json and samples; ConfigError naming the file for anything else."""
    if not (folder / "run.json").exists():
        raise ConfigError(f"{folder} holds no run.json - give the --out folder of a run")
    try:
        run = RunSummary.model_validate_json((folder / "run.json").read_text(encoding="utf-8"))
        samples = [
            _SAMPLE.validate_json(line)
            # JSONL lines end at \n: a title may hold U+2028, which splitlines() splits on
            for line in (folder / "samples.jsonl").read_text(encoding="utf-8").split("\n")
            if line.strip()
        ]
    except ValidationError as exc:
        raise ConfigError(f"{folder} is not a run of this llmcat: {exc.errors()[0]}") from None
    return run, samples


def load_baseline(path: Path) -> Baseline:
    """A stored baseline; ConfigError when it is missing or not one."""
    if not path.exists():
        raise ConfigError(
            f"baseline {path} does not exist - create one with 'python -m evals baseline update RUN'"
        )
    try:
        return Baseline.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise ConfigError(f"{path} is not a baseline: {exc.errors()[0]}") from None


__all__ = [
    "Baseline",
    "BaselineItem",
    "ClassificationSample",
    "DescriptionSample",
    "GateRecord",
    "GitState",
    "Manifest",
    "Metrics",
    "RunSummary",
    "Sample",
    "Samples",
    "Scores",
    "classification_samples",
    "description_samples",
    "load_baseline",
    "read_run",
    "sample_line",
    "write_run",
]
