"""``ApiRecipe``: what a server is built from, in plain picklable values, so that the single
process and every Ray Serve replica build the same app from the same recipe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llmcat.api.config import ApiConfig
from llmcat.config.options import ClassifyOptions, CopyOptions
from llmcat.config.settings import Settings
from llmcat.taxonomy.tree import Taxonomy

if TYPE_CHECKING:
    from fastapi import FastAPI


@dataclass(frozen=True)
class ApiRecipe:
    """The categories, the options, the connection and the server's limits."""

    taxonomy: Taxonomy
    options: ClassifyOptions
    settings: Settings
    config: ApiConfig
    examples: Path | None = None

    def app(self, *, warm_before_serving: bool = False) -> FastAPI:
        """A new app over a new Classifier (and a Describer on first use); see ``create_app``
        for ``warm_before_serving``."""
        from llmcat.api.app import create_app
        from llmcat.api.metrics import Metrics
        from llmcat.api.service import Service
        from llmcat.classify.classifier import Classifier
        from llmcat.listing.describer import Describer

        classifier = Classifier(
            self.taxonomy, self.options, settings=self.settings, examples=self.examples
        )
        settings = self.settings

        def describer() -> Describer:
            return Describer(CopyOptions(), settings=settings)

        service = Service(classifier, self.config, Metrics(), describer=describer)
        return create_app(service, warm_before_serving=warm_before_serving)
