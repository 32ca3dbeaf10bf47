"""Rendering of an input-size sweep (:class:`cnnscope.analysis.sweep.Sweep`'s dict): table, json,
csv, markdown. Never computes."""
from __future__ import annotations

import csv
import io
import json

from tabulate import tabulate

from ..units import human_bytes, human_count
from .render import MAC_NOTE, format_rf

FORMATS = ("table", "json", "csv", "markdown")
HEADERS = ["input", "MACs", "params", "written", "peak activations", "RF /jump", "RF ÷ image"]


def _shape(s) -> str:
    return "×".join(map(str, s))


def _cells(r: dict) -> list[str]:
    cov = r["rf_coverage"]
    return [_shape(r["input_shape"]), human_count(r["macs"]), human_count(r["params"]),
            human_bytes(r["activation_bytes"]), human_bytes(r["peak_activation_bytes"]),
            format_rf(r["receptive_field"]), "-" if cov is None else f"{cov:.2f}"]


def _growth(data: dict) -> str:
    def k(v):
        return "-" if v is None else f"{v:.2f}"

    return (f"Growth: MACs ∝ pixels^{k(data['macs_exponent'])}, peak activations ∝ pixels^"
            f"{k(data['peak_exponent'])} (least squares on log-log; a CNN is 1, attention over all positions "
            f"tends to 2). RF ÷ image ≥ 1: the receptive field covers the whole input.")


def render_sweep(data: dict, fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["input_shape", "macs", "flops", "params", "activation_bytes", "peak_activation_bytes",
                    "rf", "rf_coverage"])
        for r in data["rows"]:
            rf = r["receptive_field"]
            w.writerow(["x".join(map(str, r["input_shape"])), r["macs"], r["flops"], r["params"],
                        r["activation_bytes"], "" if r["peak_activation_bytes"] is None else r["peak_activation_bytes"],
                        "x".join(map(str, rf["size"])) if isinstance(rf, dict) else (rf or ""),
                        "" if r["rf_coverage"] is None else f"{r['rf_coverage']:.4f}"])
        return buf.getvalue()
    rows = [_cells(r) for r in data["rows"]]
    align = ("left",) + ("right",) * (len(HEADERS) - 1)
    if fmt == "markdown":
        return (f"**{data['model']}** — input-size sweep\n\n"
                + tabulate(rows, headers=HEADERS, tablefmt="github", disable_numparse=True, colalign=align)
                + f"\n\n{_growth(data)}\n")
    return "\n".join([f"{data['model']}: input-size sweep", tabulate(rows, headers=HEADERS, disable_numparse=True,
                                                                    colalign=align),
                      "", _growth(data), f"Convention: {MAC_NOTE}."]) + "\n"
