import math

import pytest

from llmcat.confidence.distributions import softmax
from llmcat.llm.answer_distribution import choice_distribution, distribution_from_tokens
from llmcat.llm.completions import Completion, TokenLogprob


def test_softmax_of_exact_choice_scores() -> None:
    dist = softmax({"a": math.log(0.2), "b": math.log(0.6)})
    assert dist == pytest.approx({"a": 0.25, "b": 0.75})


def test_choice_logprobs_win_over_tokens() -> None:
    c = Completion(text="a", choice_logprobs={"a": 0.0, "b": 0.0, "zzz": 5.0})
    assert choice_distribution(c, ["a", "b"]) == pytest.approx({"a": 0.5, "b": 0.5})


def test_token_distribution_uses_first_token_alternatives() -> None:
    # chosen "Shoes" = tokens "Sh"(0.6) "oes"(0.9): sequence 0.54; "To"(0.3) begins Toys;
    # "xyz" begins no label and drops out.
    tokens = [
        TokenLogprob(
            token="Sh",
            logprob=math.log(0.6),
            top={"Sh": math.log(0.6), "To": math.log(0.3), "xyz": math.log(0.1)},
        ),
        TokenLogprob(token="oes", logprob=math.log(0.9)),
    ]
    dist = distribution_from_tokens("Shoes", tokens, ["Shoes", "Toys", "Mobile Phones"])
    assert dist is not None
    assert dist["Shoes"] == pytest.approx(0.54 / 0.84)
    assert dist["Toys"] == pytest.approx(0.30 / 0.84)
    assert "Mobile Phones" not in dist
    assert sum(dist.values()) == pytest.approx(1.0)


def test_shared_first_token_splits_the_rest_of_its_mass() -> None:
    tokens = [
        TokenLogprob(
            token="Mo", logprob=math.log(0.8), top={"Mo": math.log(0.8), " To": math.log(0.2)}
        ),
        TokenLogprob(token="bile Phones", logprob=math.log(0.5)),
    ]
    dist = distribution_from_tokens("Mobile Phones", tokens, ["Mobile Phones", "Monitors", "Toys"])
    assert dist == pytest.approx({"Mobile Phones": 0.4, "Monitors": 0.4, "Toys": 0.2})


def test_no_logprobs_means_no_confidence() -> None:
    assert choice_distribution(Completion(text="a"), ["a", "b"]) is None
    assert distribution_from_tokens("c", [TokenLogprob(token="c", logprob=0.0)], ["a", "b"]) is None
