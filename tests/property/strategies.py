"""Random small CNN DAGs for property-based tests, as plain-data specs and real ``nn.Module``s.

A *spec* is plain data (dicts, lists, ints, strings, bools), so it can be shrunk by hypothesis, printed
in a failure report, and stored in a cnnscope artifact's ``base`` as the keyword argument of
``tests.property.strategies:build_dag`` (which is how the transform tests reload their artifacts)::

    {"input": [C, H, W], "seed": int,
     "nodes": [{"op": "conv", "src": [0], "out": 8, "k": [3, 3], "s": [1, 1], "p": [1, 1],
                "d": [1, 1], "g": 1, "bias": True}, ...],
     "head": {"kind": "gap" | "mean" | "flatten", "in_features": int, "classes": int, "dropout": bool}}

Node ``i`` (1-based) is ``nodes[i - 1]``; index 0 is the input. Ops: ``conv``, ``bn``, ``act``
(``fn``, ``inplace``), ``maxpool`` (``k s p d ceil``), ``avgpool`` (``k s p ceil count_include_pad``),
``add`` and ``cat`` (functional, several ``src``). Every node is consumed: the DAG is a chain with
skip connections, residual blocks (identity or projection shortcut) and inception-style branches
that are concatenated. Shapes are tracked here with PyTorch's own output-size rule, written out
independently of cnnscope, so every add joins equal shapes and every cat equal spatial sizes.

The family covers what the engine must get right: kernels 1..7 (asymmetric too), strides 1..3,
paddings beyond "same", dilations 1..3, grouped and depthwise convs, max/avg pooling with
``ceil_mode`` and padding, BN, nine activations (some in place), residual adds, concatenations, and
three heads (global pool + linear, functional mean + linear, flatten + linear).
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

ACTIVATIONS = ("relu", "relu6", "leaky_relu", "gelu", "silu", "sigmoid", "tanh", "hardswish", "elu")
INPLACE_OK = {"relu", "relu6", "leaky_relu", "silu", "hardswish", "elu"}
MAX_CHANNELS = 16
MAX_CAT_CHANNELS = 32
MAX_FLATTEN_FEATURES = 2048

# ------------------------------------------------------------------------------------ arithmetic


def out_size(h: int, k: int, s: int, p: int, d: int = 1, ceil: bool = False) -> int:
    """PyTorch's output-size rule for conv and pooling along one axis (ATen pooling_output_shape)."""
    num = h + 2 * p - d * (k - 1) - 1
    if not ceil:
        return num // s + 1 if num >= 0 else 0
    if num < 0:
        return 0
    size = -(-num // s) + 1
    if (size - 1) * s >= h + p:          # the last window must start inside the input or left padding
        size -= 1
    return size


def ceil_drops_last_window(h: int, k: int, s: int, p: int, d: int = 1) -> bool:
    """A ``ceil_mode`` pool where PyTorch drops the last window because it would start in the right
    padding (ONNX's ceil_mode keeps it; cnnscope rewrites such pools when it exports and summarises)."""
    num = h + 2 * p - d * (k - 1) - 1
    return num >= 0 and (-(-num // s)) * s >= h + p


# ------------------------------------------------------------------------------------ generation


class _Dag:
    """Nodes and their (C, H, W) shapes while a spec is being drawn."""

    def __init__(self, c: int, h: int, w: int) -> None:
        self.shapes: list[tuple[int, int, int]] = [(c, h, w)]
        self.nodes: list[dict] = []
        self.current = 0

    def add(self, node: dict, shape: tuple[int, int, int]) -> int:
        assert all(d >= 1 for d in shape), (node, shape)
        self.nodes.append(node)
        self.shapes.append(shape)
        return len(self.shapes) - 1


def _divisors(n: int) -> list[int]:
    return [g for g in range(1, n + 1) if n % g == 0]


def _draw_conv(draw, dag: _Dag, src: int, *, out: int | None = None, same: bool = False, stride: int = 1,
               stride_one: bool = False, ungrouped: bool = False) -> int:
    """A conv node reading ``src``. ``same``: odd kernel, "same" padding, given stride (shape-predictable);
    ``stride_one``: any other geometry, stride 1."""
    c, h, w = dag.shapes[src]
    if same:
        k = draw(st.sampled_from([3, 1, 5]))
        d = draw(st.sampled_from([1, 2])) if k > 1 else 1
        ks, ds, ss, ps = [k, k], [d, d], [stride, stride], [d * (k - 1) // 2] * 2
    else:
        square = draw(st.booleans())
        kh = draw(st.sampled_from([3, 1, 2, 5, 7, 4]))
        kw = kh if square else draw(st.sampled_from([3, 1, 2, 5, 7, 4]))
        dh = draw(st.sampled_from([1, 2, 3]))
        dw = dh if square else draw(st.sampled_from([1, 2, 3]))
        sh = 1 if stride_one else draw(st.sampled_from([1, 2, 3]))
        sw = sh if square or stride_one else draw(st.sampled_from([1, 2, 3]))
        ks, ds, ss, ps = [kh, kw], [dh, dw], [sh, sw], []
        for axis, size in enumerate((h, w)):
            if ks[axis] == 1:
                ds[axis] = 1
            reach = ds[axis] * (ks[axis] - 1) + 1
            ps.append(draw(st.integers(0, reach // 2 + 1)))
            if out_size(size, ks[axis], ss[axis], ps[axis], ds[axis]) < 1:   # window wider than the input
                ds[axis] = 1
                ks[axis] = min(ks[axis], size + 2 * ps[axis])
    groups = 1 if ungrouped else draw(st.sampled_from(_divisors(c)))
    if out is None:
        out = groups * draw(st.integers(1, max(1, MAX_CHANNELS // groups)))
    elif out % groups:
        groups = math.gcd(groups, out)
    node = {"op": "conv", "src": [src], "out": out, "k": ks, "s": ss, "p": ps, "d": ds, "g": groups,
            "bias": draw(st.booleans())}
    shape = (out, out_size(h, ks[0], ss[0], ps[0], ds[0]), out_size(w, ks[1], ss[1], ps[1], ds[1]))
    return dag.add(node, shape)


def _draw_pool(draw, dag: _Dag, src: int, downsample: bool = False) -> int | None:
    c, h, w = dag.shapes[src]
    kind = draw(st.sampled_from(["maxpool", "avgpool"]))
    k = draw(st.sampled_from([2, 3]))
    s = draw(st.sampled_from([2, k] if downsample else [2, 1, k]))
    d = draw(st.sampled_from([1, 1, 2] if downsample else [1, 2])) if kind == "maxpool" else 1
    p = draw(st.integers(0, k // 2))        # PyTorch: padding at most half the kernel
    ceil = draw(st.booleans())
    oh, ow = out_size(h, k, s, p, d, ceil), out_size(w, k, s, p, d, ceil)
    if oh < 1 or ow < 1 or not all(_windows_read_input(n, k, s, p, d, ceil) for n in (h, w)):
        return None
    node = {"op": kind, "src": [src], "k": k, "s": s, "p": p, "ceil": ceil}
    if kind == "maxpool":
        node["d"] = d
    else:
        node["count_include_pad"] = draw(st.booleans())
    return dag.add(node, (c, oh, ow))


def _windows_read_input(n: int, k: int, s: int, p: int, d: int, ceil: bool) -> bool:
    """Every pooling window has a tap inside the input. A window of padding only gives −inf (max) or
    0/0 (average without the padding): a degenerate model, not an interesting one."""
    return all(any(0 <= o * s - p + t * d < n for t in range(k)) for o in range(out_size(n, k, s, p, d, ceil)))


def _bn(dag: _Dag, src: int) -> int:
    return dag.add({"op": "bn", "src": [src]}, dag.shapes[src])


def _act(draw, dag: _Dag, src: int) -> int:
    fn = draw(st.sampled_from(ACTIVATIONS))
    return dag.add({"op": "act", "src": [src], "fn": fn, "inplace": fn in INPLACE_OK and draw(st.booleans())},
                   dag.shapes[src])


def _block_conv(draw, dag: _Dag) -> None:
    dag.current = _draw_conv(draw, dag, dag.current)


def _block_conv_bn_act(draw, dag: _Dag) -> None:
    x = _draw_conv(draw, dag, dag.current)
    if draw(st.booleans()):
        x = _bn(dag, x)
    dag.current = _act(draw, dag, x)


def _block_pool(draw, dag: _Dag) -> None:
    x = _draw_pool(draw, dag, dag.current)
    dag.current = x if x is not None else _bn(dag, dag.current)


def _block_conv_pool(draw, dag: _Dag) -> None:
    """conv (stride 1) [→ BN] [→ activation] → a downsampling pool: where ``stride`` applies."""
    x = _draw_conv(draw, dag, dag.current, stride_one=True, ungrouped=draw(st.sampled_from([True, True, False])))
    if draw(st.booleans()):
        x = _bn(dag, x)
    if draw(st.booleans()):
        x = _act(draw, dag, x)
    y = _draw_pool(draw, dag, x, downsample=True)
    dag.current = y if y is not None else x


def _block_residual(draw, dag: _Dag) -> None:
    """conv-bn-act-conv-bn + shortcut (identity, or 1×1 projection when stride or width change)."""
    src = dag.current
    c, h, w = dag.shapes[src]
    stride = draw(st.sampled_from([1, 2])) if min(h, w) >= 4 else 1
    width = draw(st.integers(1, MAX_CHANNELS))
    out = draw(st.sampled_from([c, width]))
    x = _draw_conv(draw, dag, src, same=True, stride=stride)
    x = _act(draw, dag, _bn(dag, x))
    x = _bn(dag, _draw_conv(draw, dag, x, out=out, same=True))
    shortcut = src
    if stride != 1 or out != c:
        shortcut = _bn(dag, _draw_conv_1x1(draw, dag, src, out, stride))
    assert dag.shapes[shortcut] == dag.shapes[x], (dag.shapes[shortcut], dag.shapes[x])
    y = dag.add({"op": "add", "src": [x, shortcut]}, dag.shapes[x])
    dag.current = _act(draw, dag, y)


def _draw_conv_1x1(draw, dag: _Dag, src: int, out: int, stride: int) -> int:
    c, h, w = dag.shapes[src]
    node = {"op": "conv", "src": [src], "out": out, "k": [1, 1], "s": [stride, stride], "p": [0, 0],
            "d": [1, 1], "g": 1, "bias": draw(st.booleans())}
    return dag.add(node, (out, out_size(h, 1, stride, 0), out_size(w, 1, stride, 0)))


def _block_skip_add(draw, dag: _Dag) -> None:
    """Add an earlier node of the same shape to the current one (a long skip connection)."""
    same = [i for i, s in enumerate(dag.shapes) if i != dag.current and s == dag.shapes[dag.current]]
    if not same:
        return _block_residual(draw, dag)
    other = draw(st.sampled_from(same))
    dag.current = dag.add({"op": "add", "src": [dag.current, other]}, dag.shapes[dag.current])


def _block_skip_cat(draw, dag: _Dag) -> None:
    """Concatenate an earlier node of the same spatial size to the current one (DenseNet-like)."""
    c, h, w = dag.shapes[dag.current]
    same = [i for i, s in enumerate(dag.shapes)
            if i != dag.current and s[1:] == (h, w) and s[0] + c <= MAX_CAT_CHANNELS]
    if not same:
        return _block_inception(draw, dag)
    other = draw(st.sampled_from(same))
    srcs = [dag.current, other] if draw(st.booleans()) else [other, dag.current]
    dag.current = dag.add({"op": "cat", "src": srcs}, (c + dag.shapes[other][0], h, w))


def _block_inception(draw, dag: _Dag) -> None:
    """2-3 parallel branches from the current node, concatenated (GoogLeNet-like)."""
    src = dag.current
    ends = []
    for _ in range(draw(st.integers(2, 3))):
        kind = draw(st.sampled_from(["conv", "reduce_conv", "pool_proj"]))
        width = draw(st.integers(1, 8))
        if kind == "conv":
            x = _draw_conv(draw, dag, src, out=width, same=True)
        elif kind == "reduce_conv":
            x = _draw_conv_1x1(draw, dag, src, draw(st.integers(1, 8)), 1)
            x = _draw_conv(draw, dag, x, out=width, same=True)
        else:
            c, h, w = dag.shapes[src]
            x = dag.add({"op": "maxpool", "src": [src], "k": 3, "s": 1, "p": 1, "d": 1, "ceil": False}, (c, h, w))
            x = _draw_conv_1x1(draw, dag, x, width, 1)
        ends.append(x)
    c = sum(dag.shapes[e][0] for e in ends)
    dag.current = dag.add({"op": "cat", "src": ends}, (c, *dag.shapes[src][1:]))


BLOCKS = {
    "conv": _block_conv,
    "conv_bn_act": _block_conv_bn_act,
    "residual": _block_residual,
    "pool": _block_pool,
    "conv_pool": _block_conv_pool,
    "skip_add": _block_skip_add,
    "skip_cat": _block_skip_cat,
    "inception": _block_inception,
}


#: conv → pool twice as likely as the others: it is where `stride` applies, and it needs luck to fit
BLOCK_CHOICES = [*BLOCKS, "conv_pool"]


def _mark_inplace(nodes: list[dict]) -> None:
    """Keep ``inplace`` only where it is safe: the source has no other reader and is not the input or
    another activation (whose saved output an in-place op would clobber)."""
    readers: dict[int, int] = {}
    for node in nodes:
        for s in node["src"]:
            readers[s] = readers.get(s, 0) + 1
    for node in nodes:
        if node["op"] == "act" and node["inplace"]:
            src = node["src"][0]
            if src == 0 or readers[src] != 1 or nodes[src - 1]["op"] == "act":
                node["inplace"] = False


@st.composite
def dag_specs(draw, max_blocks: int = 6, min_size: int = 16, max_size: int = 40,
              stem: str | None = None) -> dict[str, Any]:
    """A random CNN DAG spec on a 1×C×H×W input (C 1..4, H and W in [min_size, max_size]).

    ``stem`` forces the first block (``"conv_pool"``: conv → pool, where ``stride`` applies)."""
    c = draw(st.integers(1, 4))
    h = draw(st.integers(min_size, max_size))
    w = h if draw(st.booleans()) else draw(st.integers(min_size, max_size))
    dag = _Dag(c, h, w)
    stem = stem or draw(st.sampled_from(["conv_bn_act", "conv_pool"]))
    BLOCKS[stem](draw, dag)                # a stem conv, so every transform has something to work on
    for _ in range(draw(st.integers(0, max_blocks - 1))):
        BLOCKS[draw(st.sampled_from(BLOCK_CHOICES))](draw, dag)
    assert dag.current == len(dag.nodes)   # the last node is the output: every node is consumed
    _mark_inplace(dag.nodes)
    fc, fh, fw = dag.shapes[-1]
    kind = draw(st.sampled_from(["gap", "flatten", "mean"]))
    if kind == "flatten" and fc * fh * fw > MAX_FLATTEN_FEATURES:
        kind = "gap"
    head = {"kind": kind, "in_features": fc * fh * fw if kind == "flatten" else fc,
            "classes": draw(st.integers(2, 10)), "dropout": draw(st.booleans())}
    return {"input": [c, h, w], "seed": draw(st.integers(0, 2**16)), "nodes": dag.nodes, "head": head}


# ------------------------------------------------------------------------------------ modules


def _activation(fn: str, inplace: bool) -> nn.Module:
    makers = {
        "relu": lambda: nn.ReLU(inplace=inplace),
        "relu6": lambda: nn.ReLU6(inplace=inplace),
        "leaky_relu": lambda: nn.LeakyReLU(0.1, inplace=inplace),
        "gelu": lambda: nn.GELU(),
        "silu": lambda: nn.SiLU(inplace=inplace),
        "sigmoid": lambda: nn.Sigmoid(),
        "tanh": lambda: nn.Tanh(),
        "hardswish": lambda: nn.Hardswish(inplace=inplace),
        "elu": lambda: nn.ELU(inplace=inplace),
    }
    return makers[fn]()


class WindowSum(nn.Module):
    """Max pooling's window geometry with every input of the window contributing (for gradients).

    Max pooling sends the gradient to one element per window, so the gradient support would miss
    most of the receptive field. This sums the same windows (same kernel, stride, padding, dilation
    and ``ceil_mode`` output size), so every pixel a max-pool window can read gets a gradient.
    """

    def __init__(self, k: int, s: int, p: int, d: int, ceil: bool) -> None:
        super().__init__()
        self.k, self.s, self.p, self.d, self.ceil = k, s, p, d, ceil

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        oh, ow = (out_size(n, self.k, self.s, self.p, self.d, self.ceil) for n in (h, w))
        reach = self.d * (self.k - 1) + 1
        right_h = max(0, (oh - 1) * self.s + reach - h - self.p)
        right_w = max(0, (ow - 1) * self.s + reach - w - self.p)
        x = F.pad(x, (self.p, right_w, self.p, right_h))
        c = x.shape[1]
        ones = torch.ones(c, 1, self.k, self.k, dtype=x.dtype)
        return F.conv2d(x, ones, stride=self.s, dilation=self.d, groups=c)[..., :oh, :ow]


class DagNet(nn.Module):
    """The module a spec describes. Modules are named ``<op><node index>`` (``conv1``, ``bn2``, ...);
    adds and concatenations are functional, as in torchvision's ResNet and DenseNet.

    ``probe=True`` builds the receptive-field probe twin: max pools become :class:`WindowSum`,
    activations become identities (pointwise, so they cannot change which pixels are read, and
    saturating ones could zero a gradient), and weights are positive so no gradient cancels.
    """

    def __init__(self, spec: dict[str, Any], probe: bool = False) -> None:
        super().__init__()
        self.spec = spec
        channels = [spec["input"][0]]
        for i, node in enumerate(spec["nodes"], 1):
            op, c_in = node["op"], channels[node["src"][0]]
            if op == "conv":
                mod = nn.Conv2d(c_in, node["out"], tuple(node["k"]), tuple(node["s"]), tuple(node["p"]),
                                tuple(node["d"]), node["g"], bias=node["bias"])
                channels.append(node["out"])
            elif op == "bn":
                mod = nn.BatchNorm2d(c_in)
            elif op == "act":
                mod = nn.Identity() if probe else _activation(node["fn"], node["inplace"])
            elif op == "maxpool":
                args = (node["k"], node["s"], node["p"], node["d"], node["ceil"])
                mod = WindowSum(*args) if probe else nn.MaxPool2d(*args[:4], ceil_mode=args[4])
            elif op == "avgpool":
                mod = nn.AvgPool2d(node["k"], node["s"], node["p"], ceil_mode=node["ceil"],
                                   count_include_pad=node["count_include_pad"])
            elif op == "add":
                channels.append(c_in)
                continue
            elif op == "cat":
                channels.append(sum(channels[s] for s in node["src"]))
                continue
            else:  # pragma: no cover - a spec this file did not write
                raise ValueError(f"unknown op {op!r}")
            if op != "conv":
                channels.append(c_in)
            self.add_module(f"{op}{i}", mod)
        head = spec["head"]
        if head["kind"] == "gap":
            self.head_pool = nn.AdaptiveAvgPool2d(1)
        if head["kind"] in ("gap", "flatten"):
            self.head_flatten = nn.Flatten()
        if head["dropout"]:
            self.head_drop = nn.Dropout(0.5)
        self.fc = nn.Linear(head["in_features"], head["classes"])
        _init_weights(self, spec["seed"], positive=probe)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every node's output, index 0 being the input."""
        outs = [x]
        for i, node in enumerate(self.spec["nodes"], 1):
            op, src = node["op"], node["src"]
            if op == "add":
                y = outs[src[0]] + outs[src[1]]
            elif op == "cat":
                y = torch.cat([outs[s] for s in src], dim=1)
            else:
                y = getattr(self, f"{op}{i}")(outs[src[0]])
            outs.append(y)
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)[-1]
        kind = self.spec["head"]["kind"]
        if kind == "mean":
            x = x.mean((2, 3))
        else:
            if kind == "gap":
                x = self.head_pool(x)
            x = self.head_flatten(x)
        if self.spec["head"]["dropout"]:
            x = self.head_drop(x)
        return self.fc(x)


@torch.no_grad()
def _init_weights(model: nn.Module, seed: int, positive: bool) -> None:
    """Deterministic weights from ``seed`` (skipped on the meta device): fan-in scaled so activations
    stay O(1); BN gets non-trivial running statistics so it is not an identity."""
    if any(t.device.type == "meta" for t in model.parameters()):
        return
    g = torch.Generator().manual_seed(seed)

    def rand(shape, lo=0.0, hi=1.0):
        return torch.rand(shape, generator=g) * (hi - lo) + lo

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            if positive:
                m.weight.copy_(rand(m.weight.shape, 0.5, 1.0) / fan_in)
            else:
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / math.sqrt(fan_in))
            if m.bias is not None:
                m.bias.copy_(rand(m.bias.shape, 0.0, 0.1) if positive else torch.randn(m.bias.shape, generator=g) * 0.1)
        elif isinstance(m, nn.BatchNorm2d):
            if positive:
                m.weight.copy_(rand(m.weight.shape, 0.5, 1.5))
                m.bias.copy_(rand(m.bias.shape, 0.0, 0.1))
            else:
                m.weight.copy_(rand(m.weight.shape, 0.5, 1.5))
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(rand(m.running_var.shape, 0.5, 1.5))


def build_dag(spec: dict[str, Any], probe: bool = False) -> DagNet:
    """``spec`` -> :class:`DagNet` in eval mode. Importable as ``tests.property.strategies:build_dag``
    so artifacts can rebuild it (``base = {"source": "code", "ref": CODE_REF, "kwargs": {"spec": spec}}``)."""
    return DagNet(spec, probe=probe).eval()


CODE_REF = "tests.property.strategies:build_dag"


def input_for(spec: dict[str, Any], batch: int = 1, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    """A deterministic random input of the spec's size."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *spec["input"], generator=g).to(dtype)


def spatial_modules(spec: dict[str, Any]) -> list[tuple[int, str]]:
    """(node index, module name) for every node that is a module (not add/cat)."""
    return [(i, f"{n['op']}{i}") for i, n in enumerate(spec["nodes"], 1) if n["op"] not in ("add", "cat")]
