"""How every number of one layer (or block) is obtained: the documents' formulas with the layer's values.

:func:`explain` returns plain, JSON-serialisable data (``cnnscope explain --format json``); the text
walk-through is rendered from it by the command. Every figure is recomputed here from the layer's
shapes and hyper-parameters with the formulas of :mod:`cnnscope.analysis.arithmetic` and then
checked against what the analysis recorded (module params, the MAC registry's count, the traced
output shape), so the walk-through can never silently disagree with ``cnnscope summary``.

- output size ``OH = ⌊(H + 2P − D·(K − 1) − 1)/S⌋ + 1`` (``⌈…⌉`` for ceil-mode pooling), with a
  warning when the division is not exact and border pixels are dropped;
- conv params ``K_h·K_w·(C_in/groups)·C_out + bias`` and the count without weight sharing;
- MACs ``= params_without_bias × OH × OW`` (× N for a batch), ``in·out × rows`` for linear layers;
- the RF recurrence ``r_out = r_in + (K − 1)·D·j_in``, ``j_out = j_in·S``, ``P_out = P_in + P·j_in``,
  and for a block the path that determines its RF and the merges on the way.
"""
from __future__ import annotations

import math
from typing import Any

from ..errors import CnnscopeError, UnknownNameError
from ..graph.dataflow import Graph, ModuleCall, Node, ValueRef
from .arithmetic import conv_weight_count, output_size, prod
from .engine import Analysis
from ..ops.args import conv_args
from ..ops.families import CONVOLUTION, NORMALIZATION
from .receptive_field import ADAPTIVE_POOLS, RF, WINDOWS, Window, analyse, json_number

SCHEMA = "cnnscope.explain/1"
RF_FORMULA = "r_out = r_in + (K − 1)·D·j_in,  j_out = j_in·S,  P_out = P_in + P·j_in"
SIZE_FORMULA = "OH = ⌊(H + 2P − D·(K − 1) − 1)/S⌋ + 1"
PARAMS_FORMULA = "K_h·K_w·(C_in/groups)·C_out + bias"
MACS_FORMULA = "(params without bias) × OH × OW"
AXES = "HWD"


def explain(analysis: Analysis, layer: str) -> dict[str, Any]:
    """The walk-through data for module ``layer`` of the analysed model (its first call)."""
    graph = analysis.graph
    names = [n for n in graph.modules if n]
    if layer not in graph.modules or layer == "":
        raise UnknownNameError("layer", layer, names, hint="`cnnscope summary MODEL` lists the layer names")
    calls = graph.calls_of(layer)
    if not calls:
        raise CnnscopeError(f"layer '{layer}' does not run in the forward pass of {analysis.name} "
                            f"(e.g. an auxiliary head disabled in eval mode); nothing to explain")
    call = calls[0]
    info = graph.modules[layer]
    rfs = analyse(graph).rfs
    nodes = [n for n in graph.nodes[call.first_node:call.last_node] if n.kind == "op"]
    own = [n for n in nodes if n.scope == layer]
    has_children = any(m.startswith(layer + ".") for m in graph.modules)
    per_call = [sum(n.macs for n in graph.nodes[c.first_node:c.last_node] if n.kind == "op") for c in calls]
    macs = sum(per_call)
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "model": analysis.name,
        "input_shape": list(analysis.input_shape),
        "layer": layer,
        "type": info.type,
        "kind": "other",
        "calls": len(calls),
        "layer_input_shapes": [list(graph.values[v].shape) for v in call.inputs],
        "layer_output_shapes": [list(graph.values[v].shape) for v in call.outputs],
        "params": {"total": info.params},
        # total and flops count every call; expr/computed below are one call's, per_call has each call's
        "macs": {"total": macs, "flops": 2 * macs, "per_call": per_call},
        "receptive_field": _rf_section(graph, call, rfs),
        "warnings": [],
    }
    if len(calls) > 1:
        data["warnings"].append(f"{layer} runs {len(calls)} times; the walk-through shows the first call, "
                                f"MACs count all {len(calls)}")
    window_ops = [n for n in own if n.packet in WINDOWS]
    matmuls = [n for n in own if n.packet in _MATMULS]
    if has_children:
        data["kind"] = "block"
        data["receptive_field"].update(_block_paths(graph, call, rfs))
    elif len(window_ops) == 1 and window_ops[0].packet in ("aten.convolution", "aten._convolution"):
        data["kind"] = "conv"
        _explain_conv(data, graph, window_ops[0], rfs, len(calls))
    elif len(window_ops) == 1:
        data["kind"] = "pool" if "pool" in window_ops[0].packet else "resize"
        _explain_window(data, graph, window_ops[0], rfs)
    elif len(matmuls) == 1 and info.own_params:
        data["kind"] = "linear"
        _explain_linear(data, graph, matmuls[0], len(calls))
    else:
        _explain_other(data, graph, own)
    return data


ZERO_MAC_NOTE = "BatchNorm, activations, additions and pooling count 0 MACs (convention: only the " \
                "multiply-accumulates of conv/linear/matmul/attention)"


def _explain_other(data: dict, graph: Graph, own: list[Node]) -> None:
    """A leaf without a window or matrix product: BatchNorm, activations, dropout, flatten, …"""
    p = data["params"]
    p["formula"] = "the module's own parameters"
    for n in own:
        if n.packet not in NORMALIZATION:
            continue
        named = n.named_args()      # every normalisation names its affine tensors weight and bias
        w, b = named.get("weight"), named.get("bias")
        if isinstance(w, ValueRef):   # affine: one scale γ (and shift β) per normalised element
            c = prod(graph.shape(w))
            k = 2 if isinstance(b, ValueRef) else 1
            p.update({"formula": f"{'2·' if k == 2 else ''}C (scale γ{' and shift β' if k == 2 else ''} per "
                                 f"channel; running statistics are buffers)",
                      "computed": k * c, "expr": f"{'2·' if k == 2 else ''}{c:,} = {k * c:,}"})
        break
    if not data["macs"]["total"]:
        data["macs"].update({"formula": "none counted", "note": ZERO_MAC_NOTE})
    sec = data["receptive_field"]
    if sec["input"] is not None and sec["input"] == sec["output"]:
        sec["note"] = "RF-neutral: every output position reads the same position of its input"


_MATMULS = {"aten.addmm", "aten.mm", "aten.bmm", "aten.baddbmm", "aten.matmul", "aten.linear"}


# -- receptive field -------------------------------------------------------------------------------
def rf_json(rf: RF | None) -> Any:
    return rf.to_json() if rf is not None else None


def _source_of(graph: Graph, value_id: int) -> str:
    node = graph.producer(value_id)
    if node.kind == "input":
        return "the input image"
    if node.kind != "op":
        return f"{node.kind} {node.target}"
    return node.scope or f"the model's own forward ({node.packet})"


def _rf_section(graph: Graph, call: ModuleCall, rfs: dict[int, RF]) -> dict[str, Any]:
    ins = [v for v in call.inputs if v in rfs] or call.inputs[:1]
    sec: dict[str, Any] = {
        "formula": RF_FORMULA,
        "input": rf_json(rfs.get(ins[0])) if ins else None,
        "input_from": _source_of(graph, ins[0]) if ins else None,
        "output": rf_json(rfs.get(call.outputs[0])) if call.outputs else None,
        "steps": [],
    }
    out = rfs.get(call.outputs[0]) if call.outputs else None
    if out is not None and out.notes:
        sec["notes"] = list(out.notes)
    return sec


def _window_step(node: Node, windows: list[Window], rf_in: RF | None, rf_out: RF | None) -> dict[str, Any]:
    step: dict[str, Any] = {"module": node.scope, "op": node.packet, "axes": []}
    if rf_in is None or rf_in.is_global:
        return step
    nd = len(windows)
    for t, w in enumerate(windows):
        a = len(rf_in.axes) - nd + t
        if a < 0:
            continue
        ax = rf_in.axes[a]
        new = ax.window(w.k, w.s, w.p, w.d)
        step["axes"].append({
            "axis": AXES[a] if a < len(AXES) else str(a),
            "kernel": json_number(w.k), "stride": json_number(w.s), "padding": json_number(w.p),
            "dilation": json_number(w.d),
            "r_in": json_number(ax.size), "j_in": json_number(ax.jump), "P_in": json_number(ax.padding),
            "r_out": json_number(new.size), "j_out": json_number(new.jump), "P_out": json_number(new.padding),
            "r_expr": f"{_n(ax.size)} + ({_n(w.k)} − 1)·{_n(w.d)}·{_n(ax.jump)} = {_n(new.size)}",
            "j_expr": f"{_n(ax.jump)}·{_n(w.s)} = {_n(new.jump)}",
            "P_expr": f"{_n(ax.padding)} + {_n(w.p)}·{_n(ax.jump)} = {_n(new.padding)}",
        })
    if rf_out is not None and rf_out.is_global:
        step["global"] = True
    return step


def _n(x) -> str:
    v = json_number(x)
    return f"{v:,}" if isinstance(v, int) else str(v)


def _extent(rf: RF | None) -> float:
    if rf is None:
        return -1.0
    if rf.is_global:
        return math.inf
    return float(sum(ax.size for ax in rf.axes))


def _block_paths(graph: Graph, call: ModuleCall, rfs: dict[int, RF]) -> dict[str, Any]:
    """Walk back from the block's output along the input with the largest RF: the path that determines it."""
    inside = set(range(call.first_node, call.last_node))
    stop = set(call.inputs)
    steps, merges, path = [], [], []
    v = call.outputs[0] if call.outputs else None
    seen = 0
    while v is not None and v not in stop and seen < 100_000:
        seen += 1
        node = graph.producer(v)
        if node.index not in inside or node.kind != "op":
            break
        candidates = [u for u in node.inputs if u in rfs]
        if not candidates:
            break
        best = max(candidates, key=lambda u: _extent(rfs[u]))
        with_rf = list(dict.fromkeys(candidates))
        if len(with_rf) > 1:
            merges.append({
                "module": node.scope, "op": node.packet,
                "inputs": [{"from": _source_of(graph, u), "receptive_field": rf_json(rfs[u]),
                            "determines": u == best} for u in with_rf],
                "output": rf_json(rfs.get(node.outputs[0])),
                "misaligned": bool(rfs.get(node.outputs[0]) is not None and rfs[node.outputs[0]].misaligned
                                   and not rfs[best].misaligned),
            })
        if node.packet in WINDOWS:
            windows, _, _ = WINDOWS[node.packet](node, graph)
            steps.append(_window_step(node, windows, rfs.get(best), rfs.get(node.outputs[0])))
        elif rfs.get(node.outputs[0]) is not None and rfs[node.outputs[0]].is_global and not rfs[best].is_global:
            steps.append({"module": node.scope, "op": node.packet, "axes": [], "global": True,
                          "note": (rfs[node.outputs[0]].notes or ("",))[-1]})
        if node.scope not in path:
            path.append(node.scope)
        v = best
    steps.reverse()
    merges.reverse()
    path.reverse()
    return {"steps": steps, "merges": merges, "path": path}


# -- conv, pooling, linear -------------------------------------------------------------------------
def _size_rows(in_spatial, out_spatial, windows: list[Window]) -> tuple[list[dict], list[str]]:
    rows, warnings = [], []
    for t, (h, oh, w) in enumerate(zip(in_spatial, out_spatial, windows)):
        axis = AXES[t] if len(windows) <= 3 else str(t)
        k, s, p, d = int(w.k), int(w.s), int(w.p), int(w.d)
        o = output_size(h, k, s, p, d, w.ceil)
        rnd = ("⌈", "⌉") if w.ceil else ("⌊", "⌋")
        kk = f"{k}" if d == 1 else f"{d}·({k} − 1) − 1"
        rem = o.numerator % s if o.numerator >= 0 else 0
        row = {
            "axis": axis, "in": h, "kernel": k, "stride": s, "padding": p, "dilation": d, "ceil_mode": w.ceil,
            "numerator": o.numerator, "out": o.size, "exact": o.exact, "remainder": rem,
            "expr": f"{rnd[0]}({h} + 2·{p} − {kk})/{s}{rnd[1]} + 1 = {rnd[0]}{o.numerator}/{s}{rnd[1]} + 1 = {o.size}",
            "matches_trace": o.size == oh,
        }
        if not o.exact:
            if w.ceil:
                warnings.append(f"{axis}: {o.numerator}/{s} is not exact; ceil mode adds a last window that runs "
                                f"{s - rem} pixel(s) past the padded input")
            else:
                lost = max(0, rem - p)
                what = (f"{lost} of them image pixel(s), silently dropped" if lost
                        else "only padding, no image pixel is lost")
                row["dropped_pixels"] = lost
                warnings.append(f"{axis}: {o.numerator}/{s} is not exact (remainder {rem}): the last {rem} "
                                f"row(s)/column(s) of the padded input are never covered by a window — {what}")
        rows.append(row)
    return rows, warnings


def _explain_window(data: dict, graph: Graph, node: Node, rfs: dict[int, RF]) -> None:
    windows, _, exact = WINDOWS[node.packet](node, graph)
    x = node.args[0]
    in_shape = graph.shape(x)
    out_shape = graph.values[node.outputs[0]].shape
    nd = len(windows)
    conv = conv_args(node.named_args(), nd) if node.packet in CONVOLUTION else None
    transposed = conv is not None and conv.transposed
    if node.packet in ADAPTIVE_POOLS:
        data["output_size"] = {"formula": "adaptive: window o of m covers [⌊o·n/m⌋, ⌈(o+1)·n/m⌉ − 1]",
                               "axes": [{"axis": AXES[t], "in": n, "out": m, "kernel": json_number(w.k),
                                         "stride": json_number(w.s), "padding": json_number(w.p), "exact": exact}
                                        for t, (n, m, w) in enumerate(zip(in_shape[-nd:], out_shape[-nd:], windows))]}
    elif transposed:
        s, p, d, op = conv.stride, conv.padding, conv.dilation, conv.output_padding
        ks = graph.shape(node.named_args()["weight"])[2:]
        data["output_size"] = {"formula": "OH = (H − 1)·S − 2P + D·(K − 1) + output_padding + 1 (transposed)",
                               "axes": [{"axis": AXES[t], "in": h, "out": oh, "exact": True,
                                         "expr": f"({h} − 1)·{s[t]} − 2·{p[t]} + {d[t]}·({ks[t]} − 1) + {op[t]} + 1"
                                                 f" = {oh}"}
                                        for t, (h, oh) in enumerate(zip(in_shape[-nd:], out_shape[-nd:]))]}
    elif all(isinstance(v, int) for w in windows for v in (w.k, w.s, w.p, w.d)):
        rows, warns = _size_rows(in_shape[-nd:], out_shape[-nd:], windows)
        data["output_size"] = {"formula": SIZE_FORMULA if not any(w.ceil for w in windows)
                               else SIZE_FORMULA.replace("⌊", "⌈").replace("⌋", "⌉"), "axes": rows}
        data["warnings"].extend(warns)
    data["receptive_field"]["steps"].append(
        _window_step(node, windows, rfs.get(x.id), rfs.get(node.outputs[0])))
    if data["kind"] in ("pool", "resize"):
        data["params"]["formula"] = "none: pooling and resizing have no parameters"
        data["macs"].update({"formula": "none counted", "note": ZERO_MAC_NOTE})


def _explain_conv(data: dict, graph: Graph, node: Node, rfs: dict[int, RF], calls: int) -> None:
    _explain_window(data, graph, node, rfs)
    named = node.named_args()
    x, w = graph.shape(node.args[0]), graph.shape(named["weight"])
    out = graph.values[node.outputs[0]].shape
    has_bias = isinstance(named.get("bias"), ValueRef)
    conv = conv_args(named, len(w) - 2)
    groups, transposed = conv.groups, conv.transposed
    c_out, cin_g, ks = w[0], w[1], list(w[2:])
    if transposed:
        c_in, c_out = w[0], w[1] * groups
        cin_g = c_in // groups
    else:
        c_in = cin_g * groups
    weights = conv_weight_count(ks[0], ks[1], c_in, c_out, groups) if len(ks) == 2 and not transposed \
        else prod(ks) * cin_g * c_out
    bias = c_out if has_bias else 0
    k_expr = "·".join(str(k) for k in ks)
    positions = prod(out[2:])
    batch = out[0]
    pos_expr = " × ".join(str(o) for o in out[2:])
    data["params"].update({
        "formula": PARAMS_FORMULA,
        "kernel": ks, "in_channels": c_in, "out_channels": c_out, "groups": groups,
        "weights": weights, "bias": bias, "computed": weights + bias,
        "expr": f"{k_expr}·({c_in}/{groups})·{c_out} + {bias} = {weights + bias:,}",
        "without_weight_sharing": {
            "weights": weights * positions, "biases": bias * positions,
            "expr": f"{weights:,} × {pos_expr} = {weights * positions:,} weights"
                    + (f" (+ {bias:,} × {pos_expr} = {bias * positions:,} biases)" if bias else ""),
        },
    })
    macs = weights * (prod(x[2:]) if transposed else positions) * batch
    data["macs"].update({
        "formula": MACS_FORMULA + (" × N" if batch > 1 else ""),
        "computed": macs * calls,
        "one_call": macs,
        "expr": f"{weights:,} × {pos_expr}" + (f" × {batch}" if batch > 1 else "") + f" = {macs:,}",
        "matches_registry": macs * calls == data["macs"]["total"],
    })
    if transposed:
        data["macs"]["expr"] = (f"{weights:,} × {' × '.join(str(i) for i in x[2:])} (input positions)"
                                + (f" × {batch}" if batch > 1 else "") + f" = {macs:,}")
        data["warnings"].append("transposed convolution: every input position is multiplied by every weight, "
                                "so MACs use the input size")
    if data["params"]["computed"] != data["params"]["total"]:
        data["warnings"].append(f"the module holds {data['params']['total']:,} params, the formula gives "
                                f"{data['params']['computed']:,} (extra parameters of a custom module?)")


def _explain_linear(data: dict, graph: Graph, node: Node, calls: int) -> None:
    named = node.named_args()
    if "mat1" in named or "batch1" in named:        # addmm(self, mat1, mat2), baddbmm(self, batch1, batch2)
        a, b, bias_ref = named.get("mat1", named.get("batch1")), named.get("mat2", named.get("batch2")), node.args[0]
    else:
        a, b, bias_ref = node.args[0], node.args[1], None
    a_shape, b_shape = graph.shape(a), graph.shape(b)
    out = graph.values[node.outputs[0]].shape
    k, n = a_shape[-1], b_shape[-1]
    rows = prod(out[:-1])
    has_bias = isinstance(bias_ref, ValueRef)
    weights = k * n
    bias = n if has_bias else 0
    data["params"].update({
        "formula": "in·out + bias", "in_features": k, "out_features": n, "weights": weights, "bias": bias,
        "computed": weights + bias, "expr": f"{k:,}·{n:,} + {bias:,} = {weights + bias:,}",
    })
    macs = weights * rows
    data["macs"].update({
        "formula": "in·out × rows (a matrix product (rows × in)·(in × out))",
        "computed": macs * calls,
        "one_call": macs,
        "expr": f"{k:,}·{n:,} × {rows:,} = {macs:,}",
        "matches_registry": macs * calls == data["macs"]["total"],
    })
