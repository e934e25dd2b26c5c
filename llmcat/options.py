"""Typed options, one pydantic model per concern, with a docstring per field.

- ``RetryOptions``: the transport retry policy (``Settings.retry``).
- ``ClassifyOptions``: how ``Classifier`` searches a taxonomy and reports confidence.
- ``CopyLimits`` / ``CopyOptions``: what ``Describer`` writes and how long it may be.

``Classifier(tax, beam=3)`` and ``describe(product, max_words=80)`` are shorthands for fields of
these models; ``with_overrides`` merges such keywords into a model and turns a bad value or an
unknown name into a ``ConfigError``. The CLI and the evals read their defaults and help texts
from these fields, so a default is stated once.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError

M = TypeVar("M", bound=BaseModel)

#: Output languages of listing copy: code -> the name the prompt uses.
LANGUAGES = {
    "en": "English",
    "zh": "Simplified Chinese",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "ja": "Japanese",
    "hi": "Hindi",
}


class RetryOptions(BaseModel):
    """Transport retries (connection errors, timeouts, 429, 5xx): exponential backoff with jitter,
    or the server's Retry-After when it sent one. Never used for unusable answers (re-asks)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(default=5, ge=1, description="Tries per model call, the first included.")
    backoff: float = Field(
        default=0.5, ge=0, description="Seconds of the first backoff; it doubles, with jitter."
    )
    max_wait: float = Field(default=30.0, ge=0, description="Longest backoff between two tries.")
    max_retry_after: float = Field(
        default=120.0, ge=0, description="Longest Retry-After honoured; longer asks wait this."
    )


class ClassifyOptions(BaseModel):
    """How ``Classifier`` searches the taxonomy and what it reports."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    strategy: str = Field(
        default="auto",
        description="flat, hierarchical, shortlist, embedding, knn, supervised, or auto (by "
        "taxonomy size, examples and whether an embedder is installed); see llmcat.strategies.",
    )
    beam: int = Field(default=2, ge=1, description="Partial paths the hierarchical strategy keeps.")
    shortlist_k: int = Field(
        default=10, ge=1, description="Nearest leaves the shortlist strategy offers the model."
    )
    knn_k: int = Field(
        default=10, ge=1, description="knn: labelled examples (and leaves) that vote."
    )
    few_shot: int = Field(
        default=3,
        ge=0,
        description="With examples: the nearest labelled examples shown in each prompt "
        "(dynamic few-shot, after the stable system prompt; 0: none).",
    )
    fit_model_calls: int = Field(
        default=100,
        ge=0,
        description="With examples and trust 'auto': at most this many examples are asked of "
        "the LLM to fit its weight by cross-validation (0: keep the shipped or neutral weight).",
    )
    fuse_embedding: bool = Field(
        default=True,
        description="shortlist: multiply the model's distribution with the embedding similarity.",
    )
    trust: Any = Field(
        default="auto",
        description="How fused experts are weighted: 'auto' (a fit shipped for this model, "
        "template and embedder, else all 1), 'neutral' (all 1: what a run to fit on needs), a "
        "TrustFit, or a file from 'python -m evals fit'.",
    )
    embedding_model: str | None = Field(
        default=None,
        description="Embedding model on the server's /v1/embeddings, a sentence-transformers "
        "folder, or 'hashing'; default: the bundled all-MiniLM-L6-v2.",
    )
    embedding_batch: int = Field(
        default=64,
        ge=1,
        description="Product texts of concurrent items embedded in one call (1: one by one).",
    )
    min_confidence: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Stop at the deepest ancestor whose probability reaches this.",
    )
    review_threshold: float = Field(
        default=0.5, ge=0.0, le=1.0, description="needs_review when confidence is below this."
    )
    calibration: Any = Field(
        default=None,
        description="'contextual' (divide out the label prior of a content-free input), a "
        "TemperatureScaling, or the path of a file from 'python -m evals calibrate'.",
    )
    template: str = Field(default="classify.j2", description="Template of one choice.")
    step_template: str = Field(
        default="classify_step.j2", description="Template of one hierarchical step."
    )
    template_dir: Path | None = Field(
        default=None, description="Folder whose templates override the built-in ones."
    )
    description_chars: int = Field(
        default=300, ge=0, description="Characters of the product description in the prompt."
    )
    attribute_limit: int = Field(
        default=10, ge=0, description="Attributes of the product shown in the prompt."
    )


class CopyLimits(BaseModel):
    """Length limits per field: words (a CJK character counts as half a word) and, optionally,
    characters (a channel's hard limit)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    title_words: int = Field(default=15, ge=1, description="Words in the title.")
    bullets: int = Field(default=3, ge=0, le=10, description="Number of bullets.")
    bullet_words: int = Field(default=16, ge=1, description="Words per bullet.")
    body_words: int = Field(
        default=120,
        ge=1,
        validation_alias=AliasChoices("body_words", "max_words"),
        description="Words in the body (also accepted as max_words).",
    )
    title_chars: int | None = Field(default=None, ge=10, description="Characters in the title.")
    bullet_chars: int | None = Field(default=None, ge=10, description="Characters per bullet.")
    body_chars: int | None = Field(default=None, ge=10, description="Characters in the body.")

    def limits(self) -> CopyLimits:
        """Only the limits (a ``CopyOptions`` without its other fields)."""
        return CopyLimits.model_validate(self.model_dump(include=set(CopyLimits.model_fields)))


class CopyOptions(CopyLimits):
    """What ``Describer`` writes: style, language, what to mention, and the limits."""

    language: str = Field(default="en", description="Output language: " + ", ".join(LANGUAGES))
    tone: str = Field(default="clear and factual", description="Tone of voice for the prompt.")
    style: str = Field(
        default="marketplace",
        description="marketplace, seo, concise, or describe_<style>.j2 of template_dir.",
    )
    template: str | None = Field(default=None, description="A template file name; overrides style.")
    template_dir: Path | None = Field(
        default=None, description="Folder whose templates override the built-in ones."
    )
    keywords: list[str] = Field(default_factory=list, description="Keywords to use where true.")
    must_mention: list[str] = Field(
        default_factory=list, description="Values the copy has to contain."
    )
    category: str | None = Field(
        default=None, description="Category path that steers the copy (or a Classification)."
    )
    known_brands: list[str] = Field(
        default_factory=list, description="Brands the grounding check knows, to flag wrong ones."
    )
    description_chars: int = Field(
        default=1500, ge=0, description="Characters of the product description in the prompt."
    )
    fallback: Literal["compose"] | None = Field(
        default="compose",
        description="'compose': when the model's copy still has findings after the regeneration, "
        "return copy composed from the product's own fields (source 'composed'); None: return "
        "the model's copy, flagged.",
    )
    min_body_words: int = Field(
        default=25,
        ge=0,
        description="A shorter body is a finding (never more than half the words of the product "
        "data or of the body limit are asked for).",
    )
    mention_attributes: int = Field(
        default=3,
        ge=0,
        description="The copy has to name the values of this many of the first attributes "
        "(short values that are not yes/no).",
    )
    model_languages: list[str] | None = Field(
        default=None,
        description="Languages the model writes; copy asked in another that fails the language "
        "check goes to the fallback without a regeneration (default: known for the embedded "
        "SmolLM2, English; otherwise every language).",
    )

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in LANGUAGES:
            raise ValueError(f"unsupported language {value!r}; use one of {', '.join(LANGUAGES)}")
        return value

    @field_validator("category", mode="before")
    @classmethod
    def _category_path(cls, value: Any) -> Any:
        path = getattr(value, "path", None)  # a Classification
        if value is not None and not isinstance(value, str):
            return " > ".join(path) if path else None
        return value


def with_overrides(model: M, overrides: Mapping[str, Any], *, what: str) -> M:
    """``model`` with ``overrides`` (field names or aliases) applied and validated again;
    ConfigError for an unknown name or a bad value, naming ``what`` and the field."""
    if not overrides:
        return model
    names = field_names(type(model))
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ConfigError(
            f"unknown {what} option(s): {', '.join(unknown)}; known: "
            + ", ".join(sorted(type(model).model_fields))
        )
    data = model.model_dump(exclude_unset=True)
    for name in overrides:  # an alias replaces the field it stands for
        data.pop(names[name], None)
    return validated(type(model), {**data, **overrides}, what=what)


def field_names(cls: type[BaseModel]) -> dict[str, str]:
    """Every name a model accepts (fields and their aliases) -> the field it sets."""
    names = {}
    for name, info in cls.model_fields.items():
        names[name] = name
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update({choice: name for choice in alias.choices if isinstance(choice, str)})
    return names


def validated(cls: type[M], data: Mapping[str, Any], *, what: str) -> M:
    """``cls(**data)`` with a ValidationError turned into a ConfigError naming the field."""
    try:
        return cls.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or what
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        raise ConfigError(f"invalid {what} option {where}: {message}") from None


__all__ = [
    "LANGUAGES",
    "ClassifyOptions",
    "CopyLimits",
    "CopyOptions",
    "RetryOptions",
    "field_names",
    "validated",
    "with_overrides",
]
