"""A scikit-learn estimator around ``Classifier``: ``fit``/``predict``/``predict_proba``/``score``,
so llmcat drops into a ``Pipeline``, ``cross_val_score`` or ``GridSearchCV`` over its own options.

    from llmcat.integrations.sklearn_estimator import LLMCategoryClassifier
    clf = LLMCategoryClassifier(strategy="knn").fit(train_titles, train_labels)
    clf.predict(["Nike Air Zoom Pegasus 40"]), clf.predict_proba(...)   # columns: clf.classes_

X holds products: titles (str), dicts (``Product`` fields) or ``Product``s, or a pandas DataFrame
(one product per row; a 2-D array's rows become titles, which is what scikit-learn's own checks
send). y holds category paths ("A > B" or a single label). ``fit`` stores the labelled products as
examples (the examples learners and fitted trust use them) and, without ``labels`` or
``taxonomy``, takes the categories from y. scikit-learn is needed only here (extra ``embed`` or
``dev``).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d

from llmcat.classify.classifier import Classifier
from llmcat.config.flags import flagged
from llmcat.config.options import ClassifyOptions
from llmcat.config.settings import Settings
from llmcat.io.columns import Columns
from llmcat.taxonomy.tree import Taxonomy
from llmcat.types import Product

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from sklearn.utils import Tags

__all__ = ["LLMCategoryClassifier"]


class LLMCategoryClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """llmcat's ``Classifier`` as a scikit-learn classifier.

    ``labels`` (a list) or ``taxonomy`` (a ``Taxonomy`` or file path) fix the categories; without
    them the categories are the classes of y. The other parameters are llmcat's own options,
    with their defaults: every ``ClassifyOptions`` field (``strategy``, ``knn_k``, ``few_shot``,
    ``review_threshold``, ...) and the model's settings (``backend``, ``base_url``, ``model``,
    ``cache``), so ``GridSearchCV`` can search them; they are read from the fields marked for the
    estimator (``llmcat.config.options.Flag``), never restated here. ``use_examples=False`` ignores y
    apart from the classes (zero-shot).
    """

    def __init__(
        self,
        labels: Sequence[str] | None = None,
        taxonomy: Taxonomy | str | Path | None = None,
        *,
        use_examples: bool = True,
        **options: object,
    ) -> None:
        known = _option_defaults()
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unexpected parameter(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        self.labels = labels
        self.taxonomy = taxonomy
        self.use_examples = use_examples
        for name, default in known.items():
            setattr(self, name, options.get(name, default))

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """scikit-learn's parameters: ``labels``, ``taxonomy``, ``use_examples`` and every
        option field marked for the estimator (read now, so a new field is a new parameter)."""
        return sorted(["labels", "taxonomy", "use_examples", *_option_defaults()])

    # -- scikit-learn API ------------------------------------------------------------------------

    def fit(self, X: Any, y: ArrayLike) -> LLMCategoryClassifier:
        """Store the labelled products (as examples) and build the classifier."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        products = _products(X)
        targets = column_or_1d(np.asarray(y, dtype=object if _is_text(y) else None), warn=True)
        check_classification_targets(targets)
        if len(products) != len(targets):
            raise ValueError(f"X has {len(products)} products but y has {len(targets)} labels")
        names = [_name(v) for v in targets]
        tree = self._taxonomy(names)
        if self._fixed():
            self.classes_ = np.array(sorted(c.path_text for c in tree.leaves()), dtype=object)
        else:
            self.classes_ = np.unique(targets)
            if len(self.classes_) < 2:
                raise ValueError("y has one class only; a classifier needs at least two")
        if _width(X) is not None:  # an array's rows: predict must get as many columns
            self.n_features_in_ = _width(X)
        self.fit_products_ = products
        self.fit_names_ = names
        self.classifier_ = self._build(tree)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The class of every product (the values of y); an item that failed gets the most
        probable class of ``predict_proba`` (uniform: the first class)."""
        proba = self.predict_proba(X)
        picked: np.ndarray = np.asarray(self.classes_)[np.argmax(proba, axis=1)]
        return picked

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities over ``classes_`` (rows sum to 1): the classifier's distribution over its
        alternatives, the chosen category's confidence otherwise, uniform for a failed item."""
        check_is_fitted(self, "classifier_")
        products = _products(X)
        width = getattr(self, "n_features_in_", None)
        if width is not None and _width(X) is not None and _width(X) != width:
            raise ValueError(
                f"X has {_width(X)} features, but {type(self).__name__} is expecting "
                f"{width} features as input"
            )
        results = self.classifier_.classify_many(products, progress=False)
        index = {_name(c): i for i, c in enumerate(self.classes_)}
        out = np.zeros((len(results), len(self.classes_)))
        for row, result in zip(out, results, strict=True):
            for alternative in result.alternatives:
                column = index.get(" > ".join(alternative.path))
                if column is not None:
                    row[column] += alternative.probability
            chosen = index.get(" > ".join(result.path)) if result.ok else None
            if chosen is not None and row.sum() == 0:
                row[chosen] = 1.0 if result.confidence is None else result.confidence
            total = row.sum()
            if total <= 0:
                row[:] = 1.0 / len(row)
            else:
                row /= total
        return out

    def __getstate__(self) -> dict[str, object]:
        # The classifier holds locks and connections: a pickle keeps what rebuilds it.
        state = dict(self.__dict__)
        state.pop("classifier_", None)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        if "fit_names_" in state:
            self.classifier_ = self._build(self._taxonomy(self.fit_names_))

    def _build(self, tree: Taxonomy) -> Classifier:
        examples = (
            [(p, n.split(" > ")) for p, n in zip(self.fit_products_, self.fit_names_, strict=True)]
            if self.use_examples
            else None
        )
        settings = Settings(**self._changed(Settings), progress=False)
        options = ClassifyOptions.model_validate(self._values(ClassifyOptions))
        return Classifier(tree, options, settings=settings, examples=examples)

    def _values(self, model: type[BaseModel]) -> dict[str, object]:
        """This estimator's parameters that are fields of ``model``."""
        return {name: getattr(self, name) for name, _, _ in flagged(model, "estimator")}

    def _changed(self, model: type[BaseModel]) -> dict[str, object]:
        """The parameters set away from their defaults: a default one leaves the field to the
        environment (``LLMCAT_BASE_URL`` ...), as a flag left out does on the command line."""
        fields = model.model_fields
        return {
            name: value
            for name, value in self._values(model).items()
            if value != fields[name].get_default(call_default_factory=True)
        }

    # -- helpers ---------------------------------------------------------------------------------

    def _fixed(self) -> bool:
        return self.labels is not None or self.taxonomy is not None

    def _taxonomy(self, targets: list[str]) -> Taxonomy:
        if self.taxonomy is not None:
            if isinstance(self.taxonomy, Taxonomy):
                return self.taxonomy
            return Taxonomy.from_file(self.taxonomy)
        names = list(self.labels) if self.labels is not None else sorted(set(targets))
        if any(" > " in n for n in names):
            return Taxonomy.from_paths(names)
        return Taxonomy.from_labels(names)

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.dict = True
        tags.non_deterministic = False
        return tags


def _option_defaults() -> dict[str, object]:
    """Every option field marked for the estimator -> its default."""
    return {
        name: info.get_default(call_default_factory=True)
        for model in (ClassifyOptions, Settings)
        for name, info, _ in flagged(model, "estimator")
    }


def _signature() -> inspect.Signature:
    """``__init__``'s signature with every parameter spelled out, for ``help()`` and IDEs."""
    kw = inspect.Parameter.KEYWORD_ONLY
    params = [
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("labels", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
        inspect.Parameter("taxonomy", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
        inspect.Parameter("use_examples", kw, default=True),
        *(inspect.Parameter(n, kw, default=d) for n, d in _option_defaults().items()),
    ]
    return inspect.Signature(params)


LLMCategoryClassifier.__init__.__signature__ = _signature()  # type: ignore[attr-defined]


# X (and y) are whatever scikit-learn's users pass: lists, arrays, pandas frames and series, read
# by duck typing below, as scikit-learn's own checks do.


def _is_frame(values: Any) -> bool:
    return type(values).__module__.startswith("pandas") and hasattr(values, "columns")


def _is_text(values: Any) -> bool:
    """True for a list of products (str, dict, Product), a DataFrame with a title column, or a
    pandas Series of titles."""
    if _is_frame(values):
        return "title" in values.columns
    if isinstance(values, (list, tuple)) or (hasattr(values, "dtype") and values.dtype == object):
        items = list(values)
        return bool(items) and all(isinstance(v, (str, dict, Product)) for v in items)
    return False


def _products(X: Any) -> list[Product | str | dict[str, object]]:
    """One product per row of X: strings, dicts, Products, a DataFrame, or the rows of a 2-D
    array (checked as scikit-learn checks arrays) as titles."""
    if _is_frame(X) and "title" in X.columns:  # products, one per row: columns as the CLI's
        return [Columns().select(row) for row in X.to_dict(orient="records")]
    if _is_text(X):
        return list(X)
    array = check_array(X, dtype=None, accept_sparse=False)
    return [" ".join(str(v) for v in row) for row in array.tolist()]


def _name(value: object) -> str:
    """A class of y as a category name or path."""
    return " > ".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


def _width(X: Any) -> int | None:
    """Columns of a 2-D array (not of a DataFrame of products); None for a list of products."""
    shape = getattr(X, "shape", None)
    if (_is_frame(X) and "title" in X.columns) or shape is None or len(shape) != 2:
        return None
    return int(shape[1])
