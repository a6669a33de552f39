"""Static, self-contained HTML: escaping, one stylesheet inlined, tables and embedded figures.

Everything a page needs is inside the file (CSS inline, figures as data: URIs), so a report opens from a
mail attachment or an air-gapped machine. Markup is kept XML-well-formed (every tag closed, no named
entities beyond XML's) so tests can parse it with a strict parser.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

CSS = """
:root { --fg:#1d2330; --muted:#5f6b7a; --line:#d9dee5; --head:#f3f5f8; --accent:#2b59c3; --rep:#fbf6e9; }
* { box-sizing: border-box; }
body { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; color: var(--fg);
       margin: 0; padding: 24px 32px 48px; background: #fff; line-height: 1.45; }
main { max-width: 1400px; margin: 0 auto; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 6px; }
p.meta, p.caption, .notes { color: var(--muted); font-size: 13px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 8px 0 6px; font-size: 13.5px; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { background: var(--head); text-align: right; font-weight: 600; border-bottom: 2px solid #b8c0cc; }
th.l, td.l { text-align: left; }
td { text-align: right; }
tbody tr:nth-child(even) td { background: #fafbfc; }
tr.reported td { background: var(--rep) !important; color: #6b5a2a; font-style: italic; }
tr.section td { background: #fff !important; color: var(--muted); font-size: 12px; text-transform: uppercase;
                letter-spacing: .04em; text-align: left; padding-top: 12px; border-bottom: 1px solid var(--line); }
td b { color: #000; }
.ci { color: var(--muted); font-size: 11.5px; margin-left: 4px; }
table.leaderboard .ci { display: block; margin-left: 0; font-size: 11px; line-height: 1.2; }
sup.mark { color: #b3261e; font-weight: 600; }
span.tag { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 8px; margin-left: 6px;
           background: #f1e2b8; color: #6b5a2a; font-style: normal; }
.sig { color: #0b7a3e; font-weight: 600; }
.notes li { margin: 2px 0; }
figure { margin: 14px 0 22px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.grid { display: flex; flex-wrap: wrap; gap: 18px; }
.grid figure { flex: 1 1 520px; }
nav a { color: var(--accent); margin-right: 14px; text-decoration: none; font-size: 14px; }
code { font-size: 12px; background: #f3f5f8; padding: 1px 4px; border-radius: 3px; }
.samples h3 .counts { color: var(--muted); font-size: 12.5px; font-weight: normal; margin-left: 8px; }
.filters { margin: 6px 0 10px; font-size: 13px; }
.filters button { font: inherit; font-size: 13px; margin: 0 6px 4px 0; padding: 3px 10px; cursor: pointer;
                  border: 1px solid var(--line); border-radius: 14px; background: #fff; color: var(--fg); }
.filters button.on { background: var(--accent); border-color: var(--accent); color: #fff; }
.filters button .n { opacity: .75; font-size: 11.5px; }
.filters label { margin: 0 10px 0 4px; color: var(--muted); }
.filters .count { color: var(--muted); font-size: 12px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; }
.sample { display: flex; gap: 8px; flex: 0 1 440px; min-width: 300px; padding: 8px; font-size: 13px;
          border: 1px solid var(--line); border-radius: 6px; background: #fff; }
.sample[hidden] { display: none; }
.sample[data-error="1"] { border-left: 4px solid #b3261e; }
.sample .thumb { flex: 0 0 auto; width: 96px; height: 96px; object-fit: contain; border-radius: 3px;
                 background: #f3f5f8; }
.sample .thumb.missing { display: flex; align-items: center; justify-content: center; color: var(--muted);
                         font-size: 11px; border: 1px dashed var(--line); }
.sample .body { flex: 1 1 auto; min-width: 0; }
.sample .q { font-weight: 600; overflow-wrap: anywhere; }
.sample .gold { color: var(--muted); margin: 2px 0; }
.sample table.answers { margin: 2px 0; font-size: 12.5px; width: 100%; }
.sample table.answers td { padding: 1px 6px; white-space: normal; overflow-wrap: anywhere; }
.sample table.answers td:first-child { width: 30%; }
.sample table.answers td:last-child { white-space: nowrap; overflow-wrap: normal; width: 3em; }
.sample tr.ok td { color: #0b7a3e; }
.sample tr.bad td { color: #b3261e; font-weight: 600; }
.sample tr.na td { color: var(--muted); font-style: italic; }
.sample .out { display: block; color: var(--muted); font-weight: normal; font-size: 11.5px; }
.sample .sid code { font-size: 10.5px; color: var(--muted); overflow-wrap: anywhere; }
"""

#: Filters of the samples section (inline, no external resources). Written without "<" and "&" so the page
#: stays XML-well-formed without a CDATA section.
FILTER_JS = """
(function () {
  function apply(box) {
    var f = box.getAttribute("data-on") || "all";
    var sel = box.querySelector("select[data-model]");
    var m = sel ? sel.value : "";
    var shown = 0;
    box.querySelectorAll(".sample").forEach(function (c) {
      var keep = true;
      if (f === "all") {
        keep = true;
      } else if (f === "disagree" || m === "") {
        keep = c.getAttribute("data-" + f) === "1";
      } else {
        var list = (c.getAttribute(f === "error" ? "data-wrong" : "data-confwrong") || "").split(" ");
        keep = list.indexOf(m) !== -1;
      }
      c.hidden = !keep;
      if (keep) { shown += 1; }
    });
    box.querySelector(".count").textContent = shown + " shown";
  }
  document.querySelectorAll(".samples").forEach(function (box) {
    var buttons = box.querySelectorAll("button[data-filter]");
    buttons.forEach(function (b) {
      b.addEventListener("click", function () {
        box.setAttribute("data-on", b.getAttribute("data-filter"));
        buttons.forEach(function (o) { o.classList.toggle("on", o === b); });
        apply(box);
      });
    });
    var sel = box.querySelector("select[data-model]");
    if (sel) { sel.addEventListener("change", function () { apply(box); }); }
    apply(box);
  });
})();
"""


def esc(text: object) -> str:
    return escape(str(text), quote=True)


@dataclass(frozen=True)
class HtmlCell:
    """One table cell: already-escaped inner HTML plus alignment and tag."""

    html: str
    left: bool = False
    header: bool = False
    colspan: int = 1

    def render(self) -> str:
        tag = "th" if self.header else "td"
        attrs = ' class="l"' if self.left else ""
        if self.colspan > 1:
            attrs += f' colspan="{self.colspan}"'
        return f"<{tag}{attrs}>{self.html}</{tag}>"


def text_cell(text: object, *, left: bool = False) -> HtmlCell:
    return HtmlCell(esc(text), left=left)


def table(header: Sequence[HtmlCell | str], rows: Sequence[tuple[Sequence[HtmlCell], str]],
          css_class: str = "") -> str:
    """A table; `rows` are (cells, tr class). Header strings are escaped and aligned like the first row's
    cells (left for text, right for numbers)."""
    first = next((cells for cells, _ in rows if len(cells) == len(header)), None)
    head = "".join((h if isinstance(h, HtmlCell) else
                    HtmlCell(esc(h), left=first[i].left if first else i == 0, header=True)).render()
                   for i, h in enumerate(header))
    body = []
    for cells, cls in rows:
        attr = f' class="{esc(cls)}"' if cls else ""
        body.append(f"<tr{attr}>" + "".join(c.render() for c in cells) + "</tr>")
    klass = f' class="{esc(css_class)}"' if css_class else ""
    return (f'<div class="scroll"><table{klass}><thead><tr>{head}</tr></thead><tbody>'
            + "".join(body) + "</tbody></table></div>")


def figure_svg(svg: bytes, caption: str, alt: str) -> str:
    """An SVG embedded as a data: URI image (isolated from the page's ids and styles)."""
    data = base64.b64encode(svg).decode("ascii")
    return (f'<figure><img alt="{esc(alt)}" src="data:image/svg+xml;base64,{data}"/>'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def bullet_list(items: Sequence[str], css_class: str = "notes") -> str:
    if not items:
        return ""
    return f'<ul class="{css_class}">' + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def page(title: str, body: str, script: str = "") -> str:
    """The whole document; `script` (trusted, inline) runs after the body is parsed."""
    if "<" in script or "&" in script:
        raise ValueError("inline script must not contain '<' or '&' (the page is kept XML-well-formed)")
    tail = f"<script>{script}</script>" if script else ""
    return ("<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8"/>'
            '<meta name="viewport" content="width=device-width, initial-scale=1"/>'
            f"<title>{esc(title)}</title><style>{CSS}</style></head>"
            f"<body><main>{body}</main>{tail}</body></html>\n")
