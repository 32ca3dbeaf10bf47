"""What ``cnnscope report`` shows, computed once from result dicts, so the HTML, SVG and Markdown
renderers (``cnnscope/report/html.py``) only lay numbers out.

Input: a summary dict (``Summary.to_dict()``: PyTorch or ONNX), optionally the ``compare`` dict of it
against a second model and the model's history lines. Output: a plain dict (schema
``cnnscope.report/1``), JSON-serialisable:

- ``totals``: the summary's totals, unchanged (params, MACs, FLOPs = 2 × MACs, bytes, RF);
- ``stages``: the top-level modules in forward order with their params and MACs and their share of the
  model's (a model whose top level is one module is read one level down);
- ``biggest``: the ten leaf layers with the most MACs and each one's share of the total;
- ``depth``: one point per leaf layer with a spatial output (forward order): channels, the feature map's
  spatial size, the receptive field's size and jump (stride) in input pixels, and whether the field
  covers the whole input; ``covers_at`` names the first such layer;
- ``memory``: live activation bytes while each leaf layer runs (when the summary has them) and the peak;
- ``layers``: the per-layer table (every row, nesting by ``depth``);
- ``history``: the artifact's steps; ``compare``: the per-layer comparison, as ``compare`` returns it.
"""
from __future__ import annotations

from typing import Any

SCHEMA = "cnnscope.report/1"
BIGGEST = 10


def leaf_rows(layers: list[dict]) -> list[dict]:
    """Rows with no children: the next row is not deeper."""
    out = []
    for i, row in enumerate(layers):
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if nxt is None or nxt["depth"] <= row["depth"]:
            out.append(row)
    return out


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def stages(layers: list[dict], totals: dict) -> list[dict]:
    """Top-level modules (one level down when the top level is a single module), in forward order."""
    depth = 1
    top = [r for r in layers if r["depth"] == depth]
    while len(top) == 1 and any(r["depth"] == depth + 1 for r in layers):
        depth += 1
        top = [r for r in layers if r["depth"] == depth]
    return [{"name": r["name"], "type": r["type"], "params": int(r["params"] or 0), "macs": int(r["macs"] or 0),
             "params_share": _share(int(r["params"] or 0), totals["params"]),
             "macs_share": _share(int(r["macs"] or 0), totals["macs"])} for r in top]


def _rf_size(rf) -> tuple[int | None, int | None]:
    if not isinstance(rf, dict):
        return None, None
    return max(rf["size"]), max(rf["stride"])


def depth_profile(leaves: list[dict], input_shape: list[int]) -> tuple[list[dict], str | None]:
    """Channels, spatial size and RF per leaf layer with a C×spatial output; the first layer whose field
    covers the whole input (every side at least the input's)."""
    spatial_in = [int(d) for d in input_shape[2:]] if len(input_shape) > 2 else []
    points, covers_at = [], None
    for row in leaves:
        shape = row.get("output_shape")
        if not isinstance(shape, list) or len(shape) < 3 or not all(isinstance(d, int) for d in shape):
            continue
        rf = row.get("receptive_field")
        size, jump = _rf_size(rf)
        covers = rf == "global" or (isinstance(rf, dict) and bool(spatial_in) and
                                    all(s >= d for s, d in zip(rf["size"], spatial_in)))
        if covers and covers_at is None:
            covers_at = row["name"]
        points.append({"name": row["name"], "type": row["type"], "channels": int(shape[1]),
                       "spatial": [int(d) for d in shape[2:]], "rf": size, "jump": jump,
                       "rf_global": rf == "global", "covers": bool(covers)})
    return points, covers_at


SLOWEST = 12


def latency_of(profile: dict | None) -> dict | None:
    """The report's latency section from a profile dict (``cnnscope.profile(...).to_dict()``): the first
    runtime's whole-model time, its slowest rows, and each row's time by module for the layer table."""
    if not profile or not profile.get("runtimes"):
        return None
    rt = profile["runtimes"][0]
    rows = sorted(rt["layers"], key=lambda r: -r["median_ms"])[:SLOWEST]
    return {"runtime": rt["runtime"], "threads": profile["threads"], "runs": profile["runs"],
            "device": profile["device"], "total": rt["total"], "weights": profile["weights"],
            "slowest": [{"name": r["name"] or "(model's own ops)", "median_ms": r["median_ms"], "share": r["share"],
                         "bound": r["bound"], "fused": r.get("fused", False)} for r in rows],
            "by_module": {r["name"]: r["median_ms"] for r in rt["layers"]}}


def report_data(summary: dict, compare: dict | None = None, history: list[str] | None = None,
                profile: dict | None = None) -> dict[str, Any]:
    """The report of one model (and its comparison with a second), as plain data (module docstring);
    ``profile``: a measured profile of the same model, for the latency chart and column."""
    totals = summary["totals"]
    layers = summary["layers"]
    leaves = leaf_rows(layers)
    ranked = sorted((r for r in leaves if r.get("macs")), key=lambda r: -int(r["macs"]))[:BIGGEST]
    depth, covers_at = depth_profile(leaves, list(summary["input_shape"]))
    live = [{"name": r["name"], "live_bytes": int(r["live_bytes"])} for r in leaves if r.get("live_bytes") is not None]
    return {
        "schema": SCHEMA,
        "model": summary["model"],
        "input_shape": list(summary["input_shape"]),
        "totals": totals,
        "uncounted_ops": summary.get("uncounted_ops") or [],
        "stages": stages(layers, totals),
        "biggest": [{"name": r["name"], "type": r["type"], "macs": int(r["macs"]),
                     "share": _share(int(r["macs"]), totals["macs"])} for r in ranked],
        "depth": depth,
        "covers_at": covers_at,
        "memory": {"live": live, "peak_activation_bytes": totals.get("peak_activation_bytes"),
                   "peak_at": totals.get("peak_at")} if live else None,
        "layers": layers,
        "history": list(history or []),
        "compare": compare,
        "latency": latency_of(profile),
    }
