"""A results CSV a person reads in a spreadsheet: the input's id and title beside the answer,
paths and alternatives as text, no JSON blobs; it still resumes (issue 40)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from llmcat.cli import main


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_classify_csv_opens_with_the_product_and_its_answer(tmp_path: Path) -> None:
    src, out, jsonl = tmp_path / "p.csv", tmp_path / "out.csv", tmp_path / "out.jsonl"
    src.write_text("id,title,gold\nA1,Oak dining table,Furniture\nA2,Red running shoe,Shoes\n")
    tax = tmp_path / "tax.txt"
    tax.write_text("Home > Furniture > Tables\nApparel > Shoes\n")
    argv = ["classify", "--input", str(src), "--taxonomy", str(tax), "--backend", "fake"]
    assert main([*argv, "--strategy", "flat", "--output", str(out), "--no-progress"]) == 0
    table = rows(out)
    header = list(table[0])
    assert header[:6] == [
        "product_id",
        "title",
        "path",
        "confidence",
        "needs_review",
        "alternatives",
    ]
    assert not {"experts", "usage"} & set(header)  # blobs stay in JSONL and Parquet
    assert [r["title"] for r in table] == ["Oak dining table", "Red running shoe"]
    assert " > " in table[0]["path"] and not table[0]["path"].startswith("[")
    # JSONL keeps every field, the input's title beside the id
    assert main([*argv, "--strategy", "flat", "--output", str(jsonl), "--no-progress"]) == 0
    first = json.loads(jsonl.read_text().splitlines()[0])
    assert list(first)[:2] == ["product_id", "title"] and "usage" in first


def test_a_finished_csv_output_resumes(tmp_path: Path) -> None:
    src, out = tmp_path / "p.csv", tmp_path / "out.csv"
    src.write_text("title\nOak table\nRed shoe\n")
    argv = ["classify", "--input", str(src), "--labels", "Furniture,Shoes", "--backend", "fake"]
    argv += ["--strategy", "flat", "--output", str(out), "--no-progress"]
    assert main(argv) == 0
    before = out.read_text()
    assert main([*argv, "--resume"]) == 0
    assert out.read_text() == before


def test_describe_csv_has_one_bullet_per_line_of_its_cell(tmp_path: Path) -> None:
    src, out = tmp_path / "p.jsonl", tmp_path / "copy.csv"
    src.write_text(
        json.dumps(
            {
                "id": "s1",
                "title": "Steel bottle",
                "attributes": {"Material": "Steel", "Capacity": "750 ml", "Colour": "Silver"},
                "description": "Keeps water cold for a day.",
            }
        )
        + "\n"
    )
    assert main(["describe", "--input", str(src), "--output", str(out), "--no-progress"]) == 0
    row = rows(out)[0]
    assert list(row)[:4] == ["product_id", "title", "bullets", "body"]
    assert len(row["bullets"].splitlines()) >= 2 and "rejected_copy" not in row


def test_results_csv_cells_are_never_live_formulas_and_resume_reads_them_back(
    tmp_path: Path,
) -> None:
    """Issue 41: the review CSV was protected, the results CSVs (classify, describe, map)
    were not: a title or label starting with =, +, -, @ stayed a live formula."""
    src, out = tmp_path / "p.jsonl", tmp_path / "out.csv"
    titles = ['=HYPERLINK("http://x.invalid","x")', "@SUM(1+1)", "-2+3 drill", "+cmd table"]
    src.write_text(
        "".join(json.dumps({"id": f"-{i}", "title": t}) + "\n" for i, t in enumerate(titles))
    )
    argv = ["classify", "--input", str(src), "--labels", "=Tools,@Furniture", "--backend", "fake"]
    argv += ["--strategy", "flat", "--output", str(out), "--no-progress"]
    assert main(argv) == 0
    with out.open(encoding="utf-8", newline="") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))] == []
    assert {r["title"] for r in rows(out)} == {"'" + t for t in titles}
    before = out.read_text()
    assert main([*argv, "--resume"]) == 0  # read back as the texts they were, and checked
    assert out.read_text() == before
