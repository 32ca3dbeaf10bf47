"""Renderers of `cnnscope compare`: ``table`` (terminal), ``json`` and ``markdown`` (a PR comment).

They format :func:`cnnscope.analysis.diff.diff_summaries` output and never compute: ratios, the
"only in" lists and the changed flags all come from the diff.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from ..units import human_bytes, human_count
from .render import format_rf

MAC_NOTE = "1 MAC = one multiply-accumulate (conv/linear/matmul); FLOPs = 2 × MACs; ratio = B ÷ A"

#: (label, totals key, formatter)
def _exact(v: Any) -> str:
    return "-" if v is None else f"{v:,}"


TOTAL_ROWS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("params", "params", _exact),
    ("MACs", "macs", _exact),
    ("FLOPs (2 × MACs)", "flops", _exact),
    ("param bytes", "param_bytes", human_bytes),
    ("activation bytes", "activation_bytes", human_bytes),
    ("peak activations", "peak_activation_bytes", human_bytes),
)

COMPARE_RENDERERS: dict[str, Callable[..., str]] = {}


def register_compare_renderer(name: str):
    def deco(fn):
        COMPARE_RENDERERS[name] = fn
        return fn

    return deco


def visible(diff: dict, depth: int | None = None, changed_only: bool = False) -> list[dict]:
    """Rows at depth ≤ ``depth`` (children are folded into their parent's counts), optionally changed only."""
    return [lay for lay in diff["layers"]
            if (depth is None or lay["depth"] <= depth) and (lay["changed"] or not changed_only)]


def _pct(r: float | None) -> str:
    return "-" if r is None else f"{r:.1%}"


def _shape(s: Any) -> str:
    if not s:
        return "-"
    if isinstance(s[0], list):
        return " ".join("×".join(map(str, x)) for x in s[:2]) + (" …" if len(s) > 2 else "")
    return "×".join(map(str, s))


def _side(view: dict | None, key: str, fmt: Callable[[Any], str]) -> str:
    return "—" if view is None else fmt(view.get(key))


def _type(lay: dict) -> str:
    a, b = lay["a"], lay["b"]
    ta, tb = (a or {}).get("type"), (b or {}).get("type")
    if a is None or b is None or ta == tb:
        return ta or tb or "-"
    return f"{ta} → {tb}"


def _count(v: Any) -> str:
    return "-" if v is None else human_count(v) if v else "0"


def total_rows(diff: dict) -> list[list[str]]:
    """Totals: exact counts, bytes in MB/KB, B ÷ A; then the receptive field of each side."""
    t = diff["totals"]
    rows = [[label, fmt(t[key]["a"]), fmt(t[key]["b"]), _pct(t[key]["ratio"])] for label, key, fmt in TOTAL_ROWS]
    rf = t["receptive_field"]
    rows.append(["receptive field (px /jump)", format_rf(rf["a"]), format_rf(rf["b"]), ""])
    return rows


def has_rf(layers: list[dict]) -> bool:
    """Whether any shown layer has a receptive field on either side (else the RF columns are left out)."""
    return any((lay[s] or {}).get("receptive_field") is not None for lay in layers for s in ("a", "b"))


def layer_headers(with_rf: bool) -> list[str]:
    return LAYER_HEADERS if with_rf else LAYER_HEADERS[:-2]


def layer_rows(layers: list[dict], name_fmt: Callable[[str], str] = str, full: bool = False,
               with_rf: bool = True) -> list[list[str]]:
    """One row per layer: params, MACs (each side and B ÷ A), output shapes, receptive fields."""
    cnt = (lambda v: "-" if v is None else f"{v:,}") if full else _count
    rows = []
    for lay in layers:
        a, b = lay["a"], lay["b"]
        marker = {"a": " (only A)", "b": " (only B)"}.get(lay["only_in"], "")
        rows.append([name_fmt(lay["name"]) + marker, _type(lay),
                     _side(a, "params", cnt), _side(b, "params", cnt), _pct(lay["ratio"]["params"]),
                     _side(a, "macs", cnt), _side(b, "macs", cnt), _pct(lay["ratio"]["macs"]),
                     _side(a, "output_shape", _shape), _side(b, "output_shape", _shape)]
                    + ([_side(a, "receptive_field", format_rf), _side(b, "receptive_field", format_rf)]
                       if with_rf else []))
    return rows


CROSS_FORMAT_NOTE = ("Across formats, changed means different params, MACs or output shape: type names (Conv2d / "
                     "Conv), the RF ONNX does not carry and cost-free nodes only ONNX lists (Add, relu_1) are not "
                     "differences.")

LAYER_HEADERS = ["layer", "type", "params A", "params B", "B/A", "MACs A", "MACs B", "B/A",
                 "output A", "output B", "RF A", "RF B"]


def _only_lines(diff: dict, limit: int | None = 20, code: bool = False) -> list[str]:
    out = []
    for side in ("a", "b"):
        names = diff[f"only_in_{side}"]
        if names:
            shown = names if limit is None else names[:limit]
            fmt = (lambda n: f"`{n}`") if code else str
            more = f", … (+{len(names) - len(shown)} more)" if len(shown) < len(names) else ""
            out.append(f"Only in {side.upper()} ({len(names)}): " + ", ".join(fmt(n) for n in shown) + more)
    return out


@register_compare_renderer("table")
def render_table(diff: dict, depth: int | None = None, changed_only: bool = False) -> str:
    from tabulate import tabulate

    shapes = diff.get("input_shapes", {"a": diff["input_shape"], "b": diff["input_shape"]})
    out = [f"A: {diff['a']}  (input {_shape(shapes['a'])})",
           f"B: {diff['b']}  (input {_shape(shapes['b'])})", ""]
    out.append(tabulate(total_rows(diff), headers=["total", "A", "B", "B/A"], disable_numparse=True,
                        colalign=("left", "right", "right", "right")))
    layers = visible(diff, depth, changed_only)
    n_changed = sum(1 for lay in diff["layers"] if lay["changed"])
    out.append("")
    if layers:
        rf = has_rf(layers)
        out.append(tabulate(layer_rows(layers, with_rf=rf), headers=layer_headers(rf), disable_numparse=True,
                            colalign=("left", "left") + ("right",) * 6 + ("left",) * (4 if rf else 2)))
    out.append(f"{len(diff['layers'])} layers, {n_changed} changed"
               + (f"; {len(layers)} shown" if len(layers) != len(diff["layers"]) else "") + ".")
    out += _only_lines(diff)
    if diff.get("cross_format"):
        out.append(CROSS_FORMAT_NOTE)
    out.append(f"Convention: {MAC_NOTE}.")
    return "\n".join(out) + "\n"


@register_compare_renderer("json")
def render_json(diff: dict, depth: int | None = None, changed_only: bool = False) -> str:
    out = dict(diff)
    out["layers"] = visible(diff, depth, changed_only)
    return json.dumps(out, indent=2, ensure_ascii=False) + "\n"


@register_compare_renderer("markdown")
def render_markdown(diff: dict, depth: int | None = None, changed_only: bool = False) -> str:
    """GitHub-flavoured Markdown for a PR comment: totals visible, the per-layer table folded."""
    from tabulate import tabulate

    t = diff["totals"]
    head = (f"### cnnscope compare: `{diff['a']}` → `{diff['b']}`\n\n"
            f"**params {_pct(t['params']['ratio'])}, MACs {_pct(t['macs']['ratio'])}** of A (B ÷ A).\n\n")
    totals = tabulate(total_rows(diff), headers=["total", "A", "B", "B/A"], tablefmt="github",
                      disable_numparse=True, colalign=("left", "right", "right", "right"))
    layers = visible(diff, depth, changed_only)
    n_changed = sum(1 for lay in diff["layers"] if lay["changed"])
    parts = [head + totals, ""]
    if n_changed == 0:
        parts += [f"All {len(diff['layers'])} layers match (params, MACs, output shape, type, RF).", ""]
    if layers:
        rf = has_rf(layers)
        body = tabulate(layer_rows(layers, lambda n: f"`{n}`", full=True, with_rf=rf), headers=layer_headers(rf),
                        tablefmt="github", disable_numparse=True)
        parts += [f"<details><summary>Per-layer diff: {len(layers)} layers shown, {n_changed} changed</summary>",
                  "", body, "", "</details>", ""]
    parts += [line + "\n" for line in _only_lines(diff, limit=50, code=True)]
    parts.append(f"<sub>{MAC_NOTE}.</sub>")
    return "\n".join(parts) + "\n"


def render_compare(diff: dict, fmt: str = "table", depth: int | None = None, changed_only: bool = False) -> str:
    return COMPARE_RENDERERS[fmt](diff, depth, changed_only)


def render_diff_table(diff: dict[str, Any], title_a: str = "before", title_b: str = "after",
                      max_rows: int | None = 40) -> str:
    """A compact before/after table: totals first, then the layers that differ."""
    from tabulate import tabulate

    from ..units import human_count

    def pct(r):
        return "-" if r is None else f"{r:.1%}"

    t = diff["totals"]
    tot_rows = [[m, human_count(t[m]["a"]), human_count(t[m]["b"]), pct(t[m]["ratio"])]
                for m in ("params", "macs", "flops")]
    rf = t["receptive_field"]
    tot_rows.append(["receptive field", format_rf(rf["a"]), format_rf(rf["b"]), ""])
    out = [tabulate(tot_rows, headers=["total", title_a, title_b, f"{title_b}/{title_a}"], disable_numparse=True,
                    colalign=("left", "right", "right", "right"))]
    changed = [lay for lay in diff["layers"] if lay["changed"]]
    if changed:
        rows = []
        for lay in changed[: max_rows or len(changed)]:
            a, b = lay["a"] or {}, lay["b"] or {}

            def shp(v):
                s = v.get("output_shape")
                return "×".join(map(str, s)) if s and not isinstance(s[0], list) else ("-" if not s else "…")

            rows.append([lay["name"], a.get("type", "—") if a else "—", b.get("type", "—") if b else "—",
                         human_count(a.get("params")) if a else "—", human_count(b.get("params")) if b else "—",
                         human_count(a.get("macs")) if a else "—", human_count(b.get("macs")) if b else "—",
                         shp(a) if a else "—", shp(b) if b else "—"])
        out.append("")
        out.append(tabulate(rows, headers=["layer", f"type {title_a}", f"type {title_b}", f"params {title_a}",
                                           f"params {title_b}", f"MACs {title_a}", f"MACs {title_b}",
                                           f"out {title_a}", f"out {title_b}"], disable_numparse=True))
        if max_rows and len(changed) > max_rows:
            out.append(f"… and {len(changed) - max_rows} more changed layers (use --format json for all)")
    out.append("MACs: 1 MAC = one multiply-accumulate; FLOPs = 2 × MACs.")
    return "\n".join(out) + "\n"
