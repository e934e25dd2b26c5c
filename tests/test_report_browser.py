"""The eval report in a real browser: headless Chromium (Debian's ``chromium``, installed by
``.ci/run``) opens report.html, no console error may appear, every plot must render with a
non-zero size, and a screenshot is saved under runs/ for people to look at.

By default the test builds a report from a small run (fake backend, gated against a baseline so
that the flips table shows); ``LLMCAT_TEST_REPORT`` names another report.html to check (CI sets
it to the golden run's report)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from llmcat.evals.cli import main

from .conftest import require

ROOT = Path(__file__).resolve().parents[1]
# Read at import: the autouse fixture clears LLMCAT_* variables before each test.
GIVEN = os.environ.get("LLMCAT_TEST_REPORT")
PROBE_HEAD = """<script>
window.__errors = [];
const __error = console.error.bind(console);
console.error = (...args) => { window.__errors.push(args.map(String).join(" ")); __error(...args); };
window.addEventListener("error", (e) => window.__errors.push("error: " + (e.message || (e.target && (e.target.src || e.target.href)) || "resource")), true);
</script>"""
PROBE_BODY = """<script>
const plots = [...document.querySelectorAll("figure[data-plot]")].map((f) => {
  const svg = f.querySelector("svg"); const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {name: f.dataset.plot, width: box.width, height: box.height, marks: svg ? svg.querySelectorAll("path, rect, text, use").length : 0};
});
const out = document.createElement("pre"); out.id = "__probe";
out.textContent = JSON.stringify({errors: window.__errors, plots: plots, tables: document.querySelectorAll("table").length});
document.body.appendChild(out);
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    require(found is not None, "headless Chromium (apt-get install chromium)")
    assert found is not None
    return found


def report(tmp_path: Path) -> Path:
    if GIVEN:
        return Path(GIVEN)
    common = ["run", "--suite", "golden", "--limit", "40", "--backend", "fake"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    code = main(
        [
            *common,
            "--out",
            str(tmp_path / "b"),
            "--baseline",
            str(ROOT / "evals" / "baselines" / "golden.json"),
            "--allow-template-change",
        ]
    )
    assert code in (0, 1)  # a regression against the shipped baseline is expected of a fake model
    return tmp_path / "b" / "report.html"


def run_chromium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


@pytest.mark.slow
def test_the_report_renders_in_chromium_without_errors_and_with_every_plot(tmp_path: Path) -> None:
    page = report(tmp_path)
    html = page.read_text(encoding="utf-8")
    assert "http://" not in re.sub(r'xmlns(:\w+)?="http://[^"]+"', "", html).replace(
        "http://www.w3.org", ""
    )
    probed = tmp_path / "probed.html"
    probed.write_text(
        html.replace("<head>", "<head>" + PROBE_HEAD, 1).replace(
            "</body>", PROBE_BODY + "</body>", 1
        ),
        encoding="utf-8",
    )
    dom = run_chromium(
        "--virtual-time-budget=5000", "--window-size=1400,2000", "--dump-dom", probed.as_uri()
    ).stdout
    match = re.search(r'<pre id="__probe">(.*?)</pre>', dom, re.S)
    assert match, dom[-2000:]
    probe = json.loads(
        match.group(1)
        .replace("&quot;", '"')
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
    )
    assert probe["errors"] == []
    names = {p["name"] for p in probe["plots"]}
    assert {"accuracy-per-level", "reliability", "coverage", "confusion"} <= names, names
    for plot in probe["plots"]:
        assert plot["width"] > 100 and plot["height"] > 100 and plot["marks"] > 5, plot
    assert probe["tables"] >= 3
    shot = ROOT / "runs" / ("report-golden.png" if GIVEN else "report-test.png")
    shot.parent.mkdir(exist_ok=True)
    run_chromium(
        "--window-size=1400,3000",
        "--hide-scrollbars",
        f"--screenshot={shot}",
        page.resolve().as_uri(),
    )
    assert shot.exists() and shot.stat().st_size > 10_000
