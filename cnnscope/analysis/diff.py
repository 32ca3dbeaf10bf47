"""Layer-by-layer difference of two summaries: plain data for `compare` and the before/after tables
of every transform. Layers are matched by qualified name; a layer present in only one model is kept
with ``None`` on the other side (``only_in`` says which) and listed in ``only_in_a`` / ``only_in_b``.

Ratios are b ÷ a (0.25 = b has a quarter of a's MACs), None where a is 0 or a side is missing.

Across formats (a PyTorch model against an ``.onnx`` file) layers are still matched by name (the
exporter keeps module paths), but only what both formats measure alike decides "changed": params,
MACs and output shapes. Type names differ by convention (``Conv2d`` / ``Conv``), an ONNX summary has
no receptive field, and the functional ops ONNX shows as nodes (the ``Add`` of a residual, the second
call of a shared ``relu`` as ``relu_1``) hold no params or MACs: none of that is a difference.
"""
from __future__ import annotations

from typing import Any

from .summary import Summary

SCHEMA = "cnnscope.compare/1"
TOTAL_METRICS = ("params", "macs", "flops", "param_bytes", "activation_bytes", "peak_activation_bytes")
LAYER_RATIOS = ("params", "macs")


def _ratio(a: float | None, b: float | None) -> float | None:
    if a in (None, 0) or b is None:
        return None
    return b / a


def _layer_view(row: dict) -> dict:
    return {k: row.get(k) for k in ("type", "output_shape", "params", "macs", "receptive_field")}


def _merged_order(names_a: list[str], names_b: list[str]) -> list[str]:
    """A's order, with each layer only in B placed right after the layer that precedes it in B (so the
    children of a rewritten ``layer1.0.conv2`` appear under it, not at the end)."""
    order = list(names_a)
    in_order = set(order)
    anchor = -1  # index in `order` of the last B layer placed
    for name in names_b:
        if name in in_order:
            anchor = order.index(name)
        else:
            anchor += 1
            order.insert(anchor, name)
            in_order.add(name)
    return order


def _is_onnx(d: dict) -> bool:
    return str(d.get("model", "")).lower().endswith(".onnx")


def _costs_nothing(view: dict | None) -> bool:
    return view is not None and not view.get("params") and not view.get("macs")


def _changed(va: dict | None, vb: dict | None, cross_format: bool) -> bool:
    if not cross_format:
        return va != vb
    if va is None or vb is None:        # a node ONNX shows (or a module it folds) that costs nothing
        return not _costs_nothing(va if vb is None else vb)
    return any(va[k] != vb[k] for k in ("params", "macs", "output_shape"))


def diff_summaries(a: Summary | dict, b: Summary | dict, only_changed: bool = False,
                   cross_format: bool | None = None) -> dict[str, Any]:
    """``{"schema", "a", "b", "input_shape", "input_shapes": {a, b}, "totals": {metric: {a, b, ratio}},
    "layers": [{name, depth, a, b, changed, only_in, ratio: {params, macs}}], "only_in_a", "only_in_b"}``.

    ``ratio`` is b ÷ a (0.25 = b has a quarter of a's MACs). ``only_in_a``/``only_in_b`` list every
    layer present on one side, also when ``only_changed`` drops unchanged rows. ``cross_format``
    (default: exactly one side is an ``.onnx`` file) compares only params, MACs and output shapes.
    """
    da = a.to_dict() if isinstance(a, Summary) else a
    db = b.to_dict() if isinstance(b, Summary) else b
    if cross_format is None:
        cross_format = _is_onnx(da) != _is_onnx(db)
    totals = {m: {"a": da["totals"].get(m), "b": db["totals"].get(m),
                  "ratio": _ratio(da["totals"].get(m), db["totals"].get(m))} for m in TOTAL_METRICS}
    totals["receptive_field"] = {"a": da["totals"].get("receptive_field"), "b": db["totals"].get("receptive_field")}
    rows_a = {r["name"]: r for r in da["layers"]}
    rows_b = {r["name"]: r for r in db["layers"]}
    order = _merged_order([r["name"] for r in da["layers"]], [r["name"] for r in db["layers"]])
    layers = []
    for name in order:
        ra, rb = rows_a.get(name), rows_b.get(name)
        va = _layer_view(ra) if ra else None
        vb = _layer_view(rb) if rb else None
        changed = _changed(va, vb, cross_format)
        if only_changed and not changed:
            continue
        depth = (ra or rb)["depth"]
        only_in = None if (ra and rb) else ("a" if ra else "b")
        ratio = {m: _ratio(va[m], vb[m]) if va and vb else None for m in LAYER_RATIOS}
        layers.append({"name": name, "depth": depth, "a": va, "b": vb, "changed": changed, "only_in": only_in,
                       "ratio": ratio})
    return {"schema": SCHEMA, "a": da["model"], "b": db["model"], "input_shape": da["input_shape"],
            "cross_format": cross_format,
            "input_shapes": {"a": da["input_shape"], "b": db["input_shape"]},
            "totals": totals, "layers": layers,
            "only_in_a": [n for n in rows_a if n not in rows_b],
            "only_in_b": [n for n in rows_b if n not in rows_a]}
