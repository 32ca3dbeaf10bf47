"""Text rendering of ``cnnscope explain``: the documents' formulas with a layer's numbers filled in.
Never computes: every number comes from :func:`cnnscope.analysis.explain.explain`'s dict."""
from __future__ import annotations

from typing import Any


def _rf_words(rf: Any) -> str:
    if rf is None:
        return "none (does not derive from the image)"
    if rf == "global":
        return "global (every output depends on the whole image)"
    size, stride, pad = rf["size"], rf["stride"], rf["padding"]

    def one(v):
        return f"{v[0]}" if len(set(v)) == 1 else "×".join(str(x) for x in v)

    text = f"r = {one(size)}, j = {one(stride)}, P = {one(pad)}"
    if rf.get("misaligned"):
        text += " (misaligned merge)"
    if rf.get("approximate"):
        text += " (approximate: an envelope)"
    return text


def _rf_region(rf: Any) -> str:
    if not isinstance(rf, dict) or len(set(rf["size"])) != 1 or len(set(rf["stride"])) != 1 \
            or len(set(rf["padding"])) != 1:
        return ""
    r, j, p = rf["size"][0], rf["stride"][0], rf["padding"][0]
    ji = "i" if j == 1 else f"{j}·i"

    def offset(v):
        return "" if v == 0 else f" + {v}" if v > 0 else f" − {-v}"

    lo, hi = f"{ji}{offset(-p)}", f"{ji}{offset(r - 1 - p)}"
    return f"output position i sees input pixels [{lo}, {hi}]"


def _shape(s) -> str:
    return "×".join(str(d) for d in s)


def _axis_lines(axes: list[dict]) -> list[str]:
    """One line per axis, or one for all when every axis has the same numbers."""
    keyed = [{k: v for k, v in a.items() if k != "axis"} for a in axes]
    if len(axes) > 1 and all(k == keyed[0] for k in keyed[1:]):
        return [("/".join(a["axis"] for a in axes), axes[0])]
    return [(a["axis"], a) for a in axes]


def _merge_axis_warnings(warnings: list[str]) -> list[str]:
    """``H: …`` and ``W: …`` saying the same thing become one ``H/W: …`` line."""
    out: list[str] = []
    for w in warnings:
        axis, _, rest = w.partition(": ")
        prev = out[-1].partition(": ") if out else ("", "", "")
        if len(axis) == 1 and prev[2] == rest and prev[0] and set(prev[0].split("/")) <= set("HWD"):
            out[-1] = f"{prev[0]}/{axis}: {rest}"
        else:
            out.append(w)
    return out


def render_text(d: dict) -> str:
    out: list[str] = []
    ins = ", ".join(_shape(s) for s in d["layer_input_shapes"]) or "-"
    outs = ", ".join(_shape(s) for s in d["layer_output_shapes"]) or "-"
    out.append(f"{d['model']} · {d['layer']} ({d['type']})    model input {_shape(d['input_shape'])}")
    out.append(f"  input {ins}  →  output {outs}")

    if "output_size" in d:
        sec = d["output_size"]
        out += ["", f"Output size   {sec['formula']}"]
        for axis, a in _axis_lines(sec["axes"]):
            if "expr" in a:
                tag = "exact" if a.get("exact") else "NOT exact"
                out.append(f"  {axis}: {a['expr']}   ({tag})")
            else:
                out.append(f"  {axis}: {a['in']} → {a['out']}  (window {a['kernel']}, stride {a['stride']}, "
                           f"padding {a['padding']})")

    p = d["params"]
    out += ["", f"Params        {p.get('formula', 'sum over the block (children included)')}"]
    out.append(f"  {p['expr']}" if "expr" in p else f"  {p['total']:,}")
    nws = p.get("without_weight_sharing")
    if nws:
        out.append(f"  without weight sharing (own filter per output position): {nws['expr']}")

    m = d["macs"]
    out += ["", f"MACs          {m.get('formula', 'sum over the layer (children included)')}"]
    per_call = m.get("per_call") or [m["total"]]
    if len(per_call) == 1:
        out.append(f"  {m['expr'] if 'expr' in m else format(m['total'], ',')} MACs   "
                   f"(FLOPs = 2 × MACs = {m['flops']:,})")
    else:                           # a shared module: one call's formula, then every call added up
        if "expr" in m:
            out.append(f"  one call: {m['expr']} MACs")
        calls = (f"{len(per_call)} calls × {per_call[0]:,}" if len(set(per_call)) == 1
                 else " + ".join(f"{c:,}" for c in per_call))
        out.append(f"  all {len(per_call)} calls: {calls} = {m['total']:,} MACs   "
                   f"(FLOPs = 2 × MACs = {m['flops']:,})")
    if m.get("note"):
        out.append(f"  {m['note']}")

    rf = d["receptive_field"]
    out += ["", f"Receptive field   {rf['formula']}"]
    out.append(f"  in  (from {rf['input_from']}): {_rf_words(rf['input'])}")
    for step in rf["steps"]:
        label = f"{step['module'] or 'the model'} ({step['op'].replace('aten.', '')})"
        if step.get("global"):
            out.append(f"  {label}: becomes global" + (f" — {step['note']}" if step.get("note") else ""))
            continue
        if not step["axes"]:
            continue
        prefix = f"  {label}" if d["kind"] == "block" else ""
        if prefix:
            out.append(prefix)
        for axis, a in _axis_lines(step["axes"]):
            out.append(f"    {axis}: r = {a['r_expr']};  j = {a['j_expr']};  P = {a['P_expr']}")
    for mg in rf.get("merges", []):
        out.append(f"  merge at {mg['module'] or 'the model'} ({mg['op'].replace('aten.', '')}):"
                   + (" paths misaligned" if mg.get("misaligned") else ""))
        for i in mg["inputs"]:
            mark = "  ← determines the RF" if i["determines"] else ""
            out.append(f"    from {i['from']}: {_rf_words(i['receptive_field'])}{mark}")
    if rf.get("path"):
        out.append(f"  path that determines the RF: {' → '.join(x or 'the model' for x in rf['path'])}")
    out.append(f"  out: {_rf_words(rf['output'])}")
    region = _rf_region(rf["output"])
    if region:
        out.append(f"       {region}")
    if rf.get("note"):
        out.append(f"  {rf['note']}")
    for n in rf.get("notes", []):
        out.append(f"  note: {n}")

    if d["warnings"]:
        out.append("")
        out += [f"Warning: {w}" for w in _merge_axis_warnings(d["warnings"])]
    return "\n".join(out) + "\n"
