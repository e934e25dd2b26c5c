"""What a classify, describe or extract run prints for people: one line per result, the spend line."""

from __future__ import annotations

from pydantic import BaseModel

from llmcat.types import Classification, Description, Extraction, Usage

#: the first line of classify's human output: the product's id (given, or its position from 1),
#: the category path and the probability of that answer
HUMAN_HEADER = "id\tcategory\tconfidence"


def human(result: BaseModel) -> str:
    if isinstance(result, Classification):
        if result.error:
            return f"{result.product_id}\terror: {result.error.type}: {result.error.message}"
        conf = f"{result.confidence:.2f}" if result.confidence is not None else "n/a"
        review = "  (needs review)" if result.needs_review else ""
        cached = "  [cached]" if result.cached else ""
        return f"{result.product_id}\t{' > '.join(result.path)}\t{conf}{review}{cached}"
    if isinstance(result, Extraction):
        if result.error:
            return f"{result.product_id}\terror: {result.error.type}: {result.error.message}"
        lines = [f"{result.product_id}\t{result.category or ''}"]
        for name, answer in result.attributes.items():
            review = "  (needs review)" if answer.needs_review else ""
            value = answer.value if answer.value is not None else "-"
            lines.append(f"  {name}: {value}\t{answer.confidence:.2f}{review}")
        return "\n".join(lines)
    assert isinstance(result, Description)
    if result.error:
        return f"{result.product_id}\terror: {result.error.type}: {result.error.message}"
    lines = [result.title, *(f"  • {b}" for b in result.bullets), "", result.body, ""]
    if result.source == "composed" and result.rejected_findings:
        why = ", ".join(sorted({f.kind for f in result.rejected_findings}))
        lines.append(f"[source: composed from the product data; the model's copy had: {why}]")
    elif result.source == "composed":
        lines.append(
            "[source: composed from the product data, no model asked (llmcat describe --explain)]"
        )
    else:
        lines.append(f"[source: model {result.model}]")
    lines += [f"  ! {f.kind}: {f.text}" for f in result.findings]
    return "\n".join(lines)


def spent_line(usage: Usage, price_in: float | None, price_out: float | None) -> str:
    """The measured figures a run ends with (the same as a dry run's)."""
    line = (
        f"prompt tokens: {usage.prompt_tokens:,}, completion tokens: "
        f"{usage.completion_tokens:,}, model calls: {usage.calls:,} (cache hits cost none)"
    )
    if price_in is not None or price_out is not None:
        line += f", cost: ${usage.cost(price_in, price_out):,.4f}"
    return line
