"""Renders a profile dict (``ProfileReport.to_dict()``): table, JSON, CSV or Markdown. Computes nothing;
``top`` only chooses and orders rows for display."""
from __future__ import annotations

import csv
import io
import json

from tabulate import tabulate

from ..units import human_bytes, human_count

RUNTIME_NAMES = {"torch": "PyTorch eager", "ort": "onnxruntime"}
HEADERS = ["Layer", "Type", "Time ms", "IQR ms", "Share", "MACs", "GMAC/s", "Bytes", "Bound"]
PROFILE_FORMATS = ("table", "json", "csv", "markdown")


def _name(row: dict) -> str:
    name = row["name"] or "(model's own ops)"
    if row.get("fused"):
        name += f" (+{len(row['modules']) - 1} fused)"
    return name


def _rows(runtime: dict, top: int | None) -> list[dict]:
    rows = runtime["layers"]
    if top:
        rows = sorted(rows, key=lambda r: -r["median_ms"])[:top]
    return rows


def _cells(r: dict) -> list:
    return [_name(r), r["type"], f"{r['median_ms']:.3f}", f"{r['iqr_ms']:.3f}", f"{100 * r['share']:.1f}%",
            human_count(r["macs"]), "-" if r["gmacs_per_s"] is None else f"{r['gmacs_per_s']:.1f}",
            human_bytes(r["bytes"]), r["bound"] or "-"]


def header_lines(d: dict) -> list[str]:
    p = d["peak"]
    shape = "×".join(map(str, d["input_shape"]))
    threads = f"{d['threads']} thread{'s' if d['threads'] != 1 else ''}"
    lines = [f"Profile of {d['model']} · input {shape} · {d['device']} · {threads} · {d['runs']} runs "
             f"({d['warmup']} warm-up), median and IQR",
             f"Weights: {d['weights']}",
             f"Roofline: {p['macs_per_s'] / 1e9:.1f} GMAC/s (matmul), {p['bytes_per_s'] / 1e9:.1f} GB/s (copy); "
             f"below {p['ridge_macs_per_byte']:.2f} MACs per byte a layer is memory-bound"
             f"{' (cached)' if p['cached'] else ''}"]
    return lines


def runtime_line(rt: dict) -> str:
    t = rt["total"]
    return (f"{RUNTIME_NAMES.get(rt['runtime'], rt['runtime'])}: {t['median_ms']:.3f} ms per forward "
            f"(IQR {t['iqr_ms']:.3f}) · per-layer timing adds {rt['overhead_ms']:+.3f} ms · "
            f"rows sum to {rt['layers_sum_ms']:.3f} ms")


def render_table(d: dict, top: int | None = None, fmt: str = "simple") -> str:
    out = header_lines(d)
    for rt in d["runtimes"]:
        out += ["", runtime_line(rt)]
        rows = _rows(rt, top)
        out.append(tabulate([_cells(r) for r in rows], headers=HEADERS, tablefmt=fmt,
                            colalign=("left", "left") + ("right",) * 6 + ("left",), disable_numparse=True))
        if top and len(rt["layers"]) > top:
            out.append(f"(the {top} slowest of {len(rt['layers'])} rows; --top 0 shows all)")
        out += [f"note: {n}" for n in rt["notes"]]
    out += [f"note: {n}" for n in d["notes"]]
    out.append("1 MAC = one multiply-accumulate (FLOPs = 2 × MACs); Bytes = read from outside the row + written.")
    return "\n".join(out) + "\n"


def render_markdown(d: dict, top: int | None = None) -> str:
    return render_table(d, top, fmt="github")


def render_csv(d: dict, top: int | None = None) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["runtime", "layer", "type", "modules", "median_ms", "iqr_ms", "share", "macs", "flops",
                "gmacs_per_s", "bytes", "bound", "roof_ms"])
    for rt in d["runtimes"]:
        for r in _rows(rt, top):
            w.writerow([rt["runtime"], r["name"], r["type"], " ".join(r["modules"]), f"{r['median_ms']:.6f}",
                        f"{r['iqr_ms']:.6f}", f"{r['share']:.6f}", r["macs"], r["flops"],
                        "" if r["gmacs_per_s"] is None else f"{r['gmacs_per_s']:.3f}",
                        "" if r["bytes"] is None else r["bytes"], r["bound"] or "",
                        "" if r["roof_ms"] is None else f"{r['roof_ms']:.6f}"])
    return buf.getvalue()


def render_json(d: dict, top: int | None = None) -> str:
    return json.dumps(d, indent=2) + "\n"


RENDERERS = {"table": render_table, "json": render_json, "csv": render_csv, "markdown": render_markdown}


def render_profile(d: dict, fmt: str = "table", top: int | None = None) -> str:
    return RENDERERS[fmt](d, top)
