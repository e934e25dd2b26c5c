"""The keyword arguments of ``Classifier``, ``Describer`` and ``Extractor`` as TypedDicts, so mypy checks
``Classifier(tax, strategy="knn", beam=3)`` name by name. Each key is a field of ``Settings``,
``ClassifyOptions``, ``CopyOptions`` or ``ExtractOptions`` (or an alias); ``tests/config/test_options_once.py`` fails when
the two drift apart, so a new field is added here in the same commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, TypedDict

from llmcat.confidence.calibration import TemperatureScaling
from llmcat.confidence.trust import TrustFit
from llmcat.config.options import RetryOptions
from llmcat.types import Classification


class SettingsOverrides(TypedDict, total=False):
    """``Settings`` fields (but ``backend``: the workers take it as a parameter of its own, a
    name or an instance)."""

    base_url: str | None
    model: str | None
    api_key: str | None
    structured_output: Literal["auto", "vllm", "vllm-guided", "openai", "none"]
    timeout: float
    concurrency: int | None
    cache: bool
    cache_dir: str | Path | None
    retry: RetryOptions
    progress: bool | None
    batch_export: str | Path | None
    batch_import: str | Path | None
    dry_run: bool
    images: Literal["auto", "never", "require"]
    vision: bool | None
    image_dirs: Sequence[str | Path]
    max_image_bytes: int
    max_image_side: int


class ClassifyOverrides(TypedDict, total=False):
    """``ClassifyOptions`` fields."""

    strategy: str
    beam: int
    shortlist_k: int
    knn_k: int
    few_shot: int
    fit_model_calls: int
    fuse_embedding: bool
    trust: Literal["auto", "neutral"] | TrustFit | str | Path
    embedding_model: str | None
    lexical_weight: float | None
    label_words: Literal["auto", "names", "google"]
    transductive: Literal["auto", "on", "off"]
    embedding_batch: int
    min_confidence: float | None
    review_threshold: float | None
    calibration: Literal["contextual"] | TemperatureScaling | str | Path | None
    template: str
    step_template: str
    template_dir: str | Path | None
    description_chars: int
    attribute_limit: int


class CopyOverrides(TypedDict, total=False):
    """``CopyOptions`` fields (and ``max_words``, the alias of ``body_words``)."""

    title_words: int
    bullets: int
    bullet_words: int
    body_words: int
    max_words: int
    title_chars: int | None
    bullet_chars: int | None
    body_chars: int | None
    language: str
    tone: str
    style: str
    template: str | None
    template_dir: str | Path | None
    keywords: Sequence[str]
    must_mention: Sequence[str]
    category: str | Classification | None
    known_brands: Sequence[str]
    description_chars: int
    fallback: Literal["compose"] | None
    title_attributes: bool
    ask_model: Literal["auto", "always", "never"]
    min_body_words: int
    mention_attributes: int
    model_languages: Sequence[str] | None


class ExtractOverrides(TypedDict, total=False):
    """``ExtractOptions`` fields."""

    category_field: str
    max_description_chars: int
    review_threshold: float


class ClassifierOverrides(SettingsOverrides, ClassifyOverrides, total=False):
    """The keyword arguments of ``Classifier``."""


class DescriberOverrides(SettingsOverrides, CopyOverrides, total=False):
    """The keyword arguments of ``Describer``."""


class ExtractorOverrides(SettingsOverrides, ExtractOverrides, total=False):
    """The keyword arguments of ``Extractor``."""


__all__ = [
    "ClassifierOverrides",
    "ClassifyOverrides",
    "CopyOverrides",
    "DescriberOverrides",
    "ExtractOverrides",
    "ExtractorOverrides",
    "SettingsOverrides",
]
