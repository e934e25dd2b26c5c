"""Listing copy names the colour and material a title states, read by the attribute
extractor's allowed values (issue 44): a product with only a title gets them into its bullets."""

from __future__ import annotations

from llmcat import Describer, Product
from llmcat.attributes.answers import title_values
from llmcat.attributes.schema import Schema


def test_a_title_only_product_gets_its_colour_and_material_into_the_bullets() -> None:
    copy = Describer(backend="fake").compose("Acme Crew Neck T-Shirt in cotton, NAVY BLUE")
    assert "Colour: Navy Blue" in copy.bullets and "Material: Cotton" in copy.bullets
    # Still thin (the data says nothing beyond its title), and nothing else is found.
    assert copy.error is None and [f.kind for f in copy.findings] == ["thin"]


def test_the_products_own_attribute_wins_and_the_option_turns_it_off() -> None:
    describer = Describer(backend="fake")
    own = Product(title="Acme Tee, Navy Blue, Cotton", attributes={"Colour": "navy"})
    bullets = describer.compose(own).bullets
    assert "Colour: navy" in bullets and "Material: Cotton" in bullets
    assert not any("Navy Blue" in b for b in bullets)
    off = describer.compose("Acme Tee, Navy Blue, Cotton", title_attributes=False).bullets
    assert not any("Colour" in b or "Material" in b for b in off)


def test_only_whole_words_of_the_title_are_read() -> None:
    schema = Schema.builtin()
    assert {spec.name for spec in schema.common} == {"Color", "Material"}
    assert title_values(Product(title="Redwood Coffee Table"), schema) == {}
    assert title_values(Product(title="Oak Table, Stainless Steel legs"), schema) == {
        "Material": "Stainless Steel"
    }
    # "Strap Colour" speaks of the colour already: nothing is read for Color.
    strap = Product(title="Watch, Black dial", attributes={"Strap Colour": "Brown"})
    assert title_values(strap, schema) == {}
