"""``cnnscope report``: the report dict (``cnnscope.analysis.report_data``) as one self-contained HTML
page, as single SVG charts, or as Markdown that links the charts.

Self-contained means no network: inline CSS, inline SVG drawn here, a few lines of inline JavaScript
(sorting and filtering the table). Nothing is computed here but the layout: every number comes from
the report dict. Charts are ``<svg role="img">`` with a ``<title>`` and a text table fallback in the
page (the layer table), so screen readers get the numbers; the table's sort controls are buttons
(keyboard-reachable) that set ``aria-sort``.
"""
from __future__ import annotations

import html
import json
from typing import Any, Callable

from ..units import human_bytes, human_count

WIDTH, BAR_H, PAD_L, PAD_R = 720, 22, 170, 130
COLOURS = {"macs": "#3b6fd8", "params": "#d8793b", "channels": "#2f9e6b", "spatial": "#8a4fd1", "rf": "#c23b6b",
           "jump": "#777777", "memory": "#2b8fb3", "a": "#9aa5b1", "b": "#3b6fd8",
           "compute": "#3b6fd8", "memory-bound": "#d8793b"}

CHARTS: dict[str, Callable[[dict], str | None]] = {}


def chart(name: str):
    def deco(fn):
        CHARTS[name] = fn
        return fn
    return deco


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _svg(name: str, title: str, height: int, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" id="svg-{name}" role="img" '
            f'aria-labelledby="svg-{name}-title" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
            f'preserveAspectRatio="xMinYMin meet" font-family="system-ui, sans-serif" font-size="12">'
            f'<title id="svg-{name}-title">{esc(title)}</title>'
            f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>'
            f'<text x="8" y="18" font-size="14" font-weight="600" fill="#222">{esc(title)}</text>' + "".join(body) + "</svg>")


def _bars(name: str, title: str, rows: list[tuple[str, float, str]], colour: str,
          colours: list[str] | None = None) -> str | None:
    """Horizontal bars: (label, value, text at the bar's end); ``colours``: one per bar instead."""
    if not rows:
        return None
    top = max(v for _, v, _ in rows) or 1
    span = WIDTH - PAD_L - PAD_R
    body = []
    for i, (label, value, text) in enumerate(rows):
        y = 30 + i * BAR_H
        w = max(1.0, span * value / top) if value else 0.0
        body.append(f'<text x="{PAD_L - 6}" y="{y + 15}" text-anchor="end" fill="#333">{esc(label[:28])}</text>')
        fill = colours[i] if colours else colour
        body.append(f'<rect class="bar" x="{PAD_L}" y="{y + 3}" width="{w:.1f}" height="{BAR_H - 6}" fill="{fill}">'
                    f'<title>{esc(label)}: {esc(text)}</title></rect>')
        body.append(f'<text x="{PAD_L + w + 4:.1f}" y="{y + 15}" fill="#333">{esc(text)}</text>')
    return _svg(name, title, 40 + len(rows) * BAR_H, body)


def _lines(name: str, title: str, labels: list[str], series: list[tuple[str, list[float | None], str]],
           marker: int | None = None, marker_text: str = "", log: bool = False) -> str | None:
    """A line per series over the leaf layers in forward order; ``marker``: index of a vertical rule."""
    import math

    values = [v for _, vs, _ in series for v in vs if v is not None]
    if not labels or not values:
        return None
    height, bottom, left, right = 260, 40, 60, 20
    top = 30 + 16 * len(series)          # the legend sits above the plot
    lo, hi = (min(values), max(values))
    if log:
        lo, hi = math.log10(max(lo, 1)), math.log10(max(hi, 1))
    hi = hi if hi > lo else lo + 1
    n = len(labels)

    def xy(i, v):
        x = left + (WIDTH - left - right) * (i / (n - 1) if n > 1 else 0.5)
        vv = math.log10(max(v, 1)) if log else v
        y = top + (height - top - bottom) * (1 - (vv - lo) / (hi - lo))
        return x, y

    body = [f'<line x1="{left}" y1="{height - bottom}" x2="{WIDTH - right}" y2="{height - bottom}" stroke="#999"/>',
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#999"/>']
    for frac in (0.0, 0.5, 1.0):
        vv = lo + frac * (hi - lo)
        v = 10 ** vv if log else vv
        y = top + (height - top - bottom) * (1 - frac)
        body.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{esc(human_count(round(v)))}</text>')
    body.append(f'<text x="{left}" y="{height - 22}" fill="#555">{esc(labels[0][:24])}</text>')
    body.append(f'<text x="{WIDTH - right}" y="{height - 22}" text-anchor="end" fill="#555">{esc(labels[-1][:24])}</text>')
    body.append(f'<text x="{(WIDTH + left) / 2:.0f}" y="{height - 6}" text-anchor="middle" fill="#555">'
                f'layers in forward order ({n})</text>')
    if marker is not None:
        x, _ = xy(marker, values[0])
        body.append(f'<line class="marker" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - bottom}" stroke="#c23b6b" '
                    f'stroke-dasharray="4 3"/><text x="{x - 4:.1f}" y="{height - bottom - 6}" text-anchor="end" '
                    f'fill="#c23b6b">{esc(marker_text)}</text>')
    for k, (label, vs, colour) in enumerate(series):
        pts = [xy(i, v) for i, v in enumerate(vs) if v is not None]
        if not pts:
            continue
        body.append(f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="2" points="'
                    + " ".join(f"{x:.1f},{y:.1f}" for x, y in pts) + f'"><title>{esc(label)}</title></polyline>')
        body.append(f'<rect x="{left}" y="{26 + 16 * k}" width="10" height="10" fill="{colour}"/>'
                    f'<text x="{left + 15}" y="{35 + 16 * k}" fill="#333">{esc(label)}</text>')
    return _svg(name, title, height, body)


@chart("macs")
def macs_by_stage(d: dict) -> str | None:
    return _bars("macs", "MACs by stage (1 MAC = one multiply-accumulate)",
                 [(s["name"], s["macs"], f"{human_count(s['macs'])} ({100 * s['macs_share']:.1f}%)") for s in d["stages"]],
                 COLOURS["macs"])


@chart("params")
def params_by_stage(d: dict) -> str | None:
    return _bars("params", "Parameters by stage",
                 [(s["name"], s["params"], f"{human_count(s['params'])} ({100 * s['params_share']:.1f}%)")
                  for s in d["stages"]], COLOURS["params"])


@chart("biggest")
def biggest_layers(d: dict) -> str | None:
    return _bars("biggest", f"The {len(d['biggest'])} layers with the most MACs (share of the model's)",
                 [(b["name"], b["macs"], f"{human_count(b['macs'])} ({100 * b['share']:.1f}%)") for b in d["biggest"]],
                 COLOURS["macs"])


@chart("latency")
def slowest_layers(d: dict) -> str | None:
    lat = d.get("latency")
    if not lat:
        return None
    rows = lat["slowest"]
    return _bars("latency", f"Measured: the {len(rows)} slowest layers ({lat['runtime']}, "
                            f"{lat['total']['median_ms']:.2f} ms per forward)",
                 [(r["name"], r["median_ms"], f"{r['median_ms']:.3f} ms ({100 * r['share']:.1f}%, {r['bound'] or '-'})")
                  for r in rows], COLOURS["compute"],
                 [COLOURS["memory-bound"] if r["bound"] == "memory" else COLOURS["compute"] for r in rows])


def _marker(d: dict) -> tuple[int | None, str]:
    names = [p["name"] for p in d["depth"]]
    if d["covers_at"] in names:
        return names.index(d["covers_at"]), f"RF covers the input at {d['covers_at']}"
    return None, ""


@chart("shape")
def feature_maps(d: dict) -> str | None:
    pts = d["depth"]
    marker, text = _marker(d)
    return _lines("shape", "Feature-map size and channels along the depth (log scale)", [p["name"] for p in pts],
                  [("channels", [p["channels"] for p in pts], COLOURS["channels"]),
                   ("spatial size (largest side, px)", [max(p["spatial"]) if p["spatial"] else None for p in pts],
                    COLOURS["spatial"])], marker, text, log=True)


@chart("rf")
def receptive_field(d: dict) -> str | None:
    pts = d["depth"]
    marker, text = _marker(d)
    return _lines("rf", "Receptive field along the depth (input pixels, log scale)", [p["name"] for p in pts],
                  [("RF size", [p["rf"] for p in pts], COLOURS["rf"]),
                   ("jump (stride in input pixels)", [p["jump"] for p in pts], COLOURS["jump"])], marker, text, log=True)


@chart("memory")
def live_memory(d: dict) -> str | None:
    m = d["memory"]
    if not m:
        return None
    return _lines("memory", f"Live activation memory while each layer runs (peak {human_bytes(m['peak_activation_bytes'])})",
                  [r["name"] for r in m["live"]], [("live bytes", [r["live_bytes"] for r in m["live"]], COLOURS["memory"])])


def render_chart(d: dict, name: str) -> str:
    """One chart as a standalone SVG document (``--format svg``)."""
    from ..errors import CnnscopeError

    if name not in CHARTS:
        raise CnnscopeError(f"unknown chart '{name}'; choose {', '.join(CHARTS)}")
    svg = CHARTS[name](d)
    if svg is None:
        raise CnnscopeError(f"this model has no data for the '{name}' chart (e.g. no spatial layers, or no memory "
                            f"figures); choose another of {', '.join(CHARTS)}")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + svg + "\n"


# ------------------------------------------------------------------------------------------ page

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d1d1f; background: #f6f7f9; }
main { max-width: 1180px; margin: 0 auto; padding: 16px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 17px; margin: 24px 0 8px; }
.totals { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); gap: 8px; }
.card { background: #fff; border: 1px solid #dde1e6; border-radius: 8px; padding: 8px 12px; }
.card .k { color: #555; font-size: 12px; } .card .v { font-size: 18px; font-weight: 600; }
.card .n { color: #555; font-size: 12px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 560px), 1fr)); gap: 12px; }
figure { margin: 0; background: #fff; border: 1px solid #dde1e6; border-radius: 8px; padding: 6px; overflow: hidden; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { color: #555; font-size: 12px; padding: 4px 6px; }
.tablewrap { overflow-x: auto; background: #fff; border: 1px solid #dde1e6; border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
caption { text-align: left; padding: 8px; color: #555; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eef0f3; white-space: nowrap; text-align: right; }
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
th button { font: inherit; font-weight: 600; background: none; border: 0; cursor: pointer; padding: 2px; color: #1d1d1f; }
th button:focus-visible, input:focus-visible { outline: 2px solid #3b6fd8; }
tr.changed td { background: #fff4d6; } tr.only td { background: #fde8e8; }
.filter { margin: 8px 0; } .filter input { font: inherit; padding: 4px 8px; width: min(320px, 90%); }
.note { color: #555; font-size: 12px; }
ol.history li { margin: 2px 0; }
@media (max-width: 600px) { main { padding: 8px; } h1 { font-size: 18px; } .card .v { font-size: 16px; } }
"""

JS = """
(function () {
  const table = document.getElementById('layers');
  if (table) {
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    table.querySelectorAll('th button').forEach(function (btn) {
      btn.addEventListener('click', function () {
        const col = +btn.dataset.col, th = btn.parentElement;
        const dir = th.getAttribute('aria-sort') === 'descending' ? 'ascending' : 'descending';
        table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', dir);
        const key = function (r) { const c = r.cells[col]; const v = c.dataset.sort; return v === undefined ? c.textContent : +v; };
        const sorted = col < 0 ? rows.slice() : rows.slice().sort(function (a, b) {
          const x = key(a), y = key(b); const c = x < y ? -1 : x > y ? 1 : 0; return dir === 'ascending' ? c : -c; });
        sorted.forEach(function (r) { body.appendChild(r); });
      });
    });
    const reset = document.getElementById('tree-order');
    if (reset) reset.addEventListener('click', function () {
      table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
      rows.forEach(function (r) { body.appendChild(r); });
    });
    const filter = document.getElementById('filter');
    if (filter) filter.addEventListener('input', function () {
      const q = filter.value.toLowerCase();
      rows.forEach(function (r) { r.hidden = q && r.textContent.toLowerCase().indexOf(q) < 0; });
    });
  }
  // self-check read by the tests through the browser: every chart's drawn geometry
  document.body.dataset.charts = Array.from(document.querySelectorAll('svg.chart-svg')).map(function (s) {
    const b = s.getBBox(); return s.id + ':' + Math.round(b.width) + 'x' + Math.round(b.height); }).join(' ');
  document.body.dataset.ready = '1';
})();
"""

ERRORS_JS = """window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message)); });
(function () { const orig = console.error; console.error = function () {
  window.__errors.push(Array.from(arguments).join(' ')); orig.apply(console, arguments); }; })();
window.addEventListener('load', function () { document.body.dataset.errors = window.__errors.join(' | '); });"""


def _card(key: str, value: str, note: str = "") -> str:
    return (f'<div class="card"><div class="k">{esc(key)}</div><div class="v">{esc(value)}</div>'
            + (f'<div class="n">{esc(note)}</div>' if note else "") + "</div>")


def _rf_text(rf) -> str:
    if rf == "global":
        return "global"
    if isinstance(rf, dict):
        return "×".join(map(str, rf["size"])) + f" (jump {'×'.join(map(str, rf['stride']))})"
    return "-"


def totals_cards(d: dict) -> str:
    t = d["totals"]
    cards = [
        _card("Parameters", f"{t['params']:,}", f"{human_count(t['params'])}; {human_bytes(t.get('param_bytes'))}"),
        _card("MACs", f"{t['macs']:,}", f"{human_count(t['macs'])}; 1 MAC = one multiply-accumulate"),
        _card("FLOPs", f"{t['flops']:,}", f"{human_count(t['flops'])}; FLOPs = 2 × MACs"),
        _card("Activations", human_bytes(t.get("activation_bytes")), "bytes written by one forward, batch included"),
    ]
    if t.get("peak_memory_bytes") is not None:
        cards.append(_card("Peak memory", human_bytes(t["peak_memory_bytes"]), "params + buffers + activations alive at once"))
    cards.append(_card("Receptive field", _rf_text(t.get("receptive_field")), "of the last spatial map, input pixels"))
    return '<div class="totals">' + "".join(cards) + "</div>"


def _shape(s) -> str:
    if isinstance(s, list) and s and isinstance(s[0], list):
        return ", ".join(_shape(x) for x in s)
    return "×".join(map(str, s)) if isinstance(s, list) else "-"


def _ms_cell(by_module: dict | None, name: str) -> str:
    """The measured self time of a layer (``report --profile``), or nothing without a profile."""
    if not by_module:
        return ""
    ms = by_module.get(name)
    return f'<td data-sort="{ms or 0}">{"-" if ms is None else f"{ms:.3f}"}</td>'


def layer_table(d: dict) -> str:
    lat = (d.get("latency") or {}).get("by_module")
    heads = ["Layer", "Type", "Output shape", "Params", "MACs", "RF", "Live"] + (["ms (self)"] if lat else [])
    th = "".join(f'<th scope="col"><button type="button" data-col="{i}">{h}</button></th>' for i, h in enumerate(heads))
    body = []
    for i, r in enumerate(d["layers"]):
        rf = r.get("receptive_field")
        rf_sort = max(rf["size"]) if isinstance(rf, dict) else (10**9 if rf == "global" else -1)
        indent = f' style="padding-left:{0.5 + 1.1 * (r["depth"] - 1):.1f}em"'
        body.append(f'<tr data-depth="{r["depth"]}"><td{indent} data-sort="{i}">{esc(r["name"])}</td><td>{esc(r["type"])}</td>'
                    f'<td>{esc(_shape(r.get("output_shape")))}</td>'
                    f'<td data-sort="{int(r["params"] or 0)}">{int(r["params"] or 0):,}</td>'
                    f'<td data-sort="{int(r["macs"] or 0)}">{int(r["macs"] or 0):,}</td>'
                    f'<td data-sort="{rf_sort}">{esc(_rf_text(rf))}</td>'
                    f'<td data-sort="{r.get("live_bytes") or 0}">{esc(human_bytes(r.get("live_bytes")))}</td>'
                    + _ms_cell(lat, r["name"]) + "</tr>")
    return ('<div class="filter"><label for="filter">Filter layers: </label><input id="filter" type="search" '
            'placeholder="name or type, e.g. layer3 or Conv"> <button type="button" id="tree-order">Tree order</button></div>'
            '<div class="tablewrap"><table id="layers"><caption>Every layer in forward order; indentation is nesting. '
            'Sort with the column buttons; params and MACs of a module include its children.</caption>'
            f'<thead><tr>{th}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')


def compare_table(c: dict) -> str:
    t = c["totals"]
    head = (f"<p>{esc(c['a'])} → {esc(c['b'])}: params {t['params']['a']:,} → {t['params']['b']:,} "
            f"({100 * (t['params']['ratio'] or 0):.1f}%), MACs {t['macs']['a']:,} → {t['macs']['b']:,} "
            f"({100 * (t['macs']['ratio'] or 0):.1f}%). Highlighted: changed layers; red: only in one model.</p>")
    rows = []
    for r in c["layers"]:
        a, b = r.get("a") or {}, r.get("b") or {}
        cls = "only" if r.get("only_in") else ("changed" if r.get("changed") else "")
        rows.append(f'<tr class="{cls}"><td style="padding-left:{0.5 + 1.1 * (r["depth"] - 1):.1f}em">{esc(r["name"])}</td>'
                    f'<td>{esc(b.get("type") or a.get("type") or "")}</td>'
                    f'<td>{"—" if not a else format(int(a.get("params") or 0), ",")}</td>'
                    f'<td>{"—" if not b else format(int(b.get("params") or 0), ",")}</td>'
                    f'<td>{"—" if not a else format(int(a.get("macs") or 0), ",")}</td>'
                    f'<td>{"—" if not b else format(int(b.get("macs") or 0), ",")}</td>'
                    f'<td>{"changed" if r.get("changed") else ""}</td></tr>')
    heads = "".join(f'<th scope="col">{h}</th>' for h in ("Layer", "Type", "Params A", "Params B", "MACs A", "MACs B", ""))
    return head + ('<div class="tablewrap"><table id="compare"><caption>Per-layer comparison (cnnscope compare)</caption>'
                   f'<thead><tr>{heads}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def render_html(d: dict) -> str:
    """The whole report page."""
    shape = "×".join(map(str, d["input_shape"]))
    figures = []
    captions = {"macs": "Where the compute is, by top-level module.", "params": "Where the weights are.",
                "biggest": "Leaf layers ranked by MACs.",
                "shape": "Channels grow while feature maps shrink (log scale).",
                "rf": "How far each layer sees, in input pixels; the dashed line: the field covers the whole input.",
                "memory": "Activation bytes alive at once while each layer runs (liveness on the recorded graph).",
                "latency": "Median of interleaved runs on the machine that made this page; blue: compute-bound, "
                           "orange: memory-bound on its roofline (cnnscope profile)."}
    for name, fn in CHARTS.items():
        svg = fn(d)
        if svg is not None:
            figures.append(f'<figure id="chart-{name}">{svg}<figcaption>{esc(captions[name])}</figcaption></figure>')
    parts = [f"<h1>{esc(d['model'])}</h1>",
             f'<p class="note">Input {esc(shape)} (N×C×…). 1 MAC = one multiply-accumulate; FLOPs = 2 × MACs. '
             f'Made by cnnscope report; everything on this page is in the file (no network).</p>',
             "<h2>Totals</h2>", totals_cards(d)]
    if d["uncounted_ops"]:
        parts.append('<p class="note">Uncounted ops: ' + esc(", ".join(f"{u['op']} ×{u['count']}" for u in d["uncounted_ops"]))
                     + "</p>")
    if d["history"]:
        parts += ["<h2>History</h2>", '<ol class="history">' + "".join(f"<li>{esc(h)}</li>" for h in d["history"]) + "</ol>"]
    parts += ["<h2>Charts</h2>", '<div class="charts">' + "".join(figures) + "</div>"]
    if d["compare"]:
        parts += ["<h2>Comparison</h2>", compare_table(d["compare"])]
    parts += ["<h2>Layers</h2>", layer_table(d)]
    # "<" as a JSON escape: no name from a file can close the script element or open a comment in it
    data = json.dumps({"model": d["model"], "totals": d["totals"]}).replace("<", "\\u003c")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>cnnscope report: {esc(d['model'])}</title><style>{CSS}</style><script>{ERRORS_JS}</script></head>"
            f"<body><main>{''.join(parts)}</main>"
            f'<script type="application/json" id="report-data">{data}</script><script>{JS}</script></body></html>\n')


def render_markdown(d: dict, chart_files: dict[str, str]) -> str:
    """A Markdown summary (for a PR comment or CI artifact) that links the charts written beside it."""
    t = d["totals"]
    lines = [f"# {d['model']}", "", f"Input {'×'.join(map(str, d['input_shape']))}; 1 MAC = one multiply-accumulate, "
             f"FLOPs = 2 × MACs.", "", "| | |", "|---|---:|",
             f"| Parameters | {t['params']:,} |", f"| MACs | {t['macs']:,} |", f"| FLOPs | {t['flops']:,} |",
             f"| Activations | {human_bytes(t.get('activation_bytes'))} |",
             f"| Receptive field | {_rf_text(t.get('receptive_field'))} |", ""]
    if d["history"]:
        lines += ["History:", ""] + [f"1. {h}" for h in d["history"]] + [""]
    for name, path in chart_files.items():
        lines += [f"![{name}]({path})", ""]
    if d["compare"]:
        c = d["compare"]["totals"]
        lines += [f"Compared with {d['compare']['b']}: params {c['params']['a']:,} → {c['params']['b']:,}, "
                  f"MACs {c['macs']['a']:,} → {c['macs']['b']:,}.", ""]
    return "\n".join(lines)
