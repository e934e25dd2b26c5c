"""The public result and input types. Plain pydantic models, JSON in and out."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Product(BaseModel):
    """A product to classify or describe. Only ``title`` is required; ``None`` (a JSON null) or
    NaN (a missing cell of a DataFrame) in any other field means "not given"."""

    model_config = ConfigDict(extra="forbid")

    id: str = ""
    title: str
    description: str = ""
    brand: str = ""
    attributes: dict[str, str] = Field(default_factory=dict)
    image_urls: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _missing_means_not_given(cls, data: object) -> object:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k == "title" or not _missing(v)}
        return data


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class Usage(BaseModel):
    """Tokens spent on one result, summed over every model call it took."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    with_images: int = Field(
        default=0,
        exclude=True,
        description="Answers given with the product's images (cache hits too); results say it "
        "as images_used, so it is not written out.",
    )

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            calls=self.calls + other.calls,
            with_images=self.with_images + other.with_images,
        )

    def cost(self, price_in: float | None, price_out: float | None) -> float:
        """Dollars at per-million-token prices (prompt, completion); a missing price is 0."""
        return (
            self.prompt_tokens * (price_in or 0.0) + self.completion_tokens * (price_out or 0.0)
        ) / 1_000_000


class ErrorRecord(BaseModel):
    """Why an item has no result. ``type`` is the llmcat exception class name."""

    type: str
    message: str
    retryable: bool = False
    status_code: int | None = None


class Alternative(BaseModel):
    """A candidate category with its probability among the candidates the model saw."""

    category_id: str
    path: list[str]
    probability: float


class Classification(BaseModel):
    """The category chosen for one product, or an ``error`` instead of a category."""

    product_id: str
    category_id: str | None = None
    path: list[str] = Field(default_factory=list)
    confidence: float | None = Field(
        default=None, ge=0.0, le=1.0, description="None when the backend gives no logprobs."
    )
    alternatives: list[Alternative] = Field(default_factory=list)
    needs_review: bool = False
    stopped_early: bool = Field(
        default=False,
        description="True when the answer stops at an ancestor because the deeper level was unclear.",
    )
    strategy: str = "flat"
    model: str = ""
    prompt_version: str = ""
    taxonomy_version: str = Field(
        default="", description="Version of the taxonomy the category comes from."
    )
    experts: dict[str, dict[str, float]] | None = Field(
        default=None,
        description="Fused strategies: each expert's distribution over the candidates (ids).",
    )
    trust: str = Field(default="", description="How the experts were weighted, when fused.")
    plan: str = Field(
        default="",
        description="The classifier's plan in one line: strategy, embedder, trust source, "
        "whether the LLM was asked (Classifier.plan explains it).",
    )
    usage: Usage = Field(default_factory=Usage)
    images_used: bool = Field(
        default=False, description="True when the model was sent the product's images."
    )
    cached: bool = False
    error: ErrorRecord | None = None

    @property
    def ok(self) -> bool:
        """True when the item has a category."""
        return self.error is None and self.category_id is not None


FindingKind = Literal[
    "unsupported_number",
    "unsupported_term",
    "missing_attribute",
    "repetition",
    "restated_title",
    "short_body",
    "wrong_language",
    "boilerplate",
    "thin",
    "unusable_answer",
]


class Finding(BaseModel):
    """One problem found in generated copy: a grounding finding (``unsupported_number``,
    ``unsupported_term``, ``missing_attribute``), a degenerate-copy finding (``repetition``,
    ``restated_title``, ``short_body``, ``wrong_language``, ``boilerplate``, ``thin``; see
    ``llmcat.listing.degenerate``), or
    ``unusable_answer`` when the model gave no copy that parses."""

    kind: FindingKind
    text: str
    field: str = ""


class Description(BaseModel):
    """Listing copy for one product."""

    product_id: str = ""
    title: str = ""
    bullets: list[str] = Field(default_factory=list)
    body: str = ""
    language: str = "en"
    used_attributes: list[str] = Field(
        default_factory=list, description="Input attribute names whose values the copy mentions."
    )
    findings: list[Finding] = Field(default_factory=list)
    flagged: bool = Field(
        default=False, description="True when the returned copy still has findings."
    )
    source: Literal["model", "composed"] = Field(
        default="model",
        description="'model': the model wrote this copy; 'composed': built from the product's own "
        "fields because the model's copy kept findings (``rejected_findings`` says which).",
    )
    rejected_findings: list[Finding] = Field(
        default_factory=list,
        description="Findings of the model's last copy when it was replaced by composed copy.",
    )
    images_used: bool = Field(
        default=False, description="True when the model was sent the product's images."
    )
    rejected_copy: dict[str, Any] | None = Field(
        default=None,
        description="The model's copy (title, bullets, body) that composed copy replaced.",
    )
    model: str = ""
    prompt_version: str = ""
    usage: Usage = Field(default_factory=Usage)
    cached: bool = False
    error: ErrorRecord | None = None

    @property
    def ok(self) -> bool:
        """True when the item has copy."""
        return self.error is None


class ValueSource(BaseModel):
    """Where an extracted value came from: the characters ``start:end`` of the product's
    ``field`` (``title``, ``description``, ``attributes.<name>``), and, when the value was
    normalised to one of the attribute's allowed values, the text read there as ``read``."""

    field: str
    start: int
    end: int
    read: str | None = None


class ValueAlternative(BaseModel):
    """A value the extractor weighed and did not choose."""

    value: str
    confidence: float = Field(ge=0.0, le=1.0)


class AttributeValue(BaseModel):
    """One attribute of one product: its ``value`` (None: the text states none) and how sure."""

    value: str | None = None
    source: ValueSource | None = None
    confidence: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="The chance the answer is right: the value, or that there is none.",
    )
    needs_review: bool = False
    alternatives: list[ValueAlternative] = Field(default_factory=list)


class Extraction(BaseModel):
    """The attributes extracted from one product, or an ``error`` instead."""

    product_id: str
    category: str | None = Field(
        default=None, description="The category whose attributes were extracted."
    )
    category_id: str | None = Field(
        default=None,
        description="Its id, when a taxonomy chose it (``llmcat extract --taxonomy``).",
    )
    category_guessed: bool = Field(
        default=False,
        description="The product named no category: its title's words chose the examples' "
        "category, and every answer asks for review (the confidences were fitted on products "
        "of a known category).",
    )
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    dropped: int = Field(
        default=0,
        description="Values a method proposed that are neither in the text nor allowed: never "
        "written, counted here.",
    )
    error: ErrorRecord | None = None
    usage: Usage = Field(default_factory=Usage)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def needs_review(self) -> bool:
        """True when any attribute's answer needs a person's look."""
        return any(value.needs_review for value in self.attributes.values())
