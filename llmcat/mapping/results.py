"""What ``llmcat map`` writes: one ``CategoryMapping`` row per source category, and what the
optional judge reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

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
