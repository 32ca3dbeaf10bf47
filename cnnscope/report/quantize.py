"""Text rendering of ``cnnscope quantize``'s report (the dict of ``QuantizeReport.to_dict()``)."""
from __future__ import annotations

from ..units import human_bytes

#: float nodes listed in the table before "… N more" (``-f json`` lists every node)
MAX_FLOAT_ROWS = 15


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def agreement_line(d: dict) -> str:
    a = d["agreement"]
    if a["top1_agreement"] is None:
        head = "top-1 agreement n/a (the first output is not batch × classes)"
    else:
        budget = d["min_agreement"]
        verdict = "" if budget is None else (f" (--min-agreement {_pct(budget)}: "
                                             f"{'ok' if a['top1_agreement'] >= budget else 'BELOW'})")
        head = f"top-1 agreement {_pct(a['top1_agreement'])} of {a['images']:,} {a['inputs']}{verdict}"
    return f"{head}; relative error ‖int8 − float‖/‖float‖ {_pct(a['relative_error'])}, max |diff| {a['max_abs_diff']:.3g}"


def render_quantize(d: dict) -> str:
    lines = [f"Quantized {d['model']} → {d['path']}  ({d['mode']}, {d['format']}; onnxruntime's quantizer)"]
    lines.append("  history:    " + " → ".join(d["history"]))
    calib = d["calibration"]
    where = f" on {calib['images']:,} {'train/ images' if calib['source'] == 'data' else 'random N(0,1) inputs'}" \
        if calib else ""
    lines.append(f"  weights:    {d['weights']}; activations {d['activations']}{where}")
    lines.append(f"  verified:   onnx.checker {d['checker']}; onnxruntime runs the int8 file")
    lines.append("  agreement:  " + agreement_line(d))
    a = d["agreement"]
    if a["top1_float"] is not None:
        points = 100 * (a["top1_int8"] - a["top1_float"])
        lines.append(f"  top-1:      float {_pct(a['top1_float'])} → int8 {_pct(a['top1_int8'])} ({points:+.2f} points, "
                     f"val labels)")
    lines.append(f"  file:       {human_bytes(d['float_file_bytes'])} → {human_bytes(d['int8_file_bytes'])} "
                 f"({100 * d['size_ratio']:.1f}% of the float file)")
    fl, ql = d["float_latency"], d["int8_latency"]
    if fl and ql:
        lines.append(f"  latency:    {fl['median_ms']:.3g} ms → {ql['median_ms']:.3g} ms ({d['speedup']:.2f}× "
                     f"{'faster' if d['speedup'] >= 1 else 'as fast: slower'}; onnxruntime CPU, batch 1, "
                     f"{d['threads']} thread{'s' if d['threads'] != 1 else ''}, median of {fl['runs']} interleaved "
                     f"runs, IQR {fl['iqr_ms']:.2g} / {ql['iqr_ms']:.2g} ms)")
    else:
        lines.append("  latency:    not measured (--latency-runs 0)")
    total = len(d["nodes"])
    share = d["int8_macs"] / d["macs"] if d["macs"] else 0.0
    lines.append(f"  int8:       {_pct(share) if d['int8_macs'] < d['macs'] else '100%'} of the MACs "
                 f"({d['int8_macs']:,} of {d['macs']:,}; 1 MAC = one multiply-accumulate), "
                 f"{d['int8_nodes']} of {total} compute nodes")
    floats = sorted((n for n in d["nodes"] if not n["int8"]), key=lambda n: -n["macs"])
    heavy = [n for n in floats if n["macs"]]
    if floats:
        lines.append(f"  float:      {len(floats)} node{'s stay' if len(floats) != 1 else ' stays'} float"
                     + (":" if heavy else " (none with MACs):"))
    if heavy:
        width = min(48, max(len(n["module"] or n["name"]) for n in heavy[:MAX_FLOAT_ROWS]))
        for n in heavy[:MAX_FLOAT_ROWS]:
            lines.append(f"    {(n['module'] or n['name']):<{width}}  {n['op']:<10} {n['macs']:>12,} MACs  {n['reason']}")
        if len(heavy) > MAX_FLOAT_ROWS:
            lines.append(f"    … {len(heavy) - MAX_FLOAT_ROWS} more with MACs (-f json lists every node)")
    light: dict[tuple[str, str], int] = {}
    for n in floats:
        if not n["macs"]:
            light[(n["op"], n["reason"])] = light.get((n["op"], n["reason"]), 0) + 1
    for (op, reason), count in sorted(light.items(), key=lambda kv: -kv[1]):
        lines.append(f"    {count} × {op} (no MACs): {reason}")
    for note in d["notes"]:
        lines.append(f"  note:       {note}")
    return "\n".join(lines)
