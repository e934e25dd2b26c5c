"""The supervised head: a multinomial logistic regression trained on frozen embeddings of the
labelled examples (scikit-learn, imported on first use; ``pip install 'llmcat[embed]'``).

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
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

#: Inverse regularisation strength, fixed in advance (sklearn's default of 1 underfits
#: unit-length sentence embeddings, whose logits are small); not tuned on any reported set.
DEFAULT_C = 10.0
#: Bumped when the file layout changes; an older file is retrained, not misread.
FORMAT = 1


@dataclass(frozen=True)
class SupervisedHead:
    """``p(class | x) = softmax(x · coef.T + intercept)`` over ``classes`` (category ids)."""

    classes: tuple[str, ...]
    coef: Any  # (classes x dim)
    intercept: Any  # (classes,)
    config: dict[str, Any]

    @classmethod
    def train(
        cls, vectors: Any, labels: Sequence[str], *, embedder: str, c: float = DEFAULT_C
    ) -> SupervisedHead:
        """Fit on ``vectors`` (examples x dim) labelled with category ids. One class only is a
        constant head (nothing to discriminate)."""
        import numpy as np

        vectors = np.asarray(vectors, dtype=np.float64)
        classes = sorted(set(labels))
        config = {
            "format": FORMAT,
            "kind": "logistic-regression",
            "embedder": embedder,
            "C": c,
            "examples": len(labels),
            "llmcat": _version(),
            "data": data_digest(vectors, labels, embedder, c),
        }
        if len(classes) == 1:
            dim = vectors.shape[1]
            return cls((classes[0],), np.zeros((1, dim)), np.zeros(1), config)
        try:
            from sklearn.linear_model import LogisticRegression
        except ImportError:
            raise ConfigError(
                "the supervised head needs scikit-learn: pip install 'llmcat[embed]'"
            ) from None
        model = LogisticRegression(C=c, max_iter=2000)
        with warnings.catch_warnings():
            # Few examples per category is this head's normal case, not a regression problem.
            warnings.filterwarnings("ignore", message="The number of unique classes")
            model.fit(vectors, list(labels))
        config["sklearn"] = _sklearn_version()
        coef, intercept = model.coef_, model.intercept_
        if len(classes) == 2:  # one logit for the second class; as a softmax: [0, logit]
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.concatenate([np.zeros_like(intercept), intercept])
        return cls(tuple(str(k) for k in model.classes_), coef, intercept, config)

    def predict(self, vectors: Any) -> Any:
        """Probabilities (rows x classes), in the order of ``classes``."""
        import numpy as np

        logits = np.asarray(vectors, dtype=np.float64) @ self.coef.T + self.intercept
        logits -= logits.max(axis=-1, keepdims=True)
        exps = np.exp(logits)
        return exps / exps.sum(axis=-1, keepdims=True)

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
                )
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(f"{path} is not a supervised head: {exc}") from None
        if config.get("format") != FORMAT:
            raise ConfigError(f"{path} was written by another llmcat version; retrain it")
        return head


def data_digest(vectors: Any, labels: Sequence[str], embedder: str, c: float) -> str:
    """What a head is keyed by: the training vectors, labels, embedder and ``C``."""
    import numpy as np

    blob = hashlib.sha256(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    blob.update("\n".join(labels).encode())
    blob.update(f"{embedder}|{c}|{FORMAT}".encode())
    return blob.hexdigest()[:16]


def _version() -> str:
    from . import __version__

    return __version__


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


__all__ = ["DEFAULT_C", "SupervisedHead", "data_digest"]
