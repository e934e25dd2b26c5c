"""``ApiRecipe``: what a server is built from, in plain picklable values, so that the single
process and every Ray Serve replica build the same app from the same recipe."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from llmcat.api.config import ApiConfig
from llmcat.config.options import ClassifyOptions, CopyOptions, ExtractOptions
from llmcat.config.settings import Settings
from llmcat.taxonomy.tree import Taxonomy

if TYPE_CHECKING:
    from fastapi import FastAPI

    from llmcat.attributes.extractor import Categorizer, Extractor


@dataclass(frozen=True)
class ExtractRecipe:
    """What ``POST /v1/extract`` reads attributes with: a schema (attribute names or a schema
    file) and labelled examples, as ``llmcat extract`` takes them. With ``by_category`` the
    served classifier chooses each product's category (Shopify's taxonomy and its attributes);
    otherwise the product's ``options.category_field`` attribute names it."""

    schema: str | None = None
    examples: Path | None = None
    options: ExtractOptions = field(default_factory=ExtractOptions)
    by_category: bool = False

    def extractor(self, settings: Settings, categorizer: Categorizer | None = None) -> Extractor:
        """A new Extractor (ConfigError here for a schema or examples it cannot use)."""
        from llmcat.attributes.extractor import Extractor

        return Extractor(
            self.schema,
            examples=self.examples,
            options=self.options,
            settings=settings,
            categorizer=categorizer if self.by_category else None,
        )


@dataclass(frozen=True)
class ApiRecipe:
    """The categories (None: classify answers 404), the options, the connection and the
    server's limits; ``extract``: what ``/v1/extract`` serves (None: it answers 404)."""

    taxonomy: Taxonomy | None
    options: ClassifyOptions
    settings: Settings
    config: ApiConfig
    examples: Path | None = None
    extract: ExtractRecipe | None = None

    def app(self, *, warm_before_serving: bool = False) -> FastAPI:
        """A new app over a new Classifier (and a Describer on first use); see ``create_app``
        for ``warm_before_serving``."""
        from llmcat.api.app import create_app
        from llmcat.api.metrics import Metrics
        from llmcat.api.service import Service
        from llmcat.classify.classifier import Classifier
        from llmcat.listing.describer import Describer

        classifier = (
            Classifier(self.taxonomy, self.options, settings=self.settings, examples=self.examples)
            if self.taxonomy is not None
            else None
        )
        settings = self.settings

        def describer() -> Describer:
            return Describer(CopyOptions(), settings=settings)

        extractor = (
            self.extract.extractor(settings, classifier) if self.extract is not None else None
        )
        service = Service(
            classifier, self.config, Metrics(), describer=describer, extractor=extractor
        )
        return create_app(service, warm_before_serving=warm_before_serving)
