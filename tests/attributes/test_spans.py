"""Candidate values are whole runs of the text, and point at the characters they were read
from."""

from __future__ import annotations

import numpy as np

from llmcat.attributes.spans import (
    FEATURE_BITS,
    candidate_spans,
    columns,
    run_features,
    shape,
    tokens,
)


def test_every_candidate_is_the_text_at_its_span() -> None:
    text = "Florsheim Men's Milano Slip-On Loafer,Burgundy,10 D US"
    spans = candidate_spans(text)
    assert spans and all(text[s.start : s.end] == s.text for s in spans)
    found = {s.text for s in spans}
    assert {"Florsheim", "Men's", "Slip-On Loafer", "Burgundy", "10 D US"} <= found
    # A comma ends a token (1% of OA-Mine's values hold one, so runs may cross it).
    assert "Burgundy" in found and "Loafer,Burgundy" in found
    assert all(s.last - s.first < 6 for s in spans)


def test_glue_is_trimmed_and_empty_runs_are_left_out() -> None:
    spans = candidate_spans("Green Tea - 20 Bags.")
    texts = {s.text for s in spans}
    assert "Green Tea" in texts and "20 Bags" in texts
    assert "-" not in texts and all(s.text == s.text.strip(" -:.") for s in spans)
    assert candidate_spans("") == [] and tokens("  ") == []


def test_features_depend_on_the_attribute_and_on_how_often_the_value_was_known() -> None:
    text = "Acme Men's Loafer"
    runs = run_features(text)
    assert runs.spans == tuple(candidate_spans(text)) and runs.spans[0].text == "Acme"
    known = columns(runs, "Shoes", "Brand", {"acme": 7})
    unknown = columns(runs, "Shoes", "Brand", {})
    other = columns(runs, "Shoes", "Color", {"acme": 7})
    assert known.shape == unknown.shape and known.shape[0] == len(runs.spans)
    assert ((known >= 0) & (known <= 1 << FEATURE_BITS)).all()
    # Only the "known" count moves between the first two; every feature names the attribute
    # except the words themselves read beside the bare "known" count.
    assert 0 < (known[0] != unknown[0]).sum() <= 4
    assert (known[1:] == unknown[1:]).all()  # "Acme Men's" etc. were never values
    filled = known[0] != 1 << FEATURE_BITS
    assert (known[0] != other[0]).sum() == filled.sum() - 1
    # A one-word run leaves the other word slots empty (the last column index, weight 0).
    assert (known[0] == 1 << FEATURE_BITS).sum() == 2 * 5
    assert shape("Men's") == "Aaa'a" and shape("10oz") == "00aa"


def test_a_runs_features_do_not_depend_on_the_other_runs_read() -> None:
    text = "Acme kettle. " + "Boils water fast. " * 80 + "Colour: Brushed Steel, 1.7 litre"
    runs = run_features(text, "description", wanted=lambda run: run == "Brushed Steel")
    far = runs.spans.index(next(s for s in runs.spans if s.text == "Brushed Steel"))
    alone = run_features("Acme kettle. Boils water fast. " + text[-32:], "description")
    near = next(i for i, s in enumerate(alone.spans) if s.text == "Brushed Steel")
    # The same words around it and the same place (capped at 5 words from the start).
    got, again = columns(runs, "K", "Color", {}), columns(alone, "K", "Color", {})
    assert far > len(alone.spans) and np.array_equal(got[far], again[near])


def test_past_the_read_limit_only_known_values_are_candidates() -> None:
    text = "Acme kettle. " + "Boils water fast. " * 80 + "Colour: Brushed Steel, 1.7 litre"
    assert len(text) > 1000
    near = candidate_spans(text, "description")
    assert all(s.start < 1000 for s in near)
    known = candidate_spans(text, "description", wanted=lambda run: run == "Brushed Steel")
    far = [s for s in known if s.start >= 1000]
    assert [s.text for s in far] == ["Brushed Steel"]
    assert text[far[0].start : far[0].end] == "Brushed Steel"
