"""``ceil_mode`` pools whose last window PyTorch drops: made explicit in the ONNX graph.

PyTorch (and onnxruntime's kernels) drop the last window of a ``ceil_mode`` pool when it would start
in the right padding: along one axis of size n, with kernel k, stride s, padding p and dilation d,

    out = ⌈(n + 2p − d(k−1) − 1) / s⌉ + 1,   minus 1 if (out − 1)·s ≥ n + p.

ONNX shape inference keeps that window, so a file holding such a pool carries static shapes one
larger than what runs, and a node after it that fixes a size (a Gemm after Flatten) makes the file
fail to load. The fix here changes the node, not what it computes:

* when PyTorch drops the window, its output equals the floor-mode output (the ceil output exceeds
  the floor output by at most one, and a dropped window means it did), and every floor-mode window
  lies inside the padded input, so ``ceil_mode = 0`` with the same pads is exact for max and average
  pools alike (an average's divisor is then the full window in both);
* along an axis of the same node where the ceil window is kept, floor mode needs ``e`` more end
  padding to keep it; that is exact for MaxPool (padding never wins a max) and for AveragePool with
  ``count_include_pad = 0`` (padding is not counted). An AveragePool counting padding on such a
  mixed node, or a dilated MaxPool needing an end padding not smaller than its kernel (which
  onnxruntime refuses), is left as it is: export verification reports it if the file then fails,
  and the ONNX summary measures the shapes after it with onnxruntime.

The graph is fixed one pool at a time in node order, re-inferring shapes in between, because a
fixed pool changes the input sizes of the pools after it.
"""
from __future__ import annotations

from .onnx_shapes import infer_shapes, weightless_copy

POOL_OPS = ("MaxPool", "AveragePool")


def pool_output(n: int, k: int, s: int, p_begin: int, p_end: int, d: int, ceil: bool, torch_rule: bool) -> int:
    """Output size along one axis: ONNX's rule (``torch_rule=False``) or PyTorch's (drops the last
    window when it would start in the right padding). E.g. n=5, k=2, s=2, p=1: ONNX ceil 4, PyTorch 3."""
    num = n + p_begin + p_end - d * (k - 1) - 1
    if num < 0:
        return 0
    out = (-(-num // s) if ceil else num // s) + 1
    if ceil and torch_rule and (out - 1) * s >= n + p_begin:
        out -= 1
    return out


def _attr(node, name: str, default):
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _set_attr(node, name: str, value) -> None:
    import onnx

    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(kept)
    node.attribute.append(onnx.helper.make_attribute(name, value))


def _plan_fix(node, spatial: tuple[int, ...]) -> tuple[str, list[int] | None]:
    """("ok" | "fix" | "cannot", new pads or None) for one ceil_mode pool with input spatial dims."""
    rank = len(spatial)
    k = list(_attr(node, "kernel_shape", []))
    s = list(_attr(node, "strides", [1] * rank))
    d = list(_attr(node, "dilations", [1] * rank))
    pads = list(_attr(node, "pads", [0] * (2 * rank)))
    if _attr(node, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET") or len(k) != rank:
        return "ok", None
    new_pads, differs, mixed = list(pads), False, False
    for i, n in enumerate(spatial):
        b, e = pads[i], pads[rank + i]
        onnx_out = pool_output(n, k[i], s[i], b, e, d[i], True, False)
        torch_out = pool_output(n, k[i], s[i], b, e, d[i], True, True)
        floor_out = pool_output(n, k[i], s[i], b, e, d[i], False, False)
        differs |= onnx_out != torch_out
        if torch_out != floor_out:            # a kept ceil window: floor mode needs more end padding
            mixed = True
            new_pads[rank + i] = e + (torch_out - 1) * s[i] + d[i] * (k[i] - 1) + 1 - (n + b + e)
    if not differs:
        return "ok", None
    if mixed and node.op_type == "AveragePool" and _attr(node, "count_include_pad", 0):
        return "cannot", None
    if any(new_pads[rank + i] >= k[i] for i in range(rank)):    # onnxruntime requires pads < kernel
        return "cannot", None
    return "fix", new_pads


def fix_ceil_mode_pools(model) -> tuple[list[str], list[str]]:
    """Rewrite, in place, every ceil_mode pool of ``model`` (a ModelProto) whose static output ONNX
    would get wrong. Returns (names of the nodes changed, outputs of the pools that could not be
    changed exactly: their static shapes, and those after them, are still ONNX's, not what runs).
    Needs static spatial input sizes (pools after a symbolic size are left alone)."""
    pools = [n for n in model.graph.node if n.op_type in POOL_OPS and _attr(n, "ceil_mode", 0)]
    fixed: list[str] = []
    unfixable: list[str] = []
    done: set[int] = set()
    for _ in range(len(pools)):
        shapes = infer_shapes(weightless_copy(model))
        target = None
        for idx, node in enumerate(pools):
            if idx in done:
                continue
            dims = (shapes.get(node.input[0]) or (None, 0))[0]
            if not dims or any(not isinstance(x, int) for x in dims[2:]):
                done.add(idx)
                continue
            verdict, pads = _plan_fix(node, tuple(dims[2:]))
            if verdict != "fix":
                done.add(idx)
                if verdict == "cannot":
                    unfixable.append(node.output[0])
                continue
            target = (idx, node, pads)
            break
        if target is None:
            break
        idx, node, pads = target
        _set_attr(node, "ceil_mode", 0)
        _set_attr(node, "pads", [int(p) for p in pads])
        # the inferred shapes the exporter stored downstream are stale: drop them, inference redoes them
        del model.graph.value_info[:]
        done.add(idx)
        fixed.append(node.name or node.op_type)
    return fixed, unfixable


def downstream_values(graph, starts: list[str]) -> list[str]:
    """``starts`` and every value computed from them (graph nodes are in topological order)."""
    seen = set(starts)
    for node in graph.node:
        if any(i in seen for i in node.input):
            seen.update(o for o in node.output if o)
    return sorted(seen)
