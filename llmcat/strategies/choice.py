"""One constrained choice among candidate categories: the component every LLM strategy uses.

It renders the template, asks the model for exactly one of the labels, maps the answer with
``labels.match_label`` (so a label outside the candidates never escapes), re-asks once when the
answer names none, turns logprobs into a distribution over the candidates and, with
``calibration="contextual"``, divides out the label prior of a content-free input.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, TypedDict

from llmcat.confidence.distributions import contextual_calibrate
from llmcat.config.options import ClassifyOptions
from llmcat.embeddings import product_text
from llmcat.errors import ConfigError, OutputError
from llmcat.llm.answer_distribution import choice_distribution
from llmcat.llm.completions import (
    ChoiceConstraint,
    Completion,
    CompletionRequest,
    Message,
    Sampling,
    usage_of,
)
from llmcat.llm.engine import Engine
from llmcat.llm.labels import match_label
from llmcat.llm.prompts import PromptTemplate
from llmcat.strategies.base import Outcome, Strategy, StrategyContext
from llmcat.taxonomy.tree import Category
from llmcat.types import Product, Usage


class Shot(TypedDict):
    """One labelled example as a template sees it."""

    product: Product
    category: str  # its path


#: Finds the examples a product's prompt shows.
FewShot = Callable[[Product], Awaitable[list[Shot]]]

#: The content-free input scored for contextual calibration.
CONTENT_FREE = Product(id="content-free", title="N/A")
#: One choice offers at most this many labels, and this many characters of them (about 25k
#: tokens): more would not fit most context windows, and a model cannot choose among them.
MAX_CHOICES = 2000
MAX_CHOICE_CHARS = 100_000


log = logging.getLogger(__name__)


def check_choice_size(labels: Sequence[str], what: str, advice: str) -> None:
    """ConfigError when one choice among ``labels`` would be too large a prompt."""
    chars = sum(len(label) + 3 for label in labels)
    if len(labels) > MAX_CHOICES or chars > MAX_CHOICE_CHARS:
        raise ConfigError(
            f"{what} offers too many categories for one prompt: {len(labels):,} ({chars:,} "
            f"characters); one choice takes at most {MAX_CHOICES:,} ({MAX_CHOICE_CHARS:,} "
            f"characters) - {advice}"
        )


@dataclass
class Choice:
    """The result of one constrained choice among candidate categories."""

    category: Category
    distribution: dict[str, float] | None  # category id -> probability among the candidates
    usage: Usage
    cached: bool
    model: str

    def outcome(self) -> Outcome:
        """This choice as a strategy's outcome."""
        return Outcome(self.category, self.distribution, self.usage, self.cached, self.model)


class ConstrainedChoice:
    """Asks the model to pick one candidate, with one re-ask; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        template: PromptTemplate,
        options: ClassifyOptions,
        shots: FewShot | None = None,
    ) -> None:
        self.engine = engine
        self.template = template
        self.options = options
        #: the labelled examples a product's prompt shows (dynamic few-shot), if any
        self.shots = shots

    async def choose(
        self,
        product: Product,
        candidates: Sequence[Category],
        *,
        by_name: bool = False,
        parent: Category | None = None,
    ) -> Choice:
        """One constrained choice among ``candidates``, re-asking once if the answer is unusable.

        ``by_name``: candidates are shown by their own name (a hierarchical step below
        ``parent``), else by their full path."""
        by_label = {(c.name if by_name else c.path_text): c for c in candidates}
        labels = list(by_label)
        examples = await self.shots(product) if self.shots is not None else []
        request = self.request(product, labels, parent, examples)
        completion = await self._ask(request, labels)
        usage = usage_of(completion)
        cached = completion.cached
        label = match_label(completion.text, labels)
        if label is None:
            log.info(
                "re-asking product %s: %r is not one of the %d choices",
                product.id or "?",
                completion.text[:60],
                len(labels),
            )
            retry = request.model_copy(
                update={"messages": [*request.messages, *reask_messages(completion.text, labels)]}
            )
            completion = await self._ask(retry, labels)
            usage, cached = usage + usage_of(completion), cached and completion.cached
            label = match_label(completion.text, labels)
        if label is None:
            raise OutputError(
                f"the model answered {completion.text[:80]!r}, which is not one of the "
                f"{len(labels)} allowed categories",
                raw=completion.text,
            )
        distribution = None
        # Logprobs describe the text generated; they say nothing about a label mapped from
        # other text, so only an exact answer gets a distribution.
        if completion.text == label:
            by_text = choice_distribution(completion, labels)
            if by_text is not None and self.options.calibration == "contextual":
                prior_completion = await self._ask(
                    self.request(CONTENT_FREE, labels, parent), labels
                )
                usage = usage + usage_of(prior_completion)
                prior = choice_distribution(prior_completion, labels)
                if prior is not None:
                    by_text = contextual_calibrate(by_text, prior)
                    label = max(by_text, key=by_text.__getitem__)
            if by_text is not None:
                distribution = {by_label[k].id: v for k, v in by_text.items() if k in by_label}
        return Choice(
            category=by_label[label],
            distribution=distribution,
            usage=usage,
            cached=cached,
            model=completion.model or self.engine.backend.model,
        )

    def request(
        self,
        product: Product,
        labels: list[str],
        parent: Category | None = None,
        examples: Sequence[Shot] = (),
    ) -> CompletionRequest:
        """The request that offers ``labels`` for ``product`` (with ``examples`` shown)."""
        messages = self.template.render(
            {
                "product": product,
                "labels": labels,
                "examples": list(examples),
                "parent": parent.path_text if parent is not None else "",
                "description_chars": self.options.description_chars,
                "attribute_limit": self.options.attribute_limit,
            }
        )
        return CompletionRequest(
            messages=messages,
            constraint=ChoiceConstraint(choices=labels),
            sampling=Sampling(
                temperature=0.0, max_tokens=max_label_tokens(labels), top_logprobs=20
            ),
            prompt_version=self.template.version,
            images=list(product.image_urls),
        )

    async def _ask(self, request: CompletionRequest, labels: list[str]) -> Completion:
        def valid(c: Completion) -> bool:
            return match_label(c.text, labels) is not None

        return await self.engine.call(request, valid)


def max_label_tokens(labels: Sequence[str]) -> int:
    """Room for the longest label (about 4 characters per token) plus quotes or a JSON wrapper."""
    return min(512, max(len(label) for label in labels) // 2 + 24)


def reask_messages(answer: str, labels: Sequence[str]) -> list[Message]:
    """The turn that shows the model its unusable answer and the list to copy from."""
    allowed = "\n".join(f"- {label}" for label in labels)
    return [
        Message(role="assistant", content=answer[:500]),
        Message(
            role="user",
            content=(
                "That is not one of the categories. Answer with exactly one category from this "
                f"list, copied exactly, and nothing else:\n{allowed}"
            ),
        ),
    ]


class ChoiceStrategy(Strategy):
    """A strategy that asks the model through one ``ConstrainedChoice`` (``self.chooser``),
    rendered from the template option named by ``template_option``."""

    template_option: ClassVar[Literal["template", "step_template"]] = "template"

    def __init__(self, context: StrategyContext) -> None:
        super().__init__(context)
        options = context.options
        template = PromptTemplate(getattr(options, self.template_option), options.template_dir)
        shots = self.few_shot if context.examples and options.few_shot > 0 else None
        self.chooser = ConstrainedChoice(context.engine, template, options, shots)

    async def few_shot(self, product: Product) -> list[Shot]:
        """The ``few_shot`` examples nearest to the product, the nearest last (next to the
        product); never the product itself (an example is not shown to itself when trust is
        cross-validated on the examples)."""
        context, wanted = self.context, self.context.options.few_shot
        text = product_text(product)
        query = await context.embed_product(product)
        near = await context.example_index().nearest_to(query, wanted + 1)
        chosen = [e for e, _ in near if product_text(e.product) != text][:wanted]
        return [{"product": e.product, "category": e.category.path_text} for e in reversed(chosen)]

    @property
    def prompt_version(self) -> str:
        return self.chooser.template.version
