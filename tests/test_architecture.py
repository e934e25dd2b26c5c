"""The structure ARCHITECTURE.md promises: import rules between layers, strategies added by one
file, options stated once, and the harness shipped inside the package."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

import llmcat.strategies as strategies
from llmcat import Classifier, ConfigError, FakeBackend, Taxonomy
from llmcat.cli import build_parser
from llmcat.evals.cli import build_parser as evals_parser

PACKAGE = Path(__file__).resolve().parents[1] / "llmcat"


def imported_modules(folder: Path) -> dict[str, set[str]]:
    """For every module under ``folder``: the llmcat modules it imports (relative ones resolved)."""
    out: dict[str, set[str]] = {}
    for file in folder.rglob("*.py"):
        parts = list(file.relative_to(PACKAGE.parent).with_suffix("").parts)
        package = parts[:-1]  # a module's package; for __init__ the package itself
        names: set[str] = set()
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - node.level + 1]
                    target = ".".join([*base, *(node.module.split(".") if node.module else [])])
                else:
                    target = node.module or ""
                names.add(target)
                names.update(f"{target}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        out[str(file.relative_to(PACKAGE.parent))] = {n for n in names if n.startswith("llmcat")}
    return out


def offenders(folder: str, forbidden: str) -> list[str]:
    return [
        f"{module} imports {name}"
        for module, names in imported_modules(PACKAGE / folder).items()
        for name in names
        if name == forbidden or name.startswith(forbidden + ".")
    ]


def test_backends_and_serve_never_import_each_other() -> None:
    assert offenders("backends", "llmcat.serve") == []
    assert offenders("serve", "llmcat.backends") == []


def test_the_core_does_not_import_backends_strategies_or_the_workers() -> None:
    core = ["completions", "prompts", "cache", "distributions", "options", "types", "taxonomy"]
    for name in core:
        names = imported_modules(PACKAGE)[f"llmcat/{name}.py"]
        upward = [
            n
            for n in names
            if n.split(".")[1] in ("backends", "strategies", "classify", "describe")
        ]
        assert upward == [], f"llmcat/{name}.py imports {upward}"


def test_strategies_use_the_engine_not_a_concrete_backend() -> None:
    assert offenders("strategies", "llmcat.backends") == []
    assert offenders("strategies", "llmcat.classify") == []


def test_the_surfaces_never_reach_a_concrete_backend_or_strategy() -> None:
    surfaces = {m: n for m, n in imported_modules(PACKAGE).items() if m.startswith("llmcat/evals/")}
    surfaces["llmcat/cli.py"] = imported_modules(PACKAGE)["llmcat/cli.py"]
    concrete = [
        f"{module} imports {name}"
        for module, names in surfaces.items()
        for name in names
        if name.startswith(("llmcat.backends.", "llmcat.strategies."))
        and name.split(".")[2] not in ("base", "fake")
    ]
    assert concrete == []


def test_the_import_reader_sees_a_real_import() -> None:
    # The rule tests above must be able to fail: the reader finds the one import this file has.
    names = imported_modules(PACKAGE / "backends")["llmcat/backends/vllm.py"]
    assert "llmcat.modelfiles" in names and "llmcat.completions" in names


TOY = """
from llmcat.strategies import Outcome, Strategy, register


@register
class FirstLeaf(Strategy):
    name = "first-leaf"
    summary = "the first leaf, always (a toy)"

    @property
    def prompt_version(self) -> str:
        return "toy-1"

    async def run(self, product):
        first = self.context.leaves[0]
        return Outcome(category=first, distribution={first.id: 1.0}, confidence=1.0)
"""


def test_a_new_strategy_is_one_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One new module in the strategies package's search path, and nothing else registered by hand.
    (tmp_path / "first_leaf.py").write_text(TOY)
    builtin = strategies.names()  # the built-in ones are registered before the registry is copied
    monkeypatch.setattr(strategies, "__path__", [*strategies.__path__, str(tmp_path)])
    monkeypatch.setattr(strategies, "_discovered", False)
    monkeypatch.setattr(strategies, "_REGISTRY", dict(strategies._REGISTRY))
    assert strategies.names() == sorted([*builtin, "first-leaf"])
    taxonomy = Taxonomy.from_paths(["A > B", "A > C", "D"])
    clf = Classifier(taxonomy, backend=FakeBackend(), strategy="first-leaf")
    result = clf.classify("anything")
    assert result.path == ["A", "B"] and result.confidence == 1.0
    assert result.strategy == "first-leaf" and result.prompt_version == "toy-1"
    # ... and the CLI and the harness offer it.
    assert build_parser().parse_args(["classify", "x", "--strategy", "first-leaf"]).strategy
    parsed = evals_parser().parse_args(["run", "--out", "o", "--strategy", "first-leaf"])
    assert parsed.strategy == "first-leaf"
    asyncio.run(clf.aclose())


def test_unknown_strategy_names_the_registered_ones() -> None:
    with pytest.raises(ConfigError, match="embedding, flat, hierarchical, knn, shortlist"):
        Classifier(["A", "B"], backend=FakeBackend(), strategy="magic")


def test_cli_defaults_come_from_the_option_fields() -> None:
    from llmcat.options import ClassifyOptions, CopyOptions
    from llmcat.settings import Settings

    classify = build_parser().parse_args(["classify", "x"])
    for name in ("strategy", "beam", "shortlist_k", "review_threshold", "min_confidence"):
        assert getattr(classify, name) == ClassifyOptions.model_fields[name].default, name
    assert classify.timeout == Settings.model_fields["timeout"].default
    describe = build_parser().parse_args(["describe", "x"])
    for name in ("language", "tone", "style", "body_words", "bullets"):
        assert getattr(describe, name) == CopyOptions.model_fields[name].default, name


def test_unknown_and_bad_options_are_config_errors_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"unknown option.*colour"):
        Classifier(["A", "B"], backend=FakeBackend(), colour="red")
    with pytest.raises(ConfigError, match="beam"):
        Classifier(["A", "B"], backend=FakeBackend(), beam=0)
    with pytest.raises(ConfigError, match="timeout"):
        Classifier(["A", "B"], backend=FakeBackend(), timeout=-1)


def test_the_harness_data_ships_with_the_package() -> None:
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    assert '"evals/datasets" = "llmcat/evals/datasets"' in pyproject
    assert '"evals/baselines" = "llmcat/evals/baselines"' in pyproject
    from llmcat.evals.paths import baselines_dir, suites_dir

    assert (suites_dir() / "golden" / "manifest.json").is_file()
    assert (baselines_dir() / "golden.json").is_file()
