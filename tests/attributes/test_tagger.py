"""The tagger's runs compete in one softmax with "no value": it learns where a value ends and
when the text states none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix

from llmcat.attributes.examples import read_examples
from llmcat.attributes.tagger import SpanTagger, _softmax_fit


def test_the_fit_gives_each_groups_right_row_the_largest_share() -> None:
    # Two groups of three rows; feature 0 marks the right row, 1 and 2 the others.
    matrix = csr_matrix(np.asarray([[1, 0, 0], [0, 1, 0], [0, 0, 1]] * 2, dtype=float))
    right = np.asarray([True, False, False] * 2)
    weights = _softmax_fit(matrix, np.asarray([0, 3]), np.zeros(6), right)
    assert weights[0] > weights[1] and weights[0] > weights[2]
    # A row that stands for many (its offset) pulls its features down harder.
    heavy = _softmax_fit(matrix, np.asarray([0, 3]), np.asarray([0, 0, 2.0] * 2), right)
    assert heavy[2] < weights[2]


def test_a_value_ends_where_the_examples_end_it_and_absent_ones_are_none(
    shoe_files: tuple[Path, Path],
) -> None:
    train, _ = shoe_files
    tagger = SpanTagger.trained(read_examples(train), calibrate=False)
    fields = [("title", "Borealis Women's Hiking Boot,Navy Blue")]
    colour = tagger.scored(fields, "Shoes", "Color")
    assert colour[0].span.text == "Navy Blue"
    assert colour[0].score > 0.5 and sum(c.score for c in colour) <= 1.0
    # Shoe type "Hiking Boot", not the longer run that swallows the colour.
    assert tagger.scored(fields, "Shoes", "Shoe type")[0].span.text == "Hiking Boot"
    # No size in the text: every run's share is small, the rest is "no value".
    size = tagger.scored(fields, "Shoes", "Size")
    assert all(c.score < 0.5 for c in size)
