"""The LLM as an optional judge of ``llmcat map``, under classify's trust rules.

For a category, the LLM chooses among the mapping's best candidates (``prompts/map_choose.j2``,
through the same ``ConstrainedChoice`` as classify), and its distribution is pooled with the
mapping's by fitted weights (``TrustFit``, experts ``embedding`` and ``llm``). The weights are
the caller's (``trust=``), or fitted on the caller's known pairs: up to ``judge_fit_pairs`` of
them are mapped as if unknown, the LLM is asked about each, and the weights that best explain the
known targets are kept. An LLM with no fit, or whose fitted weight is 0, is not asked about the
rest: a model nobody measured does not overrule the mapping.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Collection, Mapping, Sequence

from llmcat.backends import Backend
from llmcat.batch.progress import Progress
from llmcat.confidence.trust import TrustFit, fit_weights
from llmcat.config.options import ClassifyOptions
from llmcat.config.settings import Settings
from llmcat.errors import BackendError, ConfigError, OutputError
from llmcat.llm.engine import Engine
from llmcat.llm.prompts import PromptTemplate
from llmcat.mapping.algorithm import MapInputs, map_categories
from llmcat.mapping.options import MapOptions
from llmcat.mapping.results import CategoryMapping, JudgeReport, MappedAlternative
from llmcat.strategies.choice import ConstrainedChoice
from llmcat.taxonomy.tree import Taxonomy
from llmcat.types import Product

TEMPLATE = "map_choose.j2"
EXPERTS = ("embedding", "llm")


class MapJudge:
    """Asks a model (``backend`` and ``settings`` as for ``Classifier``) to choose among a
    category's candidates; see the module docstring."""

    def __init__(
        self,
        backend: Backend | str | None = None,
        *,
        settings: Settings | None = None,
        trust: TrustFit | None = None,
        template_dir: str | None = None,
    ) -> None:
        self.engine = Engine(backend=backend, settings=settings)
        self.trust = trust
        self.choice = ConstrainedChoice(
            self.engine, PromptTemplate(TEMPLATE, template_dir), ClassifyOptions()
        )
        self.asked = 0
        #: categories the model failed on (after the transport's retries and one re-ask): they
        #: keep the mapping's own answer, and the report says how many
        self.failed = 0

    async def opinion(self, row: CategoryMapping, target: Taxonomy) -> dict[str, float] | None:
        """The LLM's distribution over the row's candidates (its answer alone, when the model
        gives no logprobs); None when there is nothing to choose or the model failed."""
        candidates = [target.get(a.target_id) for a in row.alternatives]
        if len(candidates) < 2:
            return None
        self.asked += 1
        try:
            chosen = await self.choice.choose(
                Product(id=row.source_id, title=row.source_path), candidates
            )
        except (OutputError, BackendError):
            self.failed += 1
            return None  # one category the model failed on keeps the mapping's answer
        return chosen.distribution or {chosen.category.id: 1.0}

    async def opinions(
        self, rows: Sequence[CategoryMapping], target: Taxonomy, *, label: str
    ) -> list[dict[str, float] | None]:
        """The opinions on ``rows``, ``concurrency`` at a time, with a progress bar."""
        gate = asyncio.Semaphore(self.engine.concurrency)
        bar = Progress(len(rows), label=label, enabled=self.engine.settings.progress)

        async def one(row: CategoryMapping) -> dict[str, float] | None:
            async with gate:
                vote = await self.opinion(row, target)
            bar.update(
                error=vote is None and len(row.alternatives) >= 2
            )  # a failure, not a lone candidate
            return vote

        try:
            return list(await asyncio.gather(*(one(r) for r in rows)))
        finally:
            bar.close()

    async def fitted(self, inputs: MapInputs) -> TrustFit | None:
        """Weights fitted on a seeded sample of the known pairs, each mapped as if unknown."""
        source, target, known, options = inputs.source, inputs.target, inputs.known, inputs.options
        pairs = sorted(s for s, t in known.items() if t is not None)
        if not pairs:
            return None
        sample = random.Random(0).sample(pairs, min(options.judge_fit_pairs, len(pairs)))
        held_out = set(sample)
        rest = {s: t for s, t in known.items() if s not in held_out}
        rows = {
            r.source_id: r
            for r in map_categories(
                source, target, inputs.source_matrix, inputs.target_matrix, rest, options
            )
            if r.source_id in held_out
        }
        chosen = [rows[s] for s in sample if rows[s].alternatives]
        votes = await self.opinions(chosen, target, label="map: asking the judge (fit)")
        items = [
            ({"embedding": _distribution(row), "llm": vote}, known[row.source_id] or "")
            for row, vote in zip(chosen, votes, strict=True)
            if vote is not None
        ]
        if not items:
            return None
        try:
            weights = fit_weights(items, EXPERTS)
        except ConfigError:
            return None  # no known target among the candidates: nothing to learn from
        return TrustFit(
            weights=weights,
            model=self.engine.backend.model,
            prompt_version=self.choice.template.version,
            fitted_on=f"{len(items)} known pairs mapped as if unknown",
            items=len(items),
            name="known pairs",
        )

    async def judge(
        self, results: list[CategoryMapping], inputs: MapInputs, *, keep: Collection[str] = ()
    ) -> tuple[list[CategoryMapping], JudgeReport]:
        """``results`` with the LLM's opinion pooled in where it is trusted; rows in ``keep``
        (a resumed run's) are left as they are."""
        await self.engine.prepare()  # a wrong key, URL or model: one error before any question
        try:
            trust = self.trust or await self.fitted(inputs)
            target, options = inputs.target, inputs.options
            if trust is None:
                why = "no fit: give known pairs (--known) or a trust file (--trust)"
                return results, JudgeReport(None, self.asked, f"LLM not asked ({why})")
            if trust.weights.get("llm", 0.0) <= 0.0:
                line = (
                    f"LLM not asked: its fitted weight is 0 ({trust.fitted_on}; asked "
                    f"{self.asked} times to fit it)"
                )
                return results, JudgeReport(trust, self.asked, line)
            open_rows = [
                i
                for i, r in enumerate(results)
                if r.method not in ("known", "unmapped")
                and r.alternatives
                and r.source_id not in keep
            ]
            votes = await self.opinions(
                [results[i] for i in open_rows], target, label="map: asking the judge"
            )
        finally:
            await self.engine.aclose()
        judged = list(results)
        for i, vote in zip(open_rows, votes, strict=True):
            if vote is not None:
                judged[i] = _pooled(results[i], vote, trust, target, options)
        line = (
            f"LLM asked about {len(open_rows)} categories ({self.asked} with the fit), weights "
            + " ".join(f"{k}={v:.2f}" for k, v in sorted(trust.weights.items()))
            + f" ({trust.fitted_on or trust.name})"
            + (f"; {self.failed} failed and kept the mapping's answer" if self.failed else "")
        )
        return judged, JudgeReport(trust, self.asked, line)


def _distribution(row: CategoryMapping) -> dict[str, float]:
    """The mapping's probabilities over its listed candidates, renormalised."""
    total = sum(a.probability for a in row.alternatives) or 1.0
    return {a.target_id: a.probability / total for a in row.alternatives}


def _pooled(
    row: CategoryMapping,
    vote: Mapping[str, float],
    trust: TrustFit,
    target: Taxonomy,
    options: MapOptions,
) -> CategoryMapping:
    fused = trust.fuse({"embedding": _distribution(row), "llm": vote})
    ranked = sorted(fused.items(), key=lambda kv: -kv[1])
    best, confidence = ranked[0]
    return row.model_copy(
        update={
            "target_id": best,
            "target_path": target.get(best).path_text,
            "confidence": confidence,
            "alternatives": [
                MappedAlternative(target_id=c, target_path=target.get(c).path_text, probability=p)
                for c, p in ranked[:5]
            ],
            "needs_review": confidence < options.review_threshold or row.needs_review,
            "method": "llm" if best != row.target_id else row.method,
        }
    )


__all__ = ["JudgeReport", "MapJudge"]
