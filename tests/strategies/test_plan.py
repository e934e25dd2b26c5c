"""The plan: every decision of ``auto`` made once, with its reason, and shown to users."""

from dataclasses import replace

import pytest

from llmcat import Classifier, FakeBackend, HashingEmbedder, Product, Taxonomy
from llmcat.cli import main
from llmcat.confidence.trust import TrustFit
from llmcat.config.options import ClassifyOptions
from llmcat.strategies import Facts, Outcome, Plan, Strategy, decide, get
from llmcat.strategies.plan import FEW_LABELS

FACTS = Facts(
    leaves=400,
    examples=0,
    embedder="st:all-MiniLM-L6-v2",
    embedder_origin="the bundled one",
    lexical="hashing-2048",
    model="m",
    prompt_version="v1",
)
MUTED = TrustFit(weights={"llm": 0.0, "embedding": 1.5}, name="muted")


def plan_for(
    name: str = "auto", facts: Facts = FACTS, shipped: TrustFit | None = None, **kw: object
) -> Plan:
    """The plan with ``shipped`` as the fit that ships for every model, template, embedder."""
    return decide(
        name,
        ClassifyOptions.model_validate(kw),
        facts,
        lambda model, version, embedder: shipped,
        uses_model=lambda n: get(n).uses_model,
        uses_embedder=lambda n: get(n).uses_embedder,
    )


def test_auto_by_size_and_embedder() -> None:
    assert plan_for(facts=replace(FACTS, leaves=7)).strategy == "flat"
    assert plan_for().strategy == "shortlist"
    walk = plan_for(facts=replace(FACTS, embedder=None))
    assert walk.strategy == "hierarchical" and walk.embedder is None
    assert "no embedder" in walk.reasons["strategy"]


def test_lexical_embedder_only_when_a_fit_ships_for_it() -> None:
    bare = replace(FACTS, embedder=None)
    lexical = plan_for(facts=bare, shipped=MUTED)
    assert (lexical.strategy, lexical.embedder, lexical.embedding_model) == (
        "shortlist",
        "hashing-2048",
        "hashing",
    )
    assert lexical.trust_source == "shipped" and not lexical.asks_llm
    assert "weight 0" in lexical.reasons["llm"]
    # Named by the caller, a strategy never switches embedder behind their back.
    assert plan_for("hierarchical", facts=bare, shipped=MUTED).embedder is None


def test_trust_sources() -> None:
    assert plan_for(shipped=MUTED).trust_source == "shipped"
    neutral = plan_for()
    assert neutral.trust_source == "neutral" and neutral.asks_llm
    assert neutral.trust is not None and set(neutral.trust.weights) == {"llm", "embedding"}
    assert plan_for(trust="neutral", shipped=MUTED).trust_source == "neutral"
    given = plan_for(trust=MUTED)
    assert given.trust_source == "given" and given.trust is MUTED and not given.asks_llm
    learned = plan_for(facts=replace(FACTS, examples=40), fit_model_calls=7)
    assert learned.trust_source == "examples" and learned.fit_model_calls == 7
    assert "40 examples" in learned.reasons["trust"]
    assert plan_for(fuse_embedding=False).trust_source == "none"


def test_unknown_model_makes_a_provisional_plan() -> None:
    plan = plan_for(facts=replace(FACTS, model=""))
    assert plan.provisional and "not known yet" in plan.reasons["trust"]


class _Deep(Strategy):
    """Returns a distribution split across two leaves of one parent, no confidence."""

    name = "deep-test"

    @property
    def prompt_version(self) -> str:
        return "t"

    async def run(self, product: Product) -> Outcome:
        taxonomy = self.context.taxonomy
        a, b = taxonomy.find_path("Toys > Trains"), taxonomy.find_path("Toys > Blocks")
        assert a is not None and b is not None
        return Outcome(category=a, distribution={a.id: 0.4, b.id: 0.35})


def test_min_confidence_is_applied_once_for_every_strategy() -> None:
    taxonomy = Taxonomy.from_paths([["Toys", "Trains"], ["Toys", "Blocks"], ["Shoes"]])
    clf = Classifier(taxonomy, backend=FakeBackend([]), min_confidence=0.6)
    clf._strategy = _Deep(clf.context)
    result = clf.classify("wooden train")
    assert result.path == ["Toys"] and result.stopped_early
    assert result.confidence == pytest.approx(0.75)


def test_plan_is_public_and_in_results() -> None:
    clf = Classifier(["Shoes", "Toys"], backend=FakeBackend(["Toys"]))
    assert clf.plan.strategy == "flat" and clf.plan.embedder is None
    assert clf.classify("wooden train").plan == clf.plan.summary()
    knn = Classifier(
        ["Shoes", "Toys"],
        backend=FakeBackend([]),
        embedder=HashingEmbedder(),
        strategy="knn",
        examples=[{"title": "red sneaker", "category": "Shoes"}],
    )
    assert knn.plan.embedder == "hashing-2048" and not knn.plan.asks_llm


def test_cli_explain_names_strategy_embedder_and_trust(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["classify", "--labels", "Shoes,Toys", "--backend", "fake", "--explain"])
    out = capsys.readouterr().out
    assert code == 0
    for word in ("strategy:", "embedder:", "trust:", "calibration:", "llm:", "why: auto"):
        assert word in out


def test_few_labels_go_to_the_embedding_when_the_models_measured_weight_is_zero() -> None:
    few = replace(FACTS, leaves=7)
    measured = plan_for(facts=few, shipped=MUTED)
    assert measured.strategy == "shortlist" and not measured.asks_llm
    assert "weight 0" in measured.reasons["strategy"]
    asked = TrustFit(weights={"llm": 0.4, "embedding": 1.0}, name="asked")
    assert plan_for(facts=few, shipped=asked).strategy == "flat"  # measured useful: asked
    assert plan_for(facts=few).strategy == "flat"  # nothing measured: today's rule


def test_a_flat_list_of_labels_is_grounded_and_learns_from_the_run_when_asked() -> None:
    flat = replace(FACTS, leaves=7, flat=True)
    plan = plan_for("embedding", facts=flat)
    assert (plan.label_words, plan.transductive, plan.observes_run) == ("google", False, False)
    assert "labels grounded in google" in plan.summary() and "unevenly" in plan.reasons["run"]
    asked = plan_for("embedding", facts=flat, transductive="on")
    assert asked.transductive and asked.observes_run and "learns from the run" in asked.summary()
    assert "labels:" in asked.explain() and "run:" in asked.explain()
    tree = plan_for("embedding", facts=replace(FACTS, flat=False))
    assert (tree.label_words, tree.transductive) == ("names", False)
    many = plan_for("embedding", facts=replace(flat, leaves=FEW_LABELS + 1))
    assert many.label_words == "names" and "more than" in many.reasons["labels"]
    described = plan_for("embedding", facts=replace(flat, described=True))
    assert described.label_words == "names" and "descriptions" in described.reasons["labels"]
    # The caller decides, either way; a strategy that embeds nothing has neither.
    chosen = plan_for("embedding", facts=flat, label_words="names", transductive="off")
    assert (chosen.label_words, chosen.transductive) == ("names", False)
    assert plan_for("embedding", facts=replace(FACTS, flat=False), transductive="on").transductive
    assert not plan_for("flat", facts=flat, transductive="on").transductive
