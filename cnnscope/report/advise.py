"""Text rendering of ``cnnscope advise`` (:func:`cnnscope.transforms.advise.advise`'s dict)."""
from __future__ import annotations

from tabulate import tabulate

from ..units import human_count
from .render import format_rf


def render_advice(report: dict, top: int) -> str:
    """The whole-model table, then the ``top`` sites by MACs saved, then the notes."""
    t = report["totals"]
    lines = [f"{report['model']} (input {'×'.join(map(str, report['input_shape']))}): "
             f"{human_count(t['params'])} params, {human_count(t['macs'])} MACs, RF {format_rf(t['receptive_field'])}",
             ""]
    rows = []
    for m in report["methods"]:
        rows.append([m["method"], human_count(m["macs"][1]), f"{m['macs'][1] / m['macs'][0]:.1%}" if m["macs"][0] else "-",
                     human_count(m["params"][1]), f"{m['params'][1] / m['params'][0]:.1%}" if m["params"][0] else "-",
                     format_rf(m["receptive_field"][1])])
    lines.append(tabulate(rows, headers=["method (whole model)", "MACs after", "of before", "params after",
                                         "of before", "RF after"], disable_numparse=True,
                          colalign=("left", "right", "right", "right", "right", "right")))
    if report["sites"]:
        lines.append("")
        rows = [[s["method"], s["site"], human_count(s["macs_saved"]), human_count(s["params_saved"]),
                 f"{format_rf(s['rf'][0])} → {format_rf(s['rf'][1])}"] for s in report["sites"][:top]]
        lines.append(tabulate(rows, headers=["method", "site", "MACs saved", "params saved", "layer RF"],
                              disable_numparse=True))
        if len(report["sites"]) > top:
            lines.append(f"… {len(report['sites']) - top} more sites (--top N or --format json)")
    for m in report["methods"]:
        if m.get("note"):
            lines.append(f"note: {m['note']}")
    lines.append("MACs: 1 MAC = one multiply-accumulate; FLOPs = 2 × MACs. Apply with cnnscope stride|reduce|factorize|"
                 "prune MODEL -o OUT.pt.")
    return "\n".join(lines) + "\n"


def render_latency_advice(report: dict) -> str:
    """``advise --by latency``: one row per method, best measured saving per point of error first."""
    o = report["original"]
    lines = [f"{report['model']} (input {'×'.join(map(str, report['input_shape']))}) on {report['runtime']}, "
             f"{report['threads']} thread{'s' if report['threads'] != 1 else ''}: {o['median_ms']:.3f} ms "
             f"(IQR {o['iqr_ms']:.3f}, {report['runs']} interleaved runs)", ""]
    rows = [[m["method"], f"{m['latency']['median_ms']:.3f}", f"{m['latency']['iqr_ms']:.3f}",
             f"{m['saved_ms']:+.3f}", f"{m['latency_ratio']:.1%}", f"{m['macs_ratio']:.1%}",
             f"{m['output_error_pct']:.2f}%", f"{m['ms_per_error_point']:.3f}"] for m in report["methods"]]
    lines.append(tabulate(rows, headers=["method", "ms", "IQR", "saved ms", "latency of before", "MACs of before",
                                         "output error", "ms saved / error pt"], disable_numparse=True,
                          colalign=("left",) + ("right",) * 7))
    lines += ["", f"Error: {report['error']}."]
    lines += [f"note: {n}" for n in report["notes"]]
    lines.append("Latency is measured here, not estimated from MACs; it needs a quiet machine. "
                 "1 MAC = one multiply-accumulate.")
    return "\n".join(lines) + "\n"
