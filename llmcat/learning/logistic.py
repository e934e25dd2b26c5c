"""The supervised head: a multinomial logistic regression trained on frozen embeddings of the
labelled examples (scikit-learn, imported on first use; ``pip install 'llmcat[embed]'``).

The vectors are centred on the examples' mean and normalised again before the regression: e5
embeddings share a large common direction (their cosine similarities lie near 0.8), which a
regularised head would otherwise spend its budget on. ``C`` is chosen among ``C_GRID`` on a
held-out fifth of the examples (``choose_c``), never on the products to classify.

Only training needs scikit-learn. A trained head is its coefficients, so it is saved as one
``.npz`` file (no pickle: loading runs no code and does not depend on the scikit-learn version)
with its configuration: the embedder, the classes, ``C``, the number of examples, the llmcat
version and a digest of the training data. ``StrategyContext`` keeps heads in the cache folder
(``<cache_dir>/heads/``), keyed by that digest, so the same examples are trained on once.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from llmcat.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray
    from pydantic import JsonValue

    from llmcat.embeddings.base import Scores

#: Inverse regularisation strength with too few examples to choose one (sklearn's default of 1
#: underfits unit-length sentence embeddings, whose logits are small).
DEFAULT_C = 10.0
#: The strengths ``choose_c`` tries, from the most regularised.
C_GRID = (10.0, 100.0, 1000.0)
#: Examples below which ``C`` is not chosen (a fifth of them would judge too few).
CHOOSE_C_FROM = 50
#: Bumped when the file layout changes; an older file is retrained, not misread.
FORMAT = 2


@dataclass(frozen=True)
class SupervisedHead:
    """``p(class | x) = softmax(x · coef.T + intercept)`` over ``classes`` (category ids)."""

    classes: tuple[str, ...]
    coef: Scores  # (classes x dim)
    intercept: Scores  # (classes,)
    config: dict[str, JsonValue]
    center: (
        Scores | None
    )  # (dim,): the examples' mean, taken off every vector before the regression

    @classmethod
    def train(
        cls, vectors: ArrayLike, labels: Sequence[str], *, embedder: str, c: float = DEFAULT_C
    ) -> SupervisedHead:
        """Fit on ``vectors`` (examples x dim) labelled with category ids. One class only is a
        constant head (nothing to discriminate)."""
        import numpy as np

        rows = np.asarray(vectors, dtype=np.float64)
        center = rows.mean(axis=0)
        classes = sorted(set(labels))
        config: dict[str, JsonValue] = {
            "format": FORMAT,
            "kind": "logistic-regression",
            "embedder": embedder,
            "C": c,
            "examples": len(labels),
            "llmcat": _version(),
            "data": data_digest(rows, labels, embedder, c),
        }
        if len(classes) == 1:
            dim = rows.shape[1]
            return cls((classes[0],), np.zeros((1, dim)), np.zeros(1), config, center)
        model = _regression(c)
        with warnings.catch_warnings():
            # Few examples per category is this head's normal case, not a regression problem.
            warnings.filterwarnings("ignore", message="The number of unique classes")
            model.fit(_centred(rows, center), list(labels))
        config["sklearn"] = _sklearn_version()
        coef, intercept = model.coef_, model.intercept_
        if len(classes) == 2:  # one logit for the second class; as a softmax: [0, logit]
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.concatenate([np.zeros_like(intercept), intercept])
        return cls(tuple(str(k) for k in model.classes_), coef, intercept, config, center)

    def predict(self, vectors: ArrayLike) -> Scores:
        """Probabilities (rows x classes), in the order of ``classes``."""
        import numpy as np

        logits = _centred(np.asarray(vectors, dtype=np.float64), self.center) @ self.coef.T
        logits += self.intercept
        logits -= logits.max(axis=-1, keepdims=True)
        exps = np.exp(logits)
        probabilities: Scores = exps / exps.sum(axis=-1, keepdims=True)
        return probabilities

    def save(self, path: str | Path) -> None:
        """One ``.npz`` with the coefficients and the configuration (written atomically)."""
        import numpy as np

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.npz")
        np.savez(
            tmp,
            coef=self.coef,
            intercept=self.intercept,
            classes=np.array(self.classes, dtype=str),
            center=np.asarray(self.center),  # what np.savez makes of it, None too
            config=np.array(json.dumps(self.config)),
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> SupervisedHead:
        """Read a file written by ``save``; ConfigError when it is not one."""
        import numpy as np

        try:
            with np.load(path, allow_pickle=False) as data:
                config = json.loads(str(data["config"]))
                head = cls(
                    tuple(str(c) for c in data["classes"]),
                    data["coef"],
                    data["intercept"],
                    config,
                    data["center"] if "center" in data.files else None,
                )
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(f"{path} is not a supervised head: {exc}") from None
        if config.get("format") != FORMAT:
            raise ConfigError(f"{path} was written by another llmcat version; retrain it")
        return head


def choose_c(vectors: ArrayLike, labels: Sequence[str]) -> tuple[float, dict[float, float]]:
    """The ``C`` of ``C_GRID`` whose head, trained on four fifths of the examples (seeded), was
    right most often on the other fifth (the most regularised on a tie), and each one's accuracy.
    ``DEFAULT_C`` and no scores with fewer than ``CHOOSE_C_FROM`` examples."""
    import numpy as np

    if len(labels) < CHOOSE_C_FROM or len(set(labels)) < 2:
        return DEFAULT_C, {}
    rows = np.asarray(vectors, dtype=np.float64)
    order = list(range(len(labels)))
    random.Random(0).shuffle(order)
    held, kept = order[: len(order) // 5], order[len(order) // 5 :]
    if len({labels[i] for i in kept}) < 2:
        return DEFAULT_C, {}
    scores: dict[float, float] = {}
    for c in C_GRID:
        head = SupervisedHead.train(rows[kept], [labels[i] for i in kept], embedder="", c=c)
        predicted = np.asarray(head.classes)[head.predict(rows[held]).argmax(axis=1)]
        scores[c] = float(np.mean(predicted == np.asarray([labels[i] for i in held])))
    best = max(C_GRID, key=lambda c: (scores[c], -c))
    return best, scores


class _Regression(Protocol):
    """What is used of scikit-learn's ``LogisticRegression`` (imported on first use)."""

    coef_: Scores
    intercept_: Scores
    classes_: NDArray[np.str_]

    def fit(self, x: Scores, y: list[str]) -> object: ...


def _regression(c: float) -> _Regression:
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        raise ConfigError(
            "the supervised head needs scikit-learn: pip install 'llmcat[embed]'"
        ) from None
    regression: _Regression = LogisticRegression(C=c, max_iter=2000)
    return regression


def _centred(vectors: Scores, center: Scores | None) -> Scores:
    """Unit vectors of ``vectors - center`` (the vectors as they are without a center)."""
    import numpy as np

    if center is None:
        return vectors
    moved = vectors - center
    norms = np.linalg.norm(moved, axis=-1, keepdims=True)
    unit: Scores = moved / np.where(norms > 0, norms, 1.0)
    return unit


def data_digest(vectors: ArrayLike, labels: Sequence[str], embedder: str, c: float) -> str:
    """What a head is keyed by: the training vectors, labels, embedder and ``C``."""
    import numpy as np

    blob = hashlib.sha256(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    blob.update("\n".join(labels).encode())
    blob.update(f"{embedder}|{c}|{FORMAT}".encode())
    return blob.hexdigest()[:16]


def _version() -> str:
    from llmcat._version import __version__

    return __version__


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


__all__ = ["C_GRID", "DEFAULT_C", "SupervisedHead", "choose_c", "data_digest"]
