"""The structure ARCHITECTURE.md promises: packages in layers (which package may import which),
no import cycle, the size limits, strategies added by one file, options stated once, and the
harness shipped inside the package."""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path

import pytest

import llmcat.strategies as strategies
from llmcat import Classifier, ConfigError, FakeBackend, Taxonomy
from llmcat.cli import build_parser
from llmcat.evals.commands import build_parser as evals_parser

PACKAGE = Path(__file__).resolve().parents[1] / "llmcat"


def module_files() -> dict[str, Path]:
    """Every module of llmcat by dotted name (a package by its own name, for its __init__)."""
    out = {}
    for file in PACKAGE.rglob("*.py"):
        parts = list(file.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return out


MODULES = module_files()


def _module_of(name: str) -> str:
    """The module a dotted import names: itself, or the module that defines the name."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imports_of(module: str) -> set[str]:
    """The llmcat modules ``module`` imports, wherever the import is: at the top, inside a
    function, under TYPE_CHECKING. ``from a.b import c`` is ``a.b.c`` when c is a module, else
    ``a.b``; importing a module from outside its package also runs the package's __init__
    (the face, ``llmcat/__init__.py``, always runs first and is counted only where a name of
    its own is imported)."""
    file = MODULES[module]
    package = module.split(".") if file.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            # a name that is a module is that module; any other name is its module's
            targets = [
                f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target
                for alias in node.names
            ]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        for target in targets:
            if target == "llmcat" or target.startswith("llmcat."):
                found.add(_module_of(target))
    for name in list(found):
        # the packages between the root and the module run first, unless they hold ``module``
        parts = name.split(".")
        for depth in range(2, len(parts)):
            parent = ".".join(parts[:depth])
            if not module.startswith(parent + ".") and module != parent:
                found.add(parent)
    found.discard(module)
    found.discard("")
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def package_of(module: str) -> str:
    """``llmcat.io.output`` -> ``io``; ``llmcat.errors`` -> ``errors``; the face -> ``llmcat``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "llmcat"


#: llmcat's packages (and top-level modules), lowest layer first. A package may import its own
#: modules and the packages of lower layers; within a layer only the pairs in SIDEWAYS.
LAYERS = (
    ("_version", "errors", "types", "redact"),
    ("confidence", "io"),
    ("config",),
    ("taxonomy",),
    ("llm", "backends", "serve"),
    ("embeddings",),
    ("learning",),
    ("batch",),
    ("strategies",),
    ("attributes", "classify", "listing", "mapping"),
    ("integrations", "api", "cli", "evals", "__main__"),
)
#: same-layer imports that are allowed: the engine picks a backend by name and backends speak
#: the completions contract; listing copy names the attribute values a title states; the CLI
#: runs the harness, Ray and the server; the harness measures Ray
SIDEWAYS = {
    ("llm", "backends"), ("backends", "llm"), ("serve", "llm"), ("listing", "attributes"),
    ("cli", "evals"), ("cli", "integrations"), ("cli", "api"), ("evals", "integrations"),
    ("__main__", "cli"),
}  # fmt: skip
#: the packages that may import the public face ``llmcat`` (everything else imports modules)
SURFACES = {"cli", "evals", "integrations", "api", "__main__"}
LAYER = {name: n for n, layer in enumerate(LAYERS) for name in layer}


def test_every_package_has_a_layer() -> None:
    assert sorted({package_of(m) for m in MODULES} - set(LAYER) - {"llmcat"}) == []


def test_packages_import_only_lower_layers() -> None:
    wrong = []
    for module, names in GRAPH.items():
        here = package_of(module)
        for name in names:
            there = package_of(name)
            if here == "llmcat" or there == here:
                continue  # the face imports everything; a package its own modules
            if there == "llmcat":
                if here not in SURFACES:
                    wrong.append(f"{module} imports the public face llmcat")
            elif LAYER[there] > LAYER[here] or (
                LAYER[there] == LAYER[here] and (here, there) not in SIDEWAYS
            ):
                wrong.append(f"{module} ({here}) imports {name} ({there})")
    assert wrong == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_even_through_lazy_imports() -> None:
    # The face imports everything and nothing imports it back but the surfaces, which no module
    # below them imports: it is left out, as Python runs it before any submodule.
    graph = {m: {n for n in names if n != "llmcat"} for m, names in GRAPH.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    # The test above must be able to fail: a lazy import back from a to b is a cycle.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_reader_sees_lazy_and_type_checking_imports() -> None:
    names = GRAPH["llmcat.backends.vllm"]
    assert "llmcat.llm.modelfiles" in names and "llmcat.llm.completions" in names
    # a function-level import in the CLI, and a package's __init__ run by a deep import
    assert "llmcat.integrations.ray_data" in GRAPH["llmcat.cli._ray"]
    assert "llmcat.integrations" in GRAPH["llmcat.cli._ray"]


def test_backends_and_serve_never_import_each_other() -> None:
    for module, names in GRAPH.items():
        if package_of(module) in ("backends", "serve"):
            other = "serve" if package_of(module) == "backends" else "backends"
            assert not [n for n in names if package_of(n) == other], module


def test_strategies_use_the_engine_never_a_backend_worker_or_surface() -> None:
    for module, names in GRAPH.items():
        if package_of(module) == "strategies":
            reached = {package_of(n) for n in names} & {
                "attributes", "backends", "classify", "listing", "mapping", "integrations", "cli", "evals",
            }  # fmt: skip
            assert reached == set(), module


def test_the_surfaces_never_reach_a_concrete_backend_or_strategy() -> None:
    concrete = [
        f"{module} imports {name}"
        for module, names in GRAPH.items()
        if package_of(module) in ("cli", "evals")
        for name in names
        if name.startswith("llmcat.backends.") or re.match(r"llmcat\.strategies\.", name)
    ]
    assert concrete == []


#: the limits of the house (issue 42): they keep holding as capabilities land
TOP_LEVEL_FILES = 9
MODULE_LINES = 600
ANY_WORDS = 150


def test_the_house_stays_within_its_limits() -> None:
    top = sorted(f.name for f in PACKAGE.glob("*.py"))
    assert len(top) <= TOP_LEVEL_FILES, top
    long = {
        str(f.relative_to(PACKAGE.parent)): n
        for f in PACKAGE.rglob("*.py")
        if (n := len(f.read_text().splitlines())) > MODULE_LINES
    }
    assert long == {}
    anys = sum(len(re.findall(r"\bAny\b", f.read_text())) for f in PACKAGE.rglob("*.py"))
    assert anys <= ANY_WORDS


def test_every_package_says_what_it_is_and_ships_its_types() -> None:
    assert (PACKAGE / "py.typed").is_file()
    for init in PACKAGE.rglob("__init__.py"):
        assert ast.get_docstring(ast.parse(init.read_text())), init


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
        "llmcat/io/inputs.py": "ProductLike",
        "llmcat/learning/examples.py": "ExampleSource",
    }
    for path, alias in aliases.items():
        tree = ast.parse((PACKAGE.parent / path).read_text())
        for node in tree.body:
            if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == alias:
                assert "Any" not in ast.unparse(node.value), alias
    assert found == []


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
