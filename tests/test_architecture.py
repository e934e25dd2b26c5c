"""The structure ARCHITECTURE.md promises: import rules between layers, strategies added by one
file, options stated once, and the harness shipped inside the package."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

import pytest

import llmcat
import llmcat.strategies as strategies
from llmcat import Classifier, ConfigError, FakeBackend, Taxonomy
from llmcat.cli.main import build_parser
from llmcat.evals.commands import build_parser as evals_parser

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


#: the core of ARCHITECTURE.md
CORE = (
    "completions", "options", "settings", "overrides", "types", "flags", "errors", "taxonomy",
    "labels", "distributions", "calibration", "trust", "prompts", "listing", "columns",
    "grounding", "degenerate", "composed", "redact", "once", "boilerplate", "specifications",
    "copyfit", "taxonomy_names",
)  # fmt: skip
#: everything above the core and the effects
UPPER = (
    "backends", "strategies", "classify", "describe", "runner", "engine", "calls", "cache",
    "ray", "sklearn", "cli", "evals", "examples", "supervised", "serve", "embeddings", "mapping",
    "mapjudge",
)  # fmt: skip
WORKERS = (
    "llmcat.classify.classifier", "llmcat.listing.describer", "llmcat.mapping.mapper", "llmcat.mapping.judge", "llmcat.integrations.ray_data",
    "llmcat.integrations.sklearn_estimator",
)  # fmt: skip
SURFACES = ("llmcat.cli.main", "llmcat.evals")
#: what cli.py and llmcat/evals/ may import besides the package itself (ARCHITECTURE.md)
SURFACE_MAY_IMPORT = {
    *CORE,
    "classify", "describe", "mapping", "mapjudge", "known_pairs", "ray", "sklearn", "strategies", "runner",
    "inputs", "output", "review", "tables", "embeddings", "serve", "examples", "evals",
}  # fmt: skip


def test_the_core_does_not_import_upward() -> None:
    modules = imported_modules(PACKAGE)
    for name in CORE:
        names = modules[f"llmcat/{name}.py"]
        upward = [n for n in names if n.count(".") >= 1 and n.split(".")[1] in UPPER]
        assert upward == [], f"llmcat/{name}.py imports {upward}"


def test_strategies_use_the_engine_never_a_backend_worker_or_surface() -> None:
    assert offenders("strategies", "llmcat.backends") == []
    for upper in (*WORKERS, *SURFACES):
        assert offenders("strategies", upper) == [], upper


def _surface_modules() -> dict[str, set[str]]:
    modules = imported_modules(PACKAGE)
    return {
        m: n
        for m, n in modules.items()
        if m.startswith("llmcat/evals/") or m == "llmcat/cli/main.py"
    }


def test_the_surfaces_never_reach_a_concrete_backend_or_strategy() -> None:
    concrete = [
        f"{module} imports {name}"
        for module, names in _surface_modules().items()
        for name in names
        if name.startswith(("llmcat.backends", "llmcat.strategies."))
    ]
    assert concrete == []


PUBLIC = {*llmcat.__all__, "__version__"}


def test_the_surfaces_import_only_what_the_architecture_lists() -> None:
    beyond = sorted(
        f"{module} imports {name}"
        for module, names in _surface_modules().items()
        for name in names
        if name != "llmcat"
        and name.split(".")[1] not in SURFACE_MAY_IMPORT
        # ``from llmcat import X`` names X as llmcat.X: the public API, not a module
        and not (name.count(".") == 1 and name.split(".")[1] in PUBLIC)
    )
    assert beyond == []


def test_no_any_in_the_public_signatures_of_the_workers_and_eval_records() -> None:
    """``Any`` in no annotation of Classifier's or Describer's methods, of the eval record
    models' fields, or of the aliases they use."""
    targets = {
        "llmcat/classify/classifier.py": {"Classifier"},
        "llmcat/listing/describer.py": {"Describer"},
        "llmcat/batch/runner.py": {"Worker"},
        "llmcat/evals/records.py": None,  # every model of the module
    }
    found = []
    for path, classes in targets.items():
        tree = ast.parse((PACKAGE.parent / path).read_text())
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            if classes is not None and cls.name not in classes:
                continue
            for node in ast.walk(cls):
                annotations = []
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    args = node.args
                    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
                    every += [a for a in (args.vararg, args.kwarg) if a is not None]
                    annotations = [a.annotation for a in every if a.annotation is not None]
                    annotations += [node.returns] if node.returns is not None else []
                elif isinstance(node, ast.AnnAssign):
                    annotations = [node.annotation]
                for annotation in annotations:
                    if "Any" in ast.unparse(annotation):
                        found.append(f"{path} {cls.name}: {ast.unparse(annotation)}")
    aliases = {
        "llmcat/batch/runner.py": "ProductLike",
        "llmcat/learning/examples.py": "ExampleSource",
    }
    for path, alias in aliases.items():
        tree = ast.parse((PACKAGE.parent / path).read_text())
        for node in tree.body:
            if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == alias:
                assert "Any" not in ast.unparse(node.value), alias
    assert found == []


def test_the_import_reader_sees_a_real_import() -> None:
    # The rule tests above must be able to fail: the reader finds the one import this file has.
    names = imported_modules(PACKAGE / "backends")["llmcat/backends/vllm.py"]
    assert "llmcat.llm.modelfiles" in names and "llmcat.llm.completions" in names


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
    from llmcat.config.options import ClassifyOptions, CopyOptions
    from llmcat.config.settings import Settings

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
