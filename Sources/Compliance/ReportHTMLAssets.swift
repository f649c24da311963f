// The report pages' only style sheet and script, embedded so a report needs no file beside
// pcctl. Their SHA-256 hashes are in the pages' Content-Security-Policy: a change of one byte
// here needs the hashes changed too (ReportHTMLTests recomputes them from the emitted page).

enum ReportHTMLAssets {
    static let styleHash = "otLfA8wG6hOhqPPDm9eV7vqA8FBNFdAKkP4KkKa+VV0="
    static let scriptHash = "6KXDIVvR9O0wKZERsdCkJQgwDid/8TF7iheWhFF/+ZI="

    static let style = #"""
:root{--ok:#0b6b2a;--bad:#a4161a;--manual:#6e4a00;--line:#1f4e9c}
*{box-sizing:border-box}
body{font:14px/1.45 "DejaVu Sans","Liberation Sans",Arial,sans-serif;color:#111;background:#fff;max-width:1100px;margin:0 auto;padding:16px 24px}
h1{font-size:1.6em;margin:.2em 0}
h2{font-size:1.25em;border-bottom:2px solid #111;padding-bottom:.1em;margin:1.6em 0 .5em}
h3{font-size:1.05em;margin:1.2em 0 .4em}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.15em 1em;margin:.5em 0}
dl.meta dt{font-weight:bold}
dl.meta dd{margin:0}
nav ul{margin:.3em 0;padding-left:1.3em}
.overall{font-size:1.15em;margin:.6em 0}
.verdict{display:inline-block;font-weight:bold;padding:0 .4em;border:1.5px solid;border-radius:3px;white-space:nowrap;-webkit-print-color-adjust:exact;print-color-adjust:exact}
.v-s{color:var(--ok);background:#e7f5ec}
.v-ns{color:#fff;background:var(--bad);border-color:var(--bad)}
.v-m{color:var(--manual);background:#fff6d8;border-style:dashed}
table{border-collapse:collapse;width:100%;margin:.4em 0 1em}
caption{text-align:left;font-weight:bold;padding:.2em 0}
th,td{border:1px solid #999;padding:.25em .45em;text-align:left;vertical-align:top}
thead th{background:#eee;-webkit-print-color-adjust:exact;print-color-adjust:exact}
.n{text-align:right;font-variant-numeric:tabular-nums}
td.n{white-space:nowrap}
.t{white-space:nowrap;font-variant-numeric:tabular-nums}
th button{font:inherit;color:inherit;background:none;border:0;padding:0;cursor:pointer;text-align:inherit}
th button::after{content:" \2195";color:#666}
th[aria-sort=ascending] button::after{content:" \25B2";color:inherit}
th[aria-sort=descending] button::after{content:" \25BC";color:inherit}
ul.reasons{margin:.3em 0;padding-left:1.3em}
td ul{margin:0;padding-left:1.1em}
th.wide{width:45%}
.ev ul{list-style:none;padding:0;white-space:nowrap}
code{font-family:"DejaVu Sans Mono",monospace;font-size:.9em}
figure{margin:1em 0 1.6em;break-inside:avoid}
figcaption{font-weight:bold;margin-bottom:.2em}
svg.chart{width:100%;height:auto;display:block}
.chart text{font-size:12px;fill:#222}
.chart .grid{stroke:#d8d8d8;fill:none}
.chart .axis{stroke:#111;fill:none}
.chart .over{fill:#d62828;fill-opacity:.25}
.chart .mark{fill:#b00000}
.chart .conn{fill:none;stroke:var(--line);stroke-width:1.6}
.chart .limit{fill:none;stroke:#111;stroke-width:1.6;stroke-dasharray:7 4}
.chart .peak{fill:#fff;stroke:var(--line);stroke-width:1.6}
.legend{list-style:none;padding:0;margin:.2em 0 .5em;display:flex;flex-wrap:wrap;gap:.2em 1.6em;font-size:.9em}
.legend i{display:inline-block;width:2.2em;height:.9em;vertical-align:-.1em;margin-right:.4em;-webkit-print-color-adjust:exact;print-color-adjust:exact}
.lg-conn{border-bottom:2px solid var(--line);height:.55em!important}
.lg-limit{border-bottom:2px dashed #111;height:.55em!important}
.lg-over{background:rgba(214,40,40,.25)}
footer{margin-top:2em;border-top:1px solid #999;color:#333;font-size:.85em}
@page{margin:14mm 12mm}
@media print{body{font-size:9.5pt;max-width:none;padding:0}a{color:inherit;text-decoration:none}th button{display:contents}th button::after{content:none}thead{display:table-header-group}tr{break-inside:avoid}h2,h3,figcaption{break-after:avoid}nav{display:none}}

"""#

    static let script = #"""
"use strict";
for (const table of document.querySelectorAll("table.sortable")) {
  const heads = Array.from(table.tHead.rows[0].cells);
  heads.forEach((th, col) => {
    const button = document.createElement("button");
    button.type = "button";
    button.append(...th.childNodes);
    th.append(button);
    button.addEventListener("click", () => {
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      for (const other of heads) other.removeAttribute("aria-sort");
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const key = row => { const cell = row.cells[col]; return cell ? cell.dataset.sort ?? cell.textContent.trim() : ""; };
      const body = table.tBodies[0];
      const rows = Array.from(body.rows).sort((a, b) => {
        const x = key(a), y = key(b), nx = Number(x), ny = Number(y);
        const order = x !== "" && y !== "" && !isNaN(nx) && !isNaN(ny) ? (nx > ny) - (nx < ny) : x.localeCompare(y, "en");
        return ascending ? order : -order;
      });
      body.append(...rows);
    });
  });
}

"""#
}
