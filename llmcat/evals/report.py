"""summary.md (fit for a CI job summary) and a self-contained report.html for one run."""

from __future__ import annotations

import html
import re
from typing import Any, Literal

from . import metrics as M
from .runner import outcome_of


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def trust_remark(trust: str) -> str:
    """What a reader should know about the weights: a muted model, or nothing fitted."""
    if trust.startswith("neutral"):
        return " - nothing was fitted for this model; `python -m evals fit` on this run fits it"
    if re.search(r"\bllm=0\.00\b", trust):
        return " - the LLM's fitted weight is 0: on the data it was fitted on it added nothing, so it was not asked"
    return ""


def _metric_table(
    task: Literal["classify", "describe"],
    run: tuple[str, dict[str, Any]],
    baseline: tuple[str, dict[str, Any] | None],
) -> list[str]:
    """A Markdown table of a task's metrics: the run's column, and the baseline's beside it."""
    (name, values), (base_name, base) = run, baseline
    lines = [
        f"| metric | {name} |" + (f" {base_name} |" if base else ""),
        "| --- | ---: |" + (" ---: |" if base else ""),
    ]
    for metric in M.metrics_for(task):
        if metric.name in values:
            row = f"| {metric.label} | {metric.format(values[metric.name])} |"
            if base:
                row += f" {metric.format(base.get(metric.name))} |"
            lines.append(row)
    return [*lines, ""]


def summary_markdown(run: dict[str, Any], gate_lines: list[str] | None = None) -> str:
    m, man = run["metrics"], run["manifest"]
    out = [f"## llmcat eval: `{run['suite']}`", ""]
    out.append(
        f"backend `{man['backend']}`, model `{man['model']}`, strategy `{man.get('strategy', '')}`, "
        f"commit `{(man['git'].get('commit') or '?')[:10]}`{' (dirty)' if man['git'].get('dirty') else ''}, "
        f"{man['duration_s']:.0f} s"
    )
    out.append("")
    if "accuracy" in m:
        embedding = run.get("baselines", {}).get("embedding")
        out.append("### Classification")
        out.append("")
        if m.get("trust"):
            out.append(f"Experts weighted: `{m['trust']}`{trust_remark(m['trust'])}")
            out.append("")
        out += _metric_table(
            "classify", (m.get("strategy", "llm"), m), ("embedding baseline", embedding)
        )
    if "description" in m:
        d = m["description"]
        composed = run.get("baselines", {}).get("composed")
        out.append("### Descriptions")
        out.append("")
        out.append(
            "Returned copy is the model's, or composed from the product's fields where the "
            "model's copy kept findings; the composed baseline is composed copy for every case."
        )
        out.append("")
        out += _metric_table("describe", ("returned", d), ("composed baseline", composed))
    if gate_lines:
        out.append("### Against the baseline")
        out.append("")
        out += [f"- {line}" for line in gate_lines]
        out.append("")
    return "\n".join(out)


def _copy_text(copy: dict[str, Any], findings: list[dict[str, Any]]) -> str:
    bullets = "".join(f"\n• {b}" for b in copy["bullets"])
    found = "".join(f"\n! {f['kind']}: {f['text']}" for f in findings)
    return f"{copy['title']}{bullets}\n\n{copy['body']}{found}"


def _copy_side_by_side(samples: list[dict[str, Any]], count: int = 12) -> list[str]:
    """Model copy (its findings listed) beside composed copy for the first ``count`` cases, and
    the findings of the model's copy per kind."""
    model = {s["id"]: s for s in samples if s["task"] == "describe" and not s.get("baseline")}
    composed = {s["id"]: s for s in samples if s["task"] == "describe" and s.get("baseline")}
    if not model:
        return []
    kinds: dict[str, int] = {}
    for s in model.values():
        for kind, n in s["scores"].get("model_findings", {}).items():
            kinds[kind] = kinds.get(kind, 0) + n
    rows = []
    for i in list(model)[:count]:
        out = model[i]["output"]
        if out.get("source", "model") == "model":
            shown = _copy_text(out, out["findings"])
        elif out.get("rejected_copy"):
            shown = _copy_text(out["rejected_copy"], out["rejected_findings"])
        else:
            shown = "(no usable answer)"
        rows.append(
            [
                f"{i} ({model[i].get('language', out.get('language', ''))})",
                out.get("source", "model"),
                shown,
                _copy_text(composed[i]["output"], []) if i in composed else "",
            ]
        )
    return [
        "<h2>Copy findings of the model's copy, per kind</h2>",
        _table(["kind", "findings"], [[k, v] for k, v in sorted(kinds.items())]),
        f"<h2>Model vs composed copy (first {len(rows)} cases)</h2>",
        _table(["case", "returned", "model copy", "composed copy"], rows).replace(
            "<td>", "<td style='white-space:pre-wrap;vertical-align:top'>"
        ),
    ]


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def calibration_svg(bins: list[dict[str, float]], size: int = 260) -> str:
    """A reliability diagram: accuracy per confidence bin against the diagonal."""
    pad = 30
    inner = size - 2 * pad
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" role="img" aria-label="calibration plot">',
        f'<rect x="{pad}" y="{pad}" width="{inner}" height="{inner}" fill="none" stroke="#999"/>',
        f'<line x1="{pad}" y1="{pad + inner}" x2="{pad + inner}" y2="{pad}" stroke="#bbb" stroke-dasharray="4"/>',
    ]
    for b in bins:
        x = pad + b["low"] * inner
        w = (b["high"] - b["low"]) * inner
        h = b["accuracy"] * inner
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{pad + inner - h:.1f}" width="{w - 2:.1f}" height="{h:.1f}" fill="#4a7bd0" opacity="0.8"><title>conf {b["confidence"]:.2f}, acc {b["accuracy"]:.2f}, n={b["count"]:.0f}</title></rect>'
        )
    parts.append(
        f'<text x="{size / 2}" y="{size - 6}" font-size="11" text-anchor="middle">confidence</text>'
    )
    parts.append(
        f'<text x="10" y="{size / 2}" font-size="11" transform="rotate(-90 10 {size / 2})" text-anchor="middle">accuracy</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def report_html(
    run: dict[str, Any],
    samples: list[dict[str, Any]],
    flipped: list[dict[str, Any]] | None = None,
    gate_lines: list[str] | None = None,
) -> str:
    sections = [f"<h1>llmcat eval: {html.escape(run['suite'])}</h1>"]
    sections.append("<pre>" + html.escape(summary_markdown(run, gate_lines)) + "</pre>")
    cls = [s for s in samples if s["task"] == "classify" and not s.get("baseline")]
    if cls:
        outcomes = [outcome_of(s) for s in cls]
        table = M.per_class(outcomes)
        rows = sorted(table.items(), key=lambda kv: -kv[1]["support"])[:60]
        sections.append("<h2>Per class (top 60 by support)</h2>")
        sections.append(
            _table(
                ["class", "support", "precision", "recall", "F1"],
                [[k, v["support"], v["precision"], v["recall"], v["f1"]] for k, v in rows],
            )
        )
        sections.append("<h2>Top confusions</h2>")
        sections.append(
            _table(["gold", "predicted", "count"], [list(c) for c in M.top_confusions(outcomes)])
        )
        sections.append("<h2>Accuracy per level</h2>")
        sections.append(
            _table(
                ["level", "accuracy"], [[k, v] for k, v in M.accuracy_per_level(outcomes).items()]
            )
        )
        bins = M.reliability(outcomes)
        sections.append("<h2>Calibration</h2>")
        if bins:
            sections.append(calibration_svg(bins))
            sections.append(
                _table(
                    ["coverage", "accuracy", "threshold"],
                    [
                        [r["coverage"], r["accuracy"], r["threshold"]]
                        for r in M.accuracy_vs_coverage(outcomes)
                    ],
                )
            )
        else:
            sections.append("<p>No confidences: the backend gave no logprobs.</p>")
    sections += _copy_side_by_side(samples)
    if flipped:
        sections.append("<h2>Items that flipped against the baseline</h2>")
        sections.append(
            _table(
                ["id", "gold", "baseline", "run", "now correct"],
                [
                    [
                        f["id"],
                        " > ".join(f["gold"]),
                        " > ".join(f["baseline"]),
                        " > ".join(f["run"]),
                        f["now_correct"],
                    ]
                    for f in flipped
                ],
            )
        )
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ddd;padding:4px 8px;font-size:13px;text-align:left}th{background:#f4f4f4}pre{background:#f8f8f8;padding:1em}"
    )
    return f"<!doctype html><html><head><meta charset='utf-8'><title>llmcat eval</title><style>{style}</style></head><body>{''.join(sections)}</body></html>\n"
