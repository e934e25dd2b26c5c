"""The eval report and the compare page in a real browser: headless Chromium (Debian's
``chromium``, installed by ``.ci/run``). A probe script, added to a copy of each page, uses it
as a person would and reports back through the DOM:

- no console error, no element wider than the page (also with a sample open);
- every plot renders with a non-zero size;
- the sample table sorts (a header click orders the rows; a second click reverses them),
  filters (a select keeps exactly the matching rows) and opens (a row click shows the item's
  rendered prompt).

Screenshots are saved under runs/ for people to look at. By default the test builds the pages
from small runs (fake backend; the model's copy carries an unbroken 400-digit number, the kind
that once widened the page); ``LLMCAT_TEST_REPORT`` names another report.html to check too (CI
sets it to the golden run's report)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from llmcat.backends.fake import FakeBackend
from llmcat.evals.commands import main
from llmcat.llm.completions import ChoiceConstraint, CompletionRequest
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
# Read at import: the autouse fixture clears LLMCAT_* variables before each test.
GIVEN = os.environ.get("LLMCAT_TEST_REPORT")
WIDTH = 1400
LONG_NUMBER = "15" * 200
PROBE_HEAD = """<script>
window.__errors = [];
const __error = console.error.bind(console);
console.error = (...args) => { window.__errors.push(args.map(String).join(" ")); __error(...args); };
window.addEventListener("error", (e) => window.__errors.push("error: " + (e.message || (e.target && (e.target.src || e.target.href)) || "resource")), true);
</script>"""
# Runs after the page's own scripts. Everything it finds goes into <pre id="__probe">.
PROBE_BODY = """<script>
(function () {
const probe = {errors: null, plots: [], tables: document.querySelectorAll("table").length, explorers: []};
function overflow() {
  const limit = document.documentElement.clientWidth + 1;
  const wide = [];
  document.querySelectorAll("body *").forEach((node) => {
    const box = node.getBoundingClientRect();
    if (box.width > 0 && box.right > limit) wide.push(node.tagName + "." + node.className + " right=" + Math.round(box.right));
  });
  if (document.documentElement.scrollWidth > limit) wide.push("page scrollWidth=" + document.documentElement.scrollWidth);
  return wide.slice(0, 5);
}
probe.plots = [...document.querySelectorAll("figure[data-plot]")].map((f) => {
  const svg = f.querySelector("svg"); const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {name: f.dataset.plot, width: box.width, height: box.height, marks: svg ? svg.querySelectorAll("path, rect, text, use").length : 0};
});
probe.overflow = overflow();
document.querySelectorAll("div.explorer").forEach((root) => {
  const out = {name: root.dataset.name};
  try {
  const body = root.querySelector("table.samples tbody");
  const column = (key) => [...root.querySelectorAll("table.samples th")].findIndex((th) => th.dataset.key === key);
  const cells = (key) => [...body.querySelectorAll("tr.item")].map((tr) => tr.children[column(key)].textContent);
  out.rows = body.querySelectorAll("tr.item").length;
  out.unsorted = cells("id");
  const header = root.querySelector('th[data-key="id"]');
  header.click();
  out.sorted_up = cells("id");
  header.click();
  out.sorted_down = cells("id");
  const numbers = root.querySelector('th[data-key="confidence"]');
  if (numbers) { numbers.click(); numbers.click(); }
  out.confidence_down = numbers ? cells("confidence") : [];
  // The first filter value that keeps some rows but not all; then the search box.
  out.filter = null;
  for (const select of root.querySelectorAll("select[data-filter]")) {
    for (const option of [...select.options].slice(1)) {
      select.value = option.value; select.dispatchEvent(new Event("change"));
      const shown = body.querySelectorAll("tr.item").length;
      if (!out.filter && shown > 0 && shown < out.rows) out.filter = {key: select.dataset.filter, value: option.value, results: cells(select.dataset.filter), shown: shown};
    }
    select.value = ""; select.dispatchEvent(new Event("change"));
  }
  const search = root.querySelector('input[type="search"]');
  const wanted = out.unsorted[out.unsorted.length - 1];
  search.value = wanted; search.dispatchEvent(new Event("input"));
  out.searched = {wanted: wanted, ids: cells("id")};
  search.value = ""; search.dispatchEvent(new Event("input"));
  out.after_reset = body.querySelectorAll("tr.item").length;
  // Open rows until one shows a prompt (an item the embedding settled alone has none).
  let first = null, detail = null;
  for (const tr of [...body.querySelectorAll("tr.item")].slice(0, 30)) {
    tr.click();
    detail = tr.nextElementSibling;
    first = tr;
    if (detail && detail.querySelector("pre.prompt")) break;
    tr.click();
  }
  out.opened = {
    detail: !!detail && detail.classList.contains("detail"),
    prompt: detail ? [...detail.querySelectorAll("pre.prompt")].map((p) => p.textContent).join("\\n") : "",
    titles: detail ? [...detail.querySelectorAll("h4")].map((h) => h.textContent) : [],
    product: first ? first.children[column("product")].textContent : "",
  };
  out.overflow_open = overflow();
  } catch (e) { out.failed = String(e); }
  probe.explorers.push(out);
});
probe.errors = window.__errors;
const pre = document.createElement("pre"); pre.id = "__probe";
pre.textContent = JSON.stringify(probe);
document.body.appendChild(pre);
})();
</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    require(found is not None, "headless Chromium (apt-get install chromium)")
    assert found is not None
    return found


def _answer(request: CompletionRequest) -> str:
    """A choice that follows the prompt's length (so that some items flip against run a, which
    takes the first); copy with an unbroken long number otherwise."""
    if isinstance(request.constraint, ChoiceConstraint):
        choices = request.constraint.choices
        return choices[len(request.messages[-1].content) % len(choices)]
    body = f"Sold as item {LONG_NUMBER}, a sturdy and useful product for every day at home."
    return json.dumps({"title": "A product", "bullets": ["One", "Two", "Three"], "body": body})


def pages(tmp_path: Path) -> tuple[Path, Path]:
    """A report (gated against the shipped baseline, so that flips show) and a compare page."""
    common = ["run", "--suite", "golden", "--limit", "40"]
    assert main([*common, "--backend", "fake", "--out", str(tmp_path / "a")]) == 0
    code = main(
        [
            *common,
            "--out",
            str(tmp_path / "b"),
            "--no-cache",  # run a's answers are cached under the same model name
            "--baseline",
            str(ROOT / "evals" / "baselines" / "golden.json"),
            "--allow-template-change",
        ],
        backend=FakeBackend(responder=_answer),
    )
    assert code in (0, 1)  # a regression against the shipped baseline is expected of a fake model
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) in (0, 1)
    return tmp_path / "b" / "report.html", tmp_path / "b" / "compare.html"


def run_chromium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


def probe(page: Path, tmp_path: Path) -> dict[str, Any]:
    """What the probe found in ``page``, opened in a 1400-pixel-wide window."""
    html = page.read_text(encoding="utf-8")
    # Nothing fetched from the network (SVG namespaces are names, not fetches).
    assert not re.search(r"(src|href)=\"https?:", html)
    assert "http://" not in re.sub(r'xmlns(:\w+)?="http://[^"]+"', "", html).replace(
        "http://www.w3.org", ""
    )
    probed = tmp_path / f"probed-{page.stem}.html"
    probed.write_text(
        html.replace("<head>", "<head>" + PROBE_HEAD, 1).replace(
            "</body>", PROBE_BODY + "</body>", 1
        ),
        encoding="utf-8",
    )
    dom = run_chromium(
        "--virtual-time-budget=5000", f"--window-size={WIDTH},2000", "--dump-dom", probed.as_uri()
    ).stdout
    match = re.search(r'<pre id="__probe">(.*?)</pre>', dom, re.S)
    assert match, dom[-2000:]
    found: dict[str, Any] = json.loads(
        match.group(1)
        .replace("&quot;", '"')
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
    )
    return found


def natural(text: str) -> list[Any]:
    """The page's order of ids: runs of digits by their value (g2 before g10)."""
    return [
        (0, int(t)) if t.isdigit() else (1, t.casefold()) for t in re.split(r"(\d+)", text) if t
    ]


def check_explorer(found: dict[str, Any], *, varied: bool = True) -> None:
    """The explorer sorted, filtered and opened as a person would see it (``varied``: some
    filter value keeps part of the rows; a fake model's copy cases are all alike)."""
    assert "failed" not in found, found
    rows = found["rows"]
    assert rows > 5, found
    up, down = found["sorted_up"], found["sorted_down"]
    assert up == sorted(up, key=natural) and sorted(up) == sorted(found["unsorted"]), up[:5]
    assert down == up[::-1] and down != found["unsorted"]
    confidences = [float(c) for c in found["confidence_down"] if c != "n/a"]
    assert confidences == sorted(confidences, reverse=True)
    chosen = found["filter"]
    if varied or chosen is not None:
        assert chosen is not None and 0 < chosen["shown"] < rows, found
        assert set(chosen["results"]) == {chosen["value"]}
    assert wanted_only(found["searched"]), found["searched"]
    assert found["after_reset"] == rows
    assert found["opened"]["detail"], found["opened"]
    assert found["overflow_open"] == [], found["overflow_open"]


def wanted_only(searched: dict[str, Any]) -> bool:
    return bool(searched["ids"]) and all(searched["wanted"] in i for i in searched["ids"])


def shows_a_prompt(found: dict[str, Any]) -> bool:
    """The row opened shows its rendered prompt, which names the product."""
    opened = found["opened"]
    titled = any(t.startswith("Prompt (request 1 of") for t in opened["titles"])
    return titled and bool(opened["product"]) and opened["product"] in opened["prompt"]


def screenshot(page: Path, name: str) -> None:
    shot = ROOT / "runs" / name
    shot.parent.mkdir(exist_ok=True)
    run_chromium(f"--window-size={WIDTH},3000", f"--screenshot={shot}", page.resolve().as_uri())
    assert shot.exists() and shot.stat().st_size > 10_000


@pytest.mark.slow
def test_the_report_sorts_filters_opens_a_sample_and_fits_the_page(tmp_path: Path) -> None:
    report, _ = pages(tmp_path)
    assert LONG_NUMBER in report.read_text(encoding="utf-8")  # the case that once overflowed
    for page in [report, *([Path(GIVEN)] if GIVEN else [])]:
        found = probe(page, tmp_path)
        assert found["errors"] == [] and found["overflow"] == [], found
        names = {p["name"] for p in found["plots"]}
        assert {"accuracy-per-level", "reliability", "coverage", "confusion"} <= names, names
        for plot in found["plots"]:
            assert plot["width"] > 100 and plot["height"] > 100 and plot["marks"] > 5, plot
        assert [e["name"] for e in found["explorers"]] == ["classification", "copy"]
        for explorer in found["explorers"]:
            check_explorer(explorer, varied=explorer["name"] == "classification")
        # Some item of the test's own run was asked a model (its fake model has no fits); the
        # embedded model's golden run asks none (muted LLM, copy composed by its copy fit)
        if page == report:
            assert any(shows_a_prompt(e) for e in found["explorers"]), found["explorers"]
        assert found["tables"] >= 3
    screenshot(report, "report-test.png")
    if GIVEN:
        screenshot(Path(GIVEN), "report-golden.png")


@pytest.mark.slow
def test_the_compare_page_is_a_diff_with_titles_and_a_working_explorer(tmp_path: Path) -> None:
    _, compare = pages(tmp_path)
    html = compare.read_text(encoding="utf-8")
    assert "95% interval of B - A" in html and "Right in A, wrong in B" in html
    found = probe(compare, tmp_path)
    assert found["errors"] == [] and found["overflow"] == [], found
    assert [e["name"] for e in found["explorers"]] == ["shared"]
    check_explorer(found["explorers"][0])
    assert shows_a_prompt(found["explorers"][0])
    screenshot(compare, "compare-test.png")
