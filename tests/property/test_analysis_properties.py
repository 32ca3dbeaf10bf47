"""Properties of the analysis on random CNN DAGs (see ``strategies.py``), each against a second method.

- params: cnnscope's totals and per-layer counts equal ``sum(p.numel())`` over the real module;
- MACs: equal a per-layer formula written here from the module definitions (``Conv2d``: output
  elements × C_in/groups × K_h × K_w; ``Linear``: rows × in × out; everything else 0, torchvision's
  convention) applied to output shapes measured with forward hooks on a real forward pass;
- output shapes: every layer's equals the real forward pass's;
- receptive field: every node's analytic RF equals the support of the gradient of one output
  position with respect to the input, measured on real tensors (the probe twin of the model:
  max-pool windows summed, positive weights, identity activations, float64).
"""
from __future__ import annotations

import math

import torch
from hypothesis import event, given, note
from hypothesis import strategies as st
from torch import nn

import cnnscope
from cnnscope.analysis.receptive_field import receptive_fields, total_receptive_field

from .strategies import build_dag, dag_specs, input_for


# ------------------------------------------------------------------------------- second methods

def independent_macs(module: nn.Module, out_shape: tuple[int, ...]) -> int:
    """MACs of one module from its definition and its measured output shape (1 MAC = one multiply-add)."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return math.prod(out_shape) * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return math.prod(out_shape[:-1]) * module.in_features * module.out_features
    return 0   # BN, activations, pooling, flatten, dropout: no multiply-accumulates by convention


def real_forward_shapes(model: nn.Module, x: torch.Tensor) -> tuple[dict[str, tuple[int, ...]], torch.Tensor]:
    """Output shape of every named module on a real forward pass (forward hooks)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def hook(name):
        def record(module, inputs, output):
            shapes.setdefault(name, tuple(output.shape))
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    try:
        with torch.no_grad():
            y = model(x)
    finally:
        for h in handles:
            h.remove()
    return shapes, y


# ------------------------------------------------------------------------------- counts and shapes

@given(spec=dag_specs(), batch=st.integers(1, 2))
def test_params_macs_and_shapes_equal_a_real_forward(spec, batch):
    model = build_dag(spec)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = input_for(spec, batch)
    shapes, y = real_forward_shapes(model, x)

    s = cnnscope.summary(model, input_size=spec["input"], batch_size=batch)

    modules = dict(model.named_modules())
    assert s.totals.params == sum(p.numel() for p in model.parameters())
    expected_macs = 0
    for name, shape in shapes.items():
        row = s.layer(name)
        module = modules[name]
        assert row.output_shape == list(shape), name
        assert row.params == sum(p.numel() for p in module.parameters()), name
        macs = independent_macs(module, shape)
        assert row.macs == macs, (name, row.macs, macs)
        expected_macs += macs
    assert {r.name for r in s.layers} == set(shapes), "every layer ran once and has a row"
    assert s.totals.macs == expected_macs
    assert s.totals.flops == 2 * expected_macs
    graph = s.analysis.graph
    assert [graph.values[v].shape for v in graph.outputs] == [tuple(y.shape)]
    # the user's model is neither moved nor changed
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.device.type == "cpu" for p in model.parameters())


# ------------------------------------------------------------------------------- receptive field

def node_value_ids(graph, spec) -> dict[int, int]:
    """Spec node index -> graph value id of that node's output (modules via their calls; the
    functional adds and cats of the model's own forward, in order)."""
    ids: dict[int, int] = {}
    merges = [n for n in graph.ops() if n.scope == "" and n.packet in ("aten.add", "aten.cat")]
    merge_nodes = iter(merges)
    for i, node in enumerate(spec["nodes"], 1):
        if node["op"] in ("add", "cat"):
            op = next(merge_nodes)
            assert op.packet == f"aten.{node['op']}", (i, op.packet)
            ids[i] = op.outputs[0]
        else:
            (call,) = graph.calls_of(f"{node['op']}{i}")
            ids[i] = call.outputs[0]
    return ids


def centred_index(ax, n_in: int, n_out: int) -> int:
    """The output index whose region is closest to the input's centre (most likely fully inside)."""
    i = round((float(ax.padding) + (n_in - 1) / 2 - (float(ax.size) - 1) / 2) / float(ax.jump))
    return min(max(i, 0), n_out - 1)


def gradient_boxes(x: torch.Tensor, y: torch.Tensor, positions: list[tuple[int, int]]):
    """For each output position (i, j) of ``y`` (all channels), the bounding box (row0, row1, col0, col1)
    of the input pixels with a non-zero gradient, or None when it reads no input pixel."""
    grads = torch.zeros(len(positions), *y.shape, dtype=y.dtype)
    for n, (i, j) in enumerate(positions):
        grads[n, :, :, i, j] = 1
    (g,) = torch.autograd.grad(y, x, grads, retain_graph=True, is_grads_batched=True)
    support = g.abs().sum(dim=(1, 2)) > 0            # positions × H × W
    boxes = []
    for s in support:
        rows, cols = s.any(1).nonzero().flatten(), s.any(0).nonzero().flatten()
        boxes.append(None if rows.numel() == 0 else (int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])))
    return boxes


@given(spec=dag_specs())
def test_receptive_field_equals_gradient_support(spec):
    model = build_dag(spec)
    graph = cnnscope.analyze(model, input_size=spec["input"]).graph
    rfs = receptive_fields(graph)
    ids = node_value_ids(graph, spec)

    probe = build_dag(spec, probe=True).double()
    c, h, w = spec["input"]
    x = (torch.rand(1, c, h, w, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.5)
    x.requires_grad_(True)
    outs = probe.features(x)

    exact_checks = 0
    for k, vid in ids.items():
        rf = rfs.get(vid)
        assert rf is not None and not rf.is_global, (k, rf)
        y = outs[k]
        oh, ow = y.shape[-2:]
        ax_h, ax_w = rf.axes
        rows = sorted({0, centred_index(ax_h, h, oh), oh - 1})
        cols = sorted({0, centred_index(ax_w, w, ow), ow - 1})
        positions = [(i, j) for i in rows for j in cols]
        for (i, j), box in zip(positions, gradient_boxes(x, y, positions)):
            (r0, r1), (c0, c1) = ax_h.interval(i), ax_w.interval(j)
            where = f"node {k} ({spec['nodes'][k - 1]['op']}) at ({i}, {j}): rf {rf}, gradient box {box}"
            inside = r0 >= 0 and c0 >= 0 and r1 <= h - 1 and c1 <= w - 1
            if inside and not rf.approximate:
                # the whole region lies in the image: no padding is read on any path, so the
                # extreme taps of every path reach the input and the support spans the region exactly
                assert box == (r0, r1, c0, c1), where
                exact_checks += 1
            elif box is not None:
                # near the border the region is clipped, and padding read by intermediate layers
                # may shrink the support further; an envelope (approximate) RF only contains it
                assert max(r0, 0) <= box[0] and box[1] <= min(r1, h - 1), where
                assert max(c0, 0) <= box[2] and box[3] <= min(c1, w - 1), where
    note(f"exact region comparisons: {exact_checks}")
    event("exact region comparisons", "none" if exact_checks == 0 else "1-9" if exact_checks < 10 else "10+")

    # the network's RF: the last feature map before the head makes it global
    last = rfs[ids[len(spec["nodes"])]]
    total = total_receptive_field(graph)
    assert total is not None and total.axes == last.axes
    s = cnnscope.summary(model, input_size=spec["input"])
    assert s.totals.receptive_field == last.to_json()
