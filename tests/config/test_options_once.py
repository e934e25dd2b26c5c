"""Options are stated once: a field of ``ClassifyOptions`` / ``Settings`` is the CLI flag, the
evals flag and the scikit-learn parameter, with the field's default."""

from collections.abc import Iterator
from typing import Annotated

import pytest
from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

from llmcat.cli import build_parser as cli_parser
from llmcat.config.flags import flagged, given
from llmcat.config.options import ClassifyOptions, CopyOptions, ExtractOptions, Flag, field_names
from llmcat.config.overrides import (
    ClassifyOverrides,
    CopyOverrides,
    ExtractOverrides,
    SettingsOverrides,
)
from llmcat.config.settings import Settings
from llmcat.evals.commands import build_parser as evals_parser
from llmcat.integrations.sklearn_estimator import LLMCategoryClassifier


@pytest.fixture
def colour_space() -> Iterator[None]:
    """``ClassifyOptions`` with one more field, as a contributor would add it: one field."""
    info = FieldInfo.from_annotated_attribute(
        Annotated[int, Flag()], Field(default=3, ge=0, description="Colours to consider.")
    )
    ClassifyOptions.__pydantic_fields__["colour_space"] = info
    ClassifyOptions.model_rebuild(force=True)
    try:
        yield
    finally:
        del ClassifyOptions.__pydantic_fields__["colour_space"]
        ClassifyOptions.model_rebuild(force=True)


@pytest.mark.usefixtures("colour_space")
def test_a_new_field_is_a_cli_flag_an_evals_flag_and_an_estimator_parameter() -> None:
    args = cli_parser().parse_args(["classify", "a shoe", "--colour-space", "5"])
    assert ClassifyOptions(**given(args, ClassifyOptions)).colour_space == 5  # type: ignore[attr-defined]
    run = evals_parser().parse_args(["run", "--out", "x", "--colour-space", "7"])
    assert ClassifyOptions(**given(run, ClassifyOptions)).colour_space == 7  # type: ignore[attr-defined]
    assert evals_parser().parse_args(["run", "--out", "x"]).colour_space == 3
    estimator = LLMCategoryClassifier(colour_space=9)
    assert estimator.get_params()["colour_space"] == 9
    assert LLMCategoryClassifier().get_params()["colour_space"] == 3


def test_without_the_fixture_the_field_is_gone() -> None:
    with pytest.raises(SystemExit):
        cli_parser().parse_args(["classify", "a shoe", "--colour-space", "5"])
    with pytest.raises(TypeError, match="colour_space"):
        LLMCategoryClassifier(colour_space=9)


def _defaults(model: type[BaseModel], surface: str) -> dict[str, object]:
    return {
        name: info.get_default(call_default_factory=True)
        for name, info, _ in flagged(model, surface)  # type: ignore[arg-type]
    }


def test_estimator_defaults_are_the_fields() -> None:
    params = LLMCategoryClassifier().get_params()
    expected = {**_defaults(ClassifyOptions, "estimator"), **_defaults(Settings, "estimator")}
    assert {k: params[k] for k in expected} == expected
    assert {"strategy", "knn_k", "few_shot", "backend", "base_url", "model", "cache"} <= set(params)


def test_eval_and_cli_flags_default_to_the_fields() -> None:
    run = vars(evals_parser().parse_args(["run", "--out", "x"]))
    for model in (ClassifyOptions, Settings):
        for name, default in _defaults(model, "evals").items():
            assert run[name] == default, name
    cli = vars(cli_parser().parse_args(["classify", "a shoe"]))
    for name, default in _defaults(ClassifyOptions, "cli").items():
        assert cli[name] == default, name
    # Unflagged, a default is never sent: the model keeps its own.
    assert ClassifyOptions(**given(cli_parser().parse_args(["classify", "x"]), ClassifyOptions))


def test_override_dicts_name_every_field() -> None:
    assert set(ClassifyOverrides.__annotations__) == set(ClassifyOptions.model_fields)
    assert set(SettingsOverrides.__annotations__) == set(Settings.model_fields) - {"backend"}
    assert set(CopyOverrides.__annotations__) == set(field_names(CopyOptions))
    assert set(ExtractOverrides.__annotations__) == set(ExtractOptions.model_fields)
