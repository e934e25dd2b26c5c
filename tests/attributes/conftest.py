"""A small synthetic catalogue with attribute values, for the extractor's tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

BRANDS = ["Acme", "Borealis", "Contoso", "Dunmore", "Everly", "Fabrikam", "Galeon", "Hartwell"]
COLOURS = ["Red", "Black", "Navy Blue", "White", "Olive Green", "Grey"]
GENDERS = ["Men's", "Women's"]
KINDS = ["Running Shoe", "Loafer", "Sneaker", "Hiking Boot"]
SIZES = ["8 D US", "9 D US", "10 D US", "11 D US"]


def synthetic(count: int, seed: int) -> list[dict[str, object]]:
    """Shoe titles in a few layouts, with their values in the benchmark format; every
    third title has no colour, every fifth no size."""
    rng = random.Random(seed)
    rows = []
    for n in range(count):
        brand, colour = rng.choice(BRANDS), rng.choice(COLOURS)
        gender, kind, size = rng.choice(GENDERS), rng.choice(KINDS), rng.choice(SIZES)
        values = {"Brand": brand, "Gender": gender, "Shoe type": kind}
        parts = [f"{brand} {gender} {kind}"]
        if n % 3:
            parts.append(colour)
            values["Color"] = colour
        if n % 5:
            parts.append(size)
            values["Size"] = size
        title = ",".join(parts) if n % 2 else " - ".join(parts)
        rows.append(
            {
                "input": title,
                "category": "Shoes",
                "target_scores": {name: {value: 1} for name, value in values.items()},
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def shoe_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(train, test) JSONL files of the synthetic catalogue."""
    folder = tmp_path_factory.mktemp("shoes")
    return (
        write_jsonl(folder / "train.jsonl", synthetic(90, 0)),
        write_jsonl(folder / "test.jsonl", synthetic(30, 1)),
    )
