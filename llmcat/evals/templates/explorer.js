// The sample explorer: sort by a column (click its header), filter (the selects and the search
// box), open an item (click its row). Data: the JSON of explorer.py, one <script> per table.
// Text goes in through textContent only, so nothing an item says becomes markup.
(function () {
  "use strict";
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function cellText(value) {
    if (value === null || value === undefined) return "n/a";
    return typeof value === "number" ? value.toFixed(3) : String(value);
  }
  function table(headers, rows) {
    const t = el("table", "inner");
    const head = t.appendChild(el("thead")).appendChild(el("tr"));
    headers.forEach((h) => head.appendChild(el("th", "", h)));
    const body = t.appendChild(el("tbody"));
    rows.forEach((r) => {
      const tr = body.appendChild(el("tr"));
      r.forEach((c) => tr.appendChild(el("td", "", c)));
    });
    return t;
  }
  function block(b) {
    const box = el("div", "block");
    box.appendChild(el("h4", "", b.title));
    if (b.kind === "pairs") box.appendChild(table(["field", "value"], b.rows));
    else if (b.kind === "table") box.appendChild(table(b.headers, b.rows));
    else if (b.kind === "messages") {
      b.messages.forEach((m) => {
        const msg = box.appendChild(el("div", "message"));
        msg.appendChild(el("div", "role", m.role));
        msg.appendChild(el("pre", "prompt", m.content));
      });
    } else box.appendChild(el("pre", "", b.text));
    return box;
  }
  function build(root, data) {
    const cols = data.columns;
    const controls = root.appendChild(el("div", "controls"));
    const filters = {};
    data.filters.forEach((f) => {
      const label = controls.appendChild(el("label", "", f.label + " "));
      const select = label.appendChild(el("select"));
      select.dataset.filter = f.key;
      select.appendChild(el("option", "", "any")).value = "";
      f.options.forEach((o) => (select.appendChild(el("option", "", o)).value = o));
      select.addEventListener("change", apply);
      filters[f.key] = select;
    });
    const search = controls.appendChild(el("input"));
    search.type = "search";
    search.placeholder = "search text";
    search.addEventListener("input", apply);
    const count = controls.appendChild(el("span", "count"));
    const t = root.appendChild(el("table", "samples"));
    const headRow = t.appendChild(el("thead")).appendChild(el("tr"));
    const body = t.appendChild(el("tbody"));
    let sortKey = null, sortDir = 1;
    cols.forEach((c) => {
      const th = headRow.appendChild(el("th", c.wide ? "wide sortable" : "sortable", c.label));
      th.dataset.key = c.key;
      th.title = "click to sort";
      th.addEventListener("click", () => {
        sortDir = sortKey === c.key ? -sortDir : 1;
        sortKey = c.key;
        headRow.querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
        draw();
      });
    });
    const rows = data.rows.map((r, i) => {
      const tr = el("tr", "item");
      tr.dataset.index = String(i);
      cols.forEach((c) => tr.appendChild(el("td", (c.numeric ? "num" : "") + (c.wide ? " wide" : ""), cellText(r.cells[c.key]))));
      tr.addEventListener("click", () => toggle(tr, r));
      const words = cols.map((c) => cellText(r.cells[c.key])).join(" ").toLowerCase();
      return { tr: tr, row: r, words: words, detail: null };
    });
    function toggle(tr, r) {
      const entry = rows[Number(tr.dataset.index)];
      if (entry.detail) { entry.detail.remove(); entry.detail = null; tr.classList.remove("open"); return; }
      const detail = el("tr", "detail");
      const td = detail.appendChild(el("td"));
      td.colSpan = cols.length;
      r.detail.forEach((b) => td.appendChild(block(b)));
      tr.after(detail);
      tr.classList.add("open");
      entry.detail = detail;
    }
    function visible(entry) {
      for (const key in filters) {
        const want = filters[key].value;
        if (want && String(entry.row.cells[key]) !== want) return false;
      }
      const q = search.value.trim().toLowerCase();
      return !q || entry.words.includes(q);
    }
    function compare(a, b) {
      const x = a.row.cells[sortKey], y = b.row.cells[sortKey];
      if (x === y) return 0;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      if (typeof x === "number" && typeof y === "number") return sortDir * (x - y);
      return sortDir * String(x).localeCompare(String(y), undefined, { numeric: true });
    }
    function draw() {
      const shown = rows.filter(visible);
      if (sortKey) shown.sort(compare);
      body.replaceChildren();
      shown.forEach((e) => { body.appendChild(e.tr); if (e.detail) body.appendChild(e.detail); });
      count.textContent = shown.length + " of " + rows.length + " items";
    }
    function apply() { draw(); }
    draw();
  }
  document.querySelectorAll("div.explorer[data-source]").forEach((root) => {
    const source = document.getElementById(root.dataset.source);
    build(root, JSON.parse(source.textContent));
  });
})();
