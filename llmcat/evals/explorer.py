"""The report's sample explorer: one row per item, sortable and filterable, and each row's detail
(the product, the rendered prompts, the answer, the alternatives, the experts' votes).

Pure: samples in, a JSON-ready ``Explorer`` out. ``templates/explorer.js`` draws it in the page
(text only through ``textContent``: nothing a product says can become markup).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypedDict

from pydantic import JsonValue

from llmcat.evals.records import ClassificationSample, DescriptionSample

ALTERNATIVES_SHOWN = 10
#: characters of a table cell, and of any field of a row's detail (a prompt, a description),
#: beyond which the report shows the start and the length
CELL_CHARS = 300
FIELD_CHARS = 8_000


class Block(TypedDict, total=False):
    """One block of a row's detail: a title, and by its kind pairs or a table (``rows``,
    ``headers``), the messages of a model request, or a text."""

    title: str
    kind: Literal["pairs", "table", "messages", "text"]
    headers: list[str]
    rows: list[list[str]]
    messages: list[dict[str, str]]
    text: str


class Row(TypedDict):
    """One item of an explorer: its cells by column key, and its detail."""

    cells: dict[str, str | float | None]
    detail: list[Block]


@dataclass
class Column:
    key: str
    label: str
    numeric: bool = False
    wide: bool = False  # free text: wraps, gets the room


@dataclass
class Filter:
    key: str
    label: str
    options: list[str]


@dataclass
class Explorer:
    """A table of items with filters; ``rows[i]["cells"]`` by column key, ``["detail"]`` blocks."""

    name: str
    title: str
    columns: list[Column]
    filters: list[Filter]
    rows: list[Row] = field(default_factory=list)

    def as_json(self) -> str:
        """The explorer as JSON that is safe inside a ``<script>`` element, long texts cut
        (``cut``): a product's 200,000-character title once filled the page three times over."""
        data = asdict(self)
        for row in data["rows"]:
            row["cells"] = {k: cut(v, CELL_CHARS) for k, v in row["cells"].items()}
            row["detail"] = cut(row["detail"], FIELD_CHARS)
        text = json.dumps(data, ensure_ascii=False, allow_nan=False)
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def cut(value: JsonValue, limit: int) -> JsonValue:
    """``value`` with every string longer than ``limit`` characters cut to its start and its
    length shown (``… [200,000 characters]``); lists and mappings cut item by item."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]}… [{len(value):,} characters]"
    if isinstance(value, list):
        return [cut(v, limit) for v in value]
    if isinstance(value, dict):
        return {k: cut(v, limit) for k, v in value.items()}
    return value


def path_text(path: Sequence[str] | None) -> str:
    return " > ".join(path) if path else "(none)"


def wrong_from(gold: Sequence[str], pred: Sequence[str] | None) -> str:
    """The first level where the answer leaves the gold path: "right" when it never does."""
    pred = list(pred or [])
    for level, name in enumerate(gold, 1):
        if level > len(pred) or pred[level - 1] != name:
            return f"level {level}"
    return "right" if len(pred) == len(gold) else f"level {len(gold) + 1}"


def product_block(product: Mapping[str, JsonValue]) -> Block:
    rows = []
    for key, value in product.items():
        if isinstance(value, Mapping):
            rows += [[f"{key}.{k}", _text(v)] for k, v in value.items()]
        else:
            rows.append([key, _text(value)])
    return {"title": "Product", "kind": "pairs", "rows": rows}


def prompt_blocks(prompts: Sequence[Sequence[Mapping[str, str]]], plan: str = "") -> list[Block]:
    """One block per model request; without any, why there was none."""
    if not prompts:
        why = (
            "the plan did not ask the LLM (its fitted weight is 0: the embedding decides)"
            if "LLM not asked" in plan
            else "an embedding-only answer, or a run from before prompts were kept"
        )
        return [{"title": "Prompt", "kind": "text", "text": f"No model request: {why}."}]
    return [
        {
            "title": f"Prompt (request {i} of {len(prompts)})",
            "kind": "messages",
            "messages": [dict(m) for m in messages],
        }
        for i, messages in enumerate(prompts, 1)
    ]


def classification_detail(sample: ClassificationSample) -> list[Block]:
    out = sample.output
    answer = [
        ["gold", path_text(sample.gold)],
        ["answer", path_text(out.path)],
        ["confidence", "n/a" if out.confidence is None else f"{out.confidence:.3f}"],
        ["needs review", "yes" if out.needs_review else "no"],
        ["strategy", out.strategy],
        ["plan", out.plan],
        ["weights", out.trust],
    ]
    if out.error is not None:
        answer.append(["error", f"{out.error.type}: {out.error.message}"])
    blocks = [product_block(sample.input), *prompt_blocks(sample.prompts, out.plan)]
    blocks.append({"title": "Answer", "kind": "pairs", "rows": [r for r in answer if r[1]]})
    alternatives = out.alternatives[:ALTERNATIVES_SHOWN]
    if alternatives:
        blocks.append(
            {
                "title": f"Alternatives (top {len(alternatives)})",
                "kind": "table",
                "headers": ["category", "probability"],
                "rows": [[path_text(a.path), f"{a.probability:.3f}"] for a in alternatives],
            }
        )
    if out.experts:
        names = sorted(out.experts)
        ranked = [a.category_id for a in alternatives if a.category_id] or sorted(
            {c for votes in out.experts.values() for c in votes}
        )[:ALTERNATIVES_SHOWN]
        blocks.append(
            {
                "title": "Experts' votes (each expert's probability per candidate)",
                "kind": "table",
                "headers": ["category", *names],
                "rows": [
                    [c, *(_probability(out.experts[n].get(c)) for n in names)] for c in ranked
                ],
            }
        )
    return blocks


def classification_explorer(
    samples: Sequence[ClassificationSample], name: str = "classification"
) -> Explorer:
    """Every classified item: product, gold, answer, confidence, where it went wrong, review."""
    levels = sorted({wrong_from(s.gold, s.output.path) for s in samples} - {"right"})
    explorer = Explorer(
        name,
        "Items (click a row to open it)",
        [
            Column("id", "id"),
            Column("product", "product", wide=True),
            Column("gold", "gold", wide=True),
            Column("answer", "answer", wide=True),
            Column("confidence", "confidence", numeric=True),
            Column("result", "result"),
            Column("wrong_from", "wrong from"),
            Column("review", "needs review"),
        ],
        [
            Filter("result", "result", ["right", "wrong"]),
            Filter("wrong_from", "wrong from", ["right", *levels]),
            Filter("review", "needs review", ["yes", "no"]),
        ],
    )
    for s in samples:
        out = s.output
        explorer.rows.append(
            {
                "cells": {
                    "id": s.id,
                    "product": _title(s.input),
                    "gold": path_text(s.gold),
                    "answer": "(error)" if out.error is not None else path_text(out.path),
                    "confidence": out.confidence,
                    "result": "right" if s.outcome().correct else "wrong",
                    "wrong_from": wrong_from(s.gold, None if out.error else out.path),
                    "review": "yes" if out.needs_review else "no",
                },
                "detail": classification_detail(s),
            }
        )
    return explorer


def description_explorer(
    samples: Sequence[DescriptionSample], composed: Mapping[str, DescriptionSample]
) -> Explorer:
    """Every copy case: product, language, what was returned, the findings; the detail shows
    the prompts, the model's copy and the composed copy."""
    explorer = Explorer(
        "copy",
        "Copy cases (click a row to open it)",
        [
            Column("id", "id"),
            Column("product", "product", wide=True),
            Column("language", "language"),
            Column("returned", "returned"),
            Column("findings", "findings of the model's copy", wide=True),
            Column("result", "result"),
        ],
        [
            Filter("result", "result", ["pass", "findings", "error"]),
            Filter("returned", "returned", ["model", "composed"]),
        ],
    )
    for s in samples:
        out = s.output
        found = s.scores.get("model_findings")
        kinds = sorted(found) if isinstance(found, dict) else []
        result = (
            "error"
            if out.error is not None
            else ("pass" if s.scores.get("model_pass") else "findings")
        )
        blocks = [product_block(s.input), *prompt_blocks(s.prompts)]
        blocks.append(_copy_block("Returned copy", out.model_dump(mode="json")))
        if out.rejected_copy is not None:
            blocks.append(_copy_block("The model's copy (replaced)", out.rejected_copy))
        shown = out.findings or out.rejected_findings
        if shown:
            blocks.append(
                {
                    "title": "Findings",
                    "kind": "table",
                    "headers": ["kind", "text"],
                    "rows": [[f.kind, f.text] for f in shown],
                }
            )
        if s.id in composed:
            blocks.append(
                _copy_block(
                    "Composed copy (baseline)", composed[s.id].output.model_dump(mode="json")
                )
            )
        explorer.rows.append(
            {
                "cells": {
                    "id": s.id,
                    "product": _title(s.input),
                    "language": s.language,
                    "returned": out.source,
                    "findings": ", ".join(k.replace("_", " ") for k in kinds),
                    "result": result,
                },
                "detail": blocks,
            }
        )
    return explorer


# Untyped values: the copy as model_dump gives it, or a rejected copy as the model wrote it.
def _copy_block(title: str, copy: Mapping[str, Any]) -> Block:
    bullets = "".join(f"\n• {b}" for b in copy.get("bullets") or [])
    return {
        "title": title,
        "kind": "text",
        "text": f"{copy.get('title', '')}{bullets}\n\n{copy.get('body', '')}",
    }


def _title(product: Mapping[str, JsonValue]) -> str:
    return str(product.get("title") or product.get("id") or "")


def _text(value: JsonValue) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _probability(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"
