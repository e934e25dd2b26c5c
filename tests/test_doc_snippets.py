"""Every code block of the README and docs/ runs as written, on the fake backend, in a folder
holding a copy of examples/.

A ``bash`` block runs line by line (a command fails the block); a ``python`` block runs in one
namespace shared by the blocks of its file, in order, as a reader would paste them. A block whose
first line is ``# needs: ...`` (a GPU, a server, an API key, minutes of the embedded model) is
skipped and counted; ``text`` blocks are output, not code. The quick start's install and test
commands are not run here (this test is part of them); the rest of its first command is.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import SHARED

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NEEDS = re.compile(r"^#\s*needs:\s*(.+)$")
#: steps of the quick start's commands that install or test, not use
SETUP = ("python3 -m venv", ". .venv/bin/activate", "pip install", "python -m pytest")


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    language: str
    code: str

    @property
    def needs(self) -> str | None:
        first = self.code.lstrip("\n").splitlines()[0] if self.code.strip() else ""
        found = NEEDS.match(first.strip())
        return found.group(1) if found else None

    def where(self) -> str:
        inside = self.document.is_relative_to(ROOT)
        return f"{self.document.relative_to(ROOT) if inside else self.document.name}:{self.line}"


def blocks(document: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, with the line each starts on."""
    found, language, start, lines = [], None, 0, []
    for n, line in enumerate(document.read_text(encoding="utf-8").splitlines(), 1):
        fence = re.match(r"^\s*```(\w*)\s*$", line)
        if fence and language is None:
            language, start, lines = fence.group(1) or "text", n, []
        elif fence:
            # A block inside a list item is indented with it.
            found.append(Block(document, start, language, textwrap.dedent("\n".join(lines)) + "\n"))
            language = None
        elif language is not None:
            lines.append(line)
    return found


def commands(block: Block) -> list[str]:
    """The commands of a bash block: one per line (``\\`` continues), setup steps left out."""
    joined = block.code.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        steps = [s.strip() for s in line.split(" && ")]
        kept = [s for s in steps if not s.startswith(SETUP)]
        if kept:
            out.append(" && ".join(kept))
    return out


def taxonomies(tmp: Path) -> Path:
    """Where ``--taxonomy google`` is found, as if fetched: the shared folder's official files,
    else a stand-in of Google's format (the snippets run on the fake backend anyway)."""
    shared = SHARED / "taxonomies"
    if shared.is_dir():
        return shared
    (tmp / "taxonomies").mkdir(exist_ok=True)
    (tmp / "taxonomies" / "google.txt").write_text(
        "# Google_Product_Taxonomy_Version: 2021-09-21\n1 - Apparel & Accessories\n"
        "2 - Apparel & Accessories > Shoes\n3 - Electronics\n4 - Home & Garden\n",
        encoding="utf-8",
    )
    return tmp / "taxonomies"


def sandbox(tmp: Path) -> dict[str, str]:
    """A folder with examples/ copied in, and the environment the snippets run with."""
    shutil.copytree(ROOT / "examples", tmp / "examples")
    env = dict(os.environ)
    env.update(
        LLMCAT_BACKEND="fake",
        LLMCAT_CACHE_DIR=str(tmp / "cache"),
        LLMCAT_TAXONOMY_DIR=str(taxonomies(tmp)),
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    return env


def run_bash(block: Block, cwd: Path, env: dict[str, str]) -> None:
    for command in commands(block):
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"{block.where()}: `{command}` exited {done.returncode}\n"
                f"{done.stderr[-2000:]}{done.stdout[-1000:]}"
            )


def run_python(block: Block, namespace: dict[str, object]) -> None:
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(block.code, block.where(), "exec"), namespace)
    except Exception as exc:
        raise AssertionError(f"{block.where()}: {type(exc).__name__}: {exc}") from exc


def run_document(document: Path, tmp: Path) -> tuple[int, list[str]]:
    """Run every block of ``document``; the number run and the ``needs`` of those skipped."""
    env = sandbox(tmp)
    ran, skipped = 0, []
    namespace: dict[str, object] = {"__name__": "__snippet__"}
    saved = {
        k: os.environ.get(k) for k in ("LLMCAT_BACKEND", "LLMCAT_CACHE_DIR", "LLMCAT_TAXONOMY_DIR")
    }
    cwd = Path.cwd()
    os.environ.update({k: env[k] for k in saved})
    os.chdir(tmp)
    try:
        for block in blocks(document):
            if block.language not in ("bash", "sh", "python"):
                continue
            if block.needs is not None:
                skipped.append(f"{block.where()}: {block.needs}")
                continue
            if block.language == "python":
                run_python(block, namespace)
            else:
                run_bash(block, tmp, env)
            ran += 1
    finally:
        os.chdir(cwd)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return ran, skipped


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_snippet_runs_as_written(document: Path, tmp_path: Path) -> None:
    ran, skipped = run_document(document, tmp_path)
    runnable = [b for b in blocks(document) if b.language in ("bash", "sh", "python")]
    assert ran + len(skipped) == len(runnable)
    for line in skipped:
        print(f"skipped (needs {line})")


def test_the_docs_have_snippets_and_few_are_skipped() -> None:
    every = [b for d in DOCUMENTS for b in blocks(d) if b.language in ("bash", "sh", "python")]
    skipped = [b for b in every if b.needs is not None]
    assert len(every) >= 20, "the docs lost their examples"
    # Each skipped block says what it needs, in words a reader sees.
    assert all(len(b.needs or "") > 5 for b in skipped)
    assert len(skipped) <= len(every) // 2, [b.where() for b in skipped]


def test_a_broken_snippet_fails(tmp_path: Path) -> None:
    """The runner is not a formality: a snippet that breaks is a failure naming its line."""
    page = tmp_path / "page.md"
    page.write_text(
        "# A page\n\n```python\nfrom llmcat import Taxonomy\n"
        "Taxonomy.from_file('examples/no-such-file.txt')\n```\n",
        encoding="utf-8",
    )
    with pytest.raises(AssertionError, match=r"page.md:3: TaxonomyError"):
        run_document(page, tmp_path / "run")
    shell = tmp_path / "shell.md"
    shell.write_text("```bash\nllmcat classify --strategy nope x --labels a,b\n```\n")
    with pytest.raises(AssertionError, match=r"shell.md:1: `llmcat classify"):
        run_document(shell, tmp_path / "run2")
    quoted = shlex.join(["llmcat", "classify", "x", "--labels", "a,b"])
    fine = tmp_path / "fine.md"
    fine.write_text(f"```bash\n{quoted}\n```\n\n```bash\n# needs: a GPU\nnvidia-smi\n```\n")
    assert run_document(fine, tmp_path / "run3") == (1, [f"{fine.name}:5: a GPU"])
