"""Candidate values are whole runs of the text, and point at the characters they were read
from."""

from __future__ import annotations

from llmcat.attributes.spans import candidate_spans, shape, span_features, tokens


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


def test_features_name_the_attribute_and_how_often_the_value_was_known() -> None:
    text = "Acme Men's Loafer"
    words = tokens(text)
    span = candidate_spans(text)[0]
    assert span.text == "Acme"
    features = list(span_features(text, words, span, "Shoes", "Brand", {"acme": 7}))
    assert "Shoes|Brand|known3" in features and "Brand|known3" in features
    unknown = list(span_features(text, words, span, "Shoes", "Brand", {}))
    assert "Shoes|Brand|known0" in unknown
    assert shape("Men's") == "Aaa'a" and shape("10oz") == "00aa"


def test_past_the_read_limit_only_known_values_are_candidates() -> None:
    text = "Acme kettle. " + "Boils water fast. " * 80 + "Colour: Brushed Steel, 1.7 litre"
    assert len(text) > 1000
    near = candidate_spans(text, "description")
    assert all(s.start < 1000 for s in near)
    known = candidate_spans(text, "description", wanted=lambda run: run == "Brushed Steel")
    far = [s for s in known if s.start >= 1000]
    assert [s.text for s in far] == ["Brushed Steel"]
    assert text[far[0].start : far[0].end] == "Brushed Steel"
