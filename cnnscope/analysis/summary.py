"""Per-layer and total statistics: plain data, JSON-serialisable, rendered elsewhere.

Units: ``params`` are element counts; ``macs`` are multiply-accumulates (1 MAC = one
multiply-accumulate of conv/linear/matmul/attention, torchvision's convention); ``flops`` = 2 × MACs;
``*_bytes`` are bytes. A module's ``params`` include its children's (each shared parameter once);
its ``macs`` add up every call (a module run twice counts twice).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .engine import Analysis

SCHEMA = "cnnscope.summary/1"


@dataclass
class LayerRow:
    name: str
    type: str
    depth: int
    output_shape: list | None
    params: int
    macs: int
    receptive_field: Any = None


@dataclass
class Totals:
    params: int
    trainable_params: int
    param_bytes: int
    buffer_bytes: int
    macs: int
    flops: int
    activation_bytes: int
    receptive_field: Any = None
    non_trainable_params: int = -1      # params with requires_grad=False (frozen); derived below

    def __post_init__(self) -> None:
        self.non_trainable_params = self.params - self.trainable_params


@dataclass
class Summary:
    model: str
    input_shape: list[int]
    totals: Totals
    layers: list[LayerRow] = field(default_factory=list)
    analysis: Analysis | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "model": self.model,
            "input_shape": list(self.input_shape),
            "totals": asdict(self.totals),
            "layers": [asdict(r) for r in self.layers],
        }

    def __str__(self) -> str:
        """``print(summary)`` shows the table ``cnnscope summary`` prints (rendering lives in report/)."""
        from ..report.render import render

        return render(self.to_dict(), "table")

    def __repr__(self) -> str:
        t = self.totals
        return (f"<Summary {self.model}: input {'×'.join(map(str, self.input_shape))}, {t.params:,} params, "
                f"{t.macs:,} MACs, {len(self.layers)} layers>")

    def layer(self, name: str) -> LayerRow:
        for r in self.layers:
            if r.name == name:
                return r
        from ..errors import UnknownNameError

        raise UnknownNameError("layer", name, [r.name for r in self.layers])


def _shape_of(analysis: Analysis, value_ids: list[int]) -> list | None:
    shapes = [list(analysis.graph.values[v].shape) for v in value_ids]
    if not shapes:
        return None
    return shapes[0] if len(shapes) == 1 else shapes


def build_summary(analysis: Analysis, receptive_field: bool = True) -> Summary:
    graph = analysis.graph
    model = analysis.model
    macs_by_module: dict[str, int] = {}
    for node in graph.ops():
        if not node.macs:
            continue
        scope = node.scope
        while True:
            macs_by_module[scope] = macs_by_module.get(scope, 0) + node.macs
            if not scope:
                break
            scope = scope.rsplit(".", 1)[0] if "." in scope else ""
    first_call: dict[str, list[int]] = {}
    for call in graph.calls:
        first_call.setdefault(call.name, call.outputs)

    rf_by_module: dict[str, Any] = {}
    rf_total = None
    if receptive_field:
        try:
            from .receptive_field import receptive_fields_by_module
        except ImportError:  # pragma: no cover - the RF module is part of the package
            receptive_fields_by_module = None
        if receptive_fields_by_module is not None:
            rf_by_module, rf_total = receptive_fields_by_module(graph)

    rows = []
    for name, info in graph.modules.items():
        if name == "":
            continue
        rows.append(LayerRow(name, info.type, info.depth, _shape_of(analysis, first_call.get(name, [])),
                             info.params, macs_by_module.get(name, 0), rf_by_module.get(name)))

    root = graph.modules[""]
    param_bytes = 0
    seen: set[int] = set()
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            param_bytes += p.numel() * p.element_size()
    buffer_bytes = sum(b.numel() * b.element_size() for b in model.buffers())
    activation_bytes = sum(graph.values[v].nbytes for n in graph.ops() if not n.aliases for v in n.outputs)
    macs = graph.totals.get("macs", 0)
    totals = Totals(root.params, root.trainable_params, param_bytes, buffer_bytes, macs, 2 * macs,
                    activation_bytes, rf_total)
    return Summary(analysis.name, list(analysis.input_shape), totals, rows, analysis)


def summary(model_or_spec, input_size=None, weights: str | None = None, batch_size: int = 1) -> Summary:
    """Analyse a model (an ``nn.Module`` or any MODEL string) without allocating its weights.

    >>> s = summary("resnet50")
    >>> s.totals.params, s.totals.macs        # 25_557_032 params, ~4.09 G MACs (FLOPs = 2 × MACs)
    """
    from .engine import analyze

    return build_summary(analyze(model_or_spec, input_size=input_size, weights=weights, batch_size=batch_size))
