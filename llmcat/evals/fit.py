"""Fit the trust of fused experts on a labelled run, and judge a fit on other runs.

    python -m evals fit RUN [--out trust.json] [--apply OTHER_RUN ...] [--keep-weights FIT]

RUN is a classification run of a fusing strategy (``shortlist``): its samples hold each expert's
distribution over the candidates and the gold category. The fit minimises the NLL of the gold
category (``llmcat.confidence.trust.fit_weights``). ``--apply`` re-fuses the recorded experts of other runs
with the fitted weights, without calling any model, and compares the result item by item with
the neutral fusion the run used and with its embedding baseline (exact McNemar): fit on one set,
judge on another. A fit also records what transfers to other catalogues: the
``entropy_threshold`` and ``matched_weight`` a run's accuracy is estimated and its embedding
weight scaled from (``TrustFit.at_run``), the embedding expert's mean ``spread`` on RUN (the
fallback) and the ``review_threshold`` at which RUN's fused answers were right
``REVIEW_TARGET`` of the time. ``--keep-weights FIT`` measures these for an existing fit's
weights without refitting.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path

from llmcat.classify.classifier import SPREAD_SAMPLE
from llmcat.confidence.calibration import (
    ACCURACY_SAMPLE_MIN,
    REVIEW_TARGET,
    coverage,
    entropy_threshold,
    expected_calibration_error,
    matched_weight,
    powered,
    review_threshold,
)
from llmcat.confidence.distributions import SPREAD_K, log_linear_pool, spread
from llmcat.confidence.trust import FitItem, TrustFit, fit_weights, mean_nll, neutral
from llmcat.config.flags import SubParsers
from llmcat.errors import ConfigError
from llmcat.evals.records import (
    ClassificationSample,
    DescriptionSample,
    RunSummary,
    classification_samples,
    read_run,
)
from llmcat.evals.stats import mcnemar_exact


def fit_items(
    samples: Sequence[ClassificationSample | DescriptionSample],
) -> list[tuple[dict[str, dict[str, float]], str]]:
    """(experts, gold id) of every fused item of a run whose gold is a taxonomy node."""
    return [(s.output.experts, s.gold_id) for s in _fused(samples)]  # type: ignore[misc]


def _fused(
    samples: Sequence[ClassificationSample | DescriptionSample],
) -> list[ClassificationSample]:
    """The run's items with each expert's distribution and a gold node."""
    return [s for s in classification_samples(list(samples)) if s.output.experts and s.gold_id]


def _correct(distribution: Mapping[str, float], gold: str) -> bool:
    return max(distribution, key=distribution.__getitem__) == gold


def mean_spread(items: Sequence[FitItem]) -> float | None:
    """The embedding expert's mean spread over the items that have one."""
    found = [s for e, _ in items if "embedding" in e and (s := spread(e["embedding"])) is not None]
    return sum(found) / len(found) if found else None


def _embedding_rows(items: Sequence[FitItem]) -> list[tuple[list[float], bool]]:
    """Each item's embedding distribution over its ``SPREAD_K`` likeliest candidates
    (renormalised: what a run's sample reads), and whether its likeliest is the gold."""
    rows = []
    for experts, gold in items:
        emb = experts.get("embedding", {})
        top = sorted(emb, key=emb.__getitem__, reverse=True)[:SPREAD_K]
        if len(top) == SPREAD_K:
            total = sum(emb[c] for c in top)
            rows.append(([emb[c] / total for c in top], top[0] == gold))
    return rows


def accuracy_measures(fit: TrustFit, items: Sequence[FitItem]) -> dict[str, float | None]:
    """What ``TrustFit.at_run`` needs, measured on the fit's items at its embedding weight:
    the entropy threshold that counts as many items as the embedding answered right, and the
    weight that makes them on average as sure as that."""
    rows = _embedding_rows(items)
    if len(rows) < ACCURACY_SAMPLE_MIN or "embedding" not in fit.weights:
        return {"entropy_threshold": None, "matched_weight": None}
    weight = fit.weights["embedding"]
    right = [ok for _, ok in rows]
    return {
        "entropy_threshold": entropy_threshold([powered(d, weight) for d, _ in rows], right),
        "matched_weight": matched_weight([d for d, _ in rows], sum(right) / len(right)),
    }


def at_run(fit: TrustFit, items: Sequence[FitItem]) -> TrustFit:
    """``fit`` as a classifier scales it for a run made of ``items``: from the embedding
    distributions of an evenly spaced sample of ``SPREAD_SAMPLE`` of them, else their spread."""
    rows = [d for d, _ in _embedding_rows(items)]
    sample = rows[:: max(1, len(rows) // SPREAD_SAMPLE)][:SPREAD_SAMPLE]
    scaled = fit.at_run(sample)
    return scaled if scaled is not fit else fit.at_spread(mean_spread(items))


def confidences(fit: TrustFit, items: Sequence[FitItem]) -> tuple[list[float], list[bool]]:
    """The fused answers' confidence and whether each was right."""
    fused = [(fit.fuse(e), g) for e, g in items]
    return [max(d.values()) for d, _ in fused], [_correct(d, g) for d, g in fused]


def judge(fit: TrustFit, run: Path) -> list[str]:
    """Lines comparing, on ``run``, the fitted fusion with the run's own and its baseline."""
    data, samples = read_run(run)
    items = fit_items(samples)
    if not items:
        raise ConfigError(f"{run} records no expert distributions (a shortlist run is needed)")
    experts = list(items[0][0])
    base = neutral(experts)
    baseline = {
        s.id: (s.output.path == s.gold, s.output.confidence)
        for s in classification_samples(samples, baseline=True)
    }
    fused_ids = [s.id for s in _fused(samples)]
    fitted_right = [_correct(fit.fuse(e), g) for e, g in items]
    neutral_right = [_correct(base.fuse(e), g) for e, g in items]
    n = len(items)
    lines = [
        f"{run} ({data.suite}, {n} fused items): accuracy among the candidates "
        f"neutral {sum(neutral_right) / n:.3f} -> fitted {sum(fitted_right) / n:.3f}; "
        f"NLL {mean_nll(items, base.weights):.3f} -> {mean_nll(items, fit.weights):.3f}"
    ]
    common = [i for i, sid in enumerate(fused_ids) if sid in baseline]
    if common:
        fitted = [fitted_right[i] for i in common]
        emb = [baseline[fused_ids[i]][0] for i in common]
        only_fit = sum(a and not b for a, b in zip(fitted, emb, strict=True))
        only_emb = sum(b and not a for a, b in zip(fitted, emb, strict=True))
        p = mcnemar_exact(only_emb, only_fit)
        lines.append(
            f"  fitted fusion {sum(fitted) / len(common):.3f} vs embedding baseline "
            f"{sum(emb) / len(common):.3f} on {len(common)} items (full path; McNemar exact "
            f"p={p:.4f}, {only_emb} only the baseline got / {only_fit} only the fusion got)"
        )
        scaled = at_run(fit, items)
        fitted_conf, fitted = confidences(scaled, [items[i] for i in common])
        emb_conf = [c for i in common if (c := baseline[fused_ids[i]][1]) is not None]
        if len(emb_conf) == len(common):
            lines.append(
                f"  expected calibration error: fitted fusion "
                f"{expected_calibration_error(fitted_conf, fitted):.3f} ({scaled.describe()}), "
                f"embedding baseline {expected_calibration_error(emb_conf, emb):.3f}"
            )
        if fit.review_threshold is not None:
            flagged, kept = coverage(fitted_conf, fitted, fit.review_threshold)
            lines.append(
                f"  at the fit's review threshold {fit.review_threshold:.2f}: {flagged:.1%} "
                "flagged, the rest right "
                + ("(none left)" if kept is None else f"{kept:.1%} of the time")
            )
    return lines


def _accuracy(items: Sequence[FitItem], weights: Mapping[str, float]) -> float:
    return sum(_correct(log_linear_pool(e, weights), g) for e, g in items) / len(items)


def _model_pays_its_way(
    items: Sequence[FitItem], experts: list[str], weights: dict[str, float]
) -> dict[str, float]:
    """The weights of least NLL, or, when the fused answers are no less often right without the
    LLM (fitted again without it), those with the LLM at 0: asking it costs a model call per
    product, so it has to pay for itself in right answers (``auto`` then never asks it)."""
    rest = [e for e in experts if e != "llm"]
    without = [({k: v for k, v in e.items() if k != "llm"}, g) for e, g in items]
    muted = {**fit_weights(without, rest), "llm": 0.0}
    asked, silent = _accuracy(items, weights), _accuracy(items, muted)
    print(
        f"right answers with the LLM at its fitted weight {asked:.3f}, without it {silent:.3f}: "
        + ("the LLM is muted (weight 0)" if silent >= asked else "the LLM keeps its weight")
    )
    return muted if silent >= asked else weights


def run_fit(args: argparse.Namespace) -> int:
    data, samples = read_run(args.run)
    items = fit_items(samples)
    if len(items) < 10:
        raise ConfigError(
            f"{args.run} has {len(items)} fused items with a gold category; a fit needs at least "
            "10 (a shortlist run on a labelled suite)"
        )
    experts = list(items[0][0])
    if args.keep_weights is not None:
        fit = TrustFit.load(args.keep_weights)
        print(f"the weights of {args.keep_weights}, measured on {len(items)} items of {args.run}")
    else:
        fit = _fitted(args, data, samples, items, experts)
    threshold = review_threshold(*confidences(fit, items))
    update = {"spread": mean_spread(items), "review_threshold": threshold}
    fit = fit.model_copy(update=update | accuracy_measures(fit, items))
    print(
        f"embedding spread {fit.spread or float('nan'):.3f}; entropy threshold "
        f"{fit.entropy_threshold or float('nan'):.3f}, matched weight "
        f"{fit.matched_weight or float('nan'):.3f}; review threshold "
        + ("none" if threshold is None else f"{threshold:.3f}")
        + f" (the items at or above it right {REVIEW_TARGET:.0%} of the time)"
    )
    for other in args.apply:
        print("\n".join(judge(fit, other)))
    if args.out:
        fit.save(args.out)
        print(f"wrote {args.out}; use it with Classifier(trust=...) or --trust")
    return 0


def _fitted(
    args: argparse.Namespace,
    data: RunSummary,
    samples: Sequence[ClassificationSample | DescriptionSample],
    items: Sequence[FitItem],
    experts: list[str],
) -> TrustFit:
    """The weights of least NLL on ``items`` (an embedding-only run fits the embedding's weight
    alone, with the model muted as in that run)."""
    weights = fit_weights(items, experts)
    if "llm" in experts:
        weights = _model_pays_its_way(items, experts, weights)
    elif experts == ["embedding"]:
        print("only the embedding was recorded (the run muted the model): fitting its weight")
        weights["llm"] = 0.0
    first = classification_samples(list(samples))[0].output
    embedder = data.baselines.get("embedding", {}).get("model", "")
    fit = TrustFit(
        weights=weights,
        model=first.model,
        prompt_version=first.prompt_version,
        embedder=embedder if isinstance(embedder, str) else "",
        fitted_on=f"{data.suite} ({args.run})",
        taxonomy=data.manifest.taxonomy_version,
        items=len(items),
        nll_neutral=mean_nll(items, dict.fromkeys(experts, 1.0)),
        nll_fitted=mean_nll(items, weights),
        name=args.out.stem if args.out else "",
    )
    print(
        f"fitted on {len(items)} items of {args.run}: "
        + ", ".join(f"{k} {v:.3f}" for k, v in weights.items())
    )
    print(
        f"mean NLL of the gold category: neutral {fit.nll_neutral:.3f} -> fitted {fit.nll_fitted:.3f}"
    )
    low = [k for k, v in weights.items() if v < 0.05]
    if low:
        print(f"weights near zero ({', '.join(low)}): on this data those experts add nothing")
    return fit


def add_parser(sub: SubParsers) -> None:
    p = sub.add_parser("fit", help="fit the weights of fused experts on a labelled run")
    p.add_argument("run", type=Path, help="a shortlist run on a labelled suite")
    p.add_argument("--out", type=Path, help="write the fit here (JSON)")
    p.add_argument(
        "--apply", type=Path, action="append", default=[], help="judge the fit on another run"
    )
    p.add_argument(
        "--keep-weights",
        type=Path,
        metavar="FIT",
        help="measure what transfers (entropy threshold, spread, review threshold) for this "
        "fit's weights on RUN, no refit",
    )
    p.set_defaults(func=run_fit)
