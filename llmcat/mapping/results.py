"""What ``llmcat map`` writes: one ``CategoryMapping`` row per source category, and what the
optional judge reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from llmcat.errors import ConfigError
from llmcat.io.output import digest_of
from llmcat.taxonomy.tree import Taxonomy

if TYPE_CHECKING:
    from llmcat.confidence.trust import TrustFit

Method = Literal["known", "exact", "embedding", "structure", "examples", "llm", "unmapped"]


class MappedAlternative(BaseModel):
    target_id: str
    target_path: str
    probability: float


class CategoryMapping(BaseModel):
    """Where one source category goes; ``target_id`` None: unmapped."""

    source_id: str
    source_path: str
    target_id: str | None = None
    target_path: str | None = None
    confidence: float | None = None
    alternatives: list[MappedAlternative] = Field(default_factory=list)
    needs_review: bool = False
    method: Method = "embedding"


@dataclass
class JudgeReport:
    """What the judge did: the trust it ran under (None: no fit), how many categories it was
    asked about (the fit's included) and why, in one line."""

    trust: TrustFit | None
    asked: int
    line: str


def kept_rows(
    records: Sequence[Mapping[str, object]],
    digests: Sequence[str],
    source: Taxonomy,
    target: Taxonomy,
    *,
    where: str,
    target_name: str,
) -> dict[str, CategoryMapping]:
    """The rows a stopped ``llmcat map`` kept (``ResultWriter.completed`` and its input digests),
    by source id, after checking that row n is the source's category n (by id and digest) and
    maps into this target; ConfigError naming the row otherwise. The classify/describe resume
    checks its records the same way against its input items (``llmcat.io.resume``)."""
    order = [c.id for c in source]
    fixed: dict[str, CategoryMapping] = {}
    for n, record in enumerate(records):
        try:
            row = CategoryMapping.model_validate(record)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise ConfigError(
                f"{where} row {n + 1} is not a mapping row ({exc.__class__.__name__}); "
                "run without --resume"
            ) from None
        if n >= len(order) or row.source_id != order[n] or digests[n] != digest_of(row.source_id):
            raise ConfigError(
                f"{where} row {n + 1} is {row.source_id!r}, not the source's "
                f"category {n + 1}; it was made from another taxonomy - run without --resume"
            )
        if row.target_id is not None and row.target_id not in target:
            raise ConfigError(
                f"{where} row {n + 1} maps to {row.target_id!r}, which "
                f"{target_name} does not have: it was made for another target - run "
                "without --resume"
            )
        fixed[row.source_id] = row
    return fixed
