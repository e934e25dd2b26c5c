import pytest

from llmcat.llm.labels import match_label

LABELS = ["Shoes", "Mobile Phones", "Toys", "Running Shoes"]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Toys", "Toys"),
        ("toys", "Toys"),
        ('"Mobile Phones".', "Mobile Phones"),
        ("Category: Toys", "Toys"),
        ("**Toys**\nbecause kids", "Toys"),
        ("I think these are Running Shoes", "Running Shoes"),  # "Shoes" is inside the longer one
        ("It is a toy", None),
        ("Shoes or Toys", None),  # ambiguous
        ("", None),
        ("Kitchen", None),
    ],
)
def test_match_label(answer: str, expected: str | None) -> None:
    assert match_label(answer, LABELS) == expected


def test_leaf_name_matches_a_full_path_once() -> None:
    labels = ["Clothing > Shirts", "Clothing > Shoes", "Toys > Dolls"]
    assert match_label("Shirts", labels) == "Clothing > Shirts"
    assert match_label("clothing>shoes", labels) == "Clothing > Shoes"
