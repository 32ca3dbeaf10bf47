"""Per-layer and total statistics: plain data, JSON-serialisable, rendered elsewhere.

Units: ``params`` are element counts; ``macs`` are multiply-accumulates (1 MAC = one
multiply-accumulate of conv/linear/matmul/attention, torchvision's convention); ``flops`` = 2 × MACs;
``*_bytes`` are bytes; ``live_bytes``/``peak_*`` come from tensor liveness (:mod:`.memory`). A module's ``params`` include its children's (each shared parameter once);
its ``macs`` add up every call (a module run twice counts twice).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .engine import Analysis
from .memory import liveness
from .precision import activation_itemsize, check_dtype, weight_bytes

SCHEMA = "cnnscope.summary/1"


@dataclass
class CallRow:
    """One call of a module that ran more than once (its shapes, MACs and RF differ call to call)."""

    input_shape: list | None
    output_shape: list | None
    macs: int
    receptive_field: Any = None
    live_bytes: int | None = None


@dataclass
class LayerRow:
    name: str
    type: str
    depth: int
    output_shape: list | None         # the first call's (``per_call`` has every call's)
    params: int
    macs: int                         # every call's, added up
    receptive_field: Any = None       # the first call's output
    input_shape: list | None = None   # the first call's
    kernel_shape: list | None = None  # ``kernel_size`` of convs and pools, H×W…
    trainable: bool | str | None = None   # True, False, "partial", or None (no params)
    params_percent: float = 0.0       # of the model's params, 0–100
    calls: int = 1                    # how many times the forward ran it (0: never)
    per_call: list[CallRow] = field(default_factory=list)    # filled only when calls > 1
    #: the most activation bytes alive while its first call ran (liveness: analysis.memory); None for ONNX
    live_bytes: int | None = None
    #: backward MACs of every call (input and weight gradients: analysis.training); None unless --training
    backward_macs: int | None = None


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
    input_bytes: int = 0                # the input tensors' bytes
    #: non-zero parameter elements (what unstructured pruning lowers); None when the weights are unknown
    nonzero_params: int | None = None
    non_trainable_params: int = -1      # params with requires_grad=False (frozen); derived below
    #: torchinfo's "estimated total size" for inference: input + every activation kept + params + buffers
    #: (an upper bound: a forward frees most activations early; peak_activation_bytes is the real need)
    estimated_total_bytes: int = -1
    #: activation bytes alive at the forward's peak (input included; inference, from tensor liveness:
    #: see analysis.memory); None when not computed (ONNX files)
    peak_activation_bytes: int | None = None
    #: where the peak is: {"node", "op", "module"}
    peak_at: dict | None = None
    #: weights + buffers + peak activations: what one inference forward needs at least (bytes)
    peak_memory_bytes: int | None = None

    def __post_init__(self) -> None:
        self.non_trainable_params = self.params - self.trainable_params
        self.estimated_total_bytes = self.input_bytes + self.activation_bytes + self.param_bytes + self.buffer_bytes
        if self.peak_activation_bytes is not None:
            self.peak_memory_bytes = self.param_bytes + self.buffer_bytes + self.peak_activation_bytes


@dataclass
class Summary:
    model: str
    input_shape: list[int]
    totals: Totals
    layers: list[LayerRow] = field(default_factory=list)
    analysis: Analysis | None = field(default=None, repr=False, compare=False)
    #: ops counted 0 MACs only because no formula knows them: [{"op", "count", "modules"}]
    uncounted_ops: list[dict] = field(default_factory=list)
    #: the precision what-if the bytes are given in (None: the model's own dtypes)
    dtype: str | None = None
    #: one training step (analysis.training.TrainingCost.to_dict()); None unless recorded for training
    training: dict | None = None
    #: every peer's count of this graph (analysis.conventions.convention_counts); None unless asked
    conventions: dict | None = None
    #: how the model was made, when its file says (an ONNX file's ``cnnscope.history``: quantize writes it)
    history: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "model": self.model,
            "input_shape": list(self.input_shape),
            "totals": asdict(self.totals),
            "layers": [asdict(r) for r in self.layers],
            "uncounted_ops": [dict(u) for u in self.uncounted_ops],
            "dtype": self.dtype,
            "training": self.training,
            "conventions": self.conventions,
            "history": list(self.history),
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


def written_bytes(graph, itemsize=None) -> int:
    """Bytes the forward writes that a later op or the caller reads: every new tensor and every in-place
    update (``relu_`` rewrites its input), not views (which write nothing), nor outputs nobody reads
    (max-pool's argmax indices, batch norm's saved statistics: written only for a backward). ONNX
    summaries use the same rule, so a model and its export agree (resnet18: 32,921,504 B both) unless
    an optimiser changed the graph (a BatchNorm folded into its conv writes its outputs no more)."""
    read = set(graph.consumers()) | set(graph.outputs)
    size = itemsize or (lambda value: value.itemsize)
    return sum(graph.values[v].numel * size(graph.values[v]) for n in graph.ops() if n.writes for v in n.outputs
               if v in read)


def _kernel_shape(model, name: str) -> list | None:
    """``kernel_size`` as a list, one entry per spatial axis (``MaxPool2d(3)`` is 3×3)."""
    try:
        module = model.get_submodule(name)
    except AttributeError:
        return None
    k = getattr(module, "kernel_size", None)
    if isinstance(k, int):
        rank = type(module).__name__[-2:]
        return [k] * {"1d": 1, "2d": 2, "3d": 3}.get(rank, 1)
    if isinstance(k, (tuple, list)) and all(isinstance(x, int) for x in k):
        return list(k)
    return None


def _trainable(info) -> bool | str | None:
    if not info.params:
        return None
    if info.trainable_params == info.params:
        return True
    return False if info.trainable_params == 0 else "partial"


def _call_macs(graph, call) -> int:
    """MACs of the ops one call ran (its node range, inside its own scope)."""
    prefix = call.name + "."
    return sum(n.macs for n in graph.nodes[call.first_node:call.last_node]
               if n.kind == "op" and n.macs and (n.scope == call.name or n.scope.startswith(prefix)))


def build_summary(analysis: Analysis, receptive_field: bool = True, dtype: str | None = None,
                  optimizer: str = "sgd", conventions: bool = False) -> Summary:
    """The summary of one recorded forward. ``dtype`` (float32, float16, bfloat16, int8): report weight
    and activation bytes as they would be in that precision (see :mod:`.precision`); counts are unchanged.
    A training recording (``analyze(..., training=True)``) adds the cost of one training step with
    ``optimizer`` (see :mod:`.training`); ``conventions`` adds every peer tool's count of the same graph
    (see :mod:`.conventions`)."""
    check_dtype(dtype)
    cost = None
    if analysis.graph.training:
        from .training import training_cost

        cost = training_cost(analysis, optimizer)
    itemsize = activation_itemsize(dtype)      # bytes per element of a value (as recorded without dtype)
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

    rf_by_call: list[Any] = [None] * len(graph.calls)
    rf_total = None
    if receptive_field:
        from .receptive_field import receptive_fields_by_call

        rf_by_call, rf_total = receptive_fields_by_call(graph)
    memory = liveness(graph, itemsize)
    calls_by_module: dict[str, list[CallRow]] = {}
    for call, rf in zip(graph.calls, rf_by_call):
        calls_by_module.setdefault(call.name, []).append(
            CallRow(_shape_of(analysis, call.inputs), _shape_of(analysis, call.outputs), _call_macs(graph, call), rf,
                    memory.during(call)))

    root = graph.modules[""]
    rows = []
    for name, info in graph.modules.items():
        if name == "":
            continue
        calls = calls_by_module.get(name, [])
        first = calls[0] if calls else CallRow(None, None, 0)
        rows.append(LayerRow(
            name, info.type, info.depth, first.output_shape, info.params, macs_by_module.get(name, 0),
            first.receptive_field, input_shape=first.input_shape, kernel_shape=_kernel_shape(model, name),
            trainable=_trainable(info), params_percent=100.0 * info.params / root.params if root.params else 0.0,
            calls=len(calls), per_call=calls if len(calls) > 1 else [], live_bytes=first.live_bytes,
            backward_macs=cost.backward_by_module.get(name, 0) if cost is not None else None))

    param_bytes, buffer_bytes = weight_bytes(model, graph, dtype)
    activation_bytes = written_bytes(graph, itemsize)
    input_bytes = sum(graph.values[v].numel * itemsize(graph.values[v]) for v in graph.inputs)
    macs = graph.totals.get("macs", 0)
    totals = Totals(root.params, root.trainable_params, param_bytes, buffer_bytes, macs, 2 * macs,
                    activation_bytes, rf_total, input_bytes=input_bytes, nonzero_params=analysis.nonzero_params,
                    peak_activation_bytes=memory.peak_bytes, peak_at=memory.to_dict()["at"])
    return Summary(analysis.name, list(analysis.input_shape), totals, rows, analysis, list(analysis.uncounted),
                   dtype=dtype, training=cost.to_dict() if cost is not None else None,
                   conventions=_conventions(analysis) if conventions else None)


def _conventions(analysis: Analysis) -> dict:
    from .conventions import convention_counts

    return convention_counts(analysis)


def summary(model_or_spec, input_size=None, weights: str | None = None, batch_size: int = 1,
            dtype: str | None = None, training: bool = False, optimizer: str = "sgd",
            conventions: bool = False) -> Summary:
    """Analyse a model (an ``nn.Module`` or any MODEL string) without allocating its weights.

    >>> s = summary("resnet50")
    >>> s.totals.params, s.totals.macs        # 25_557_032 params, ~4.09 G MACs (FLOPs = 2 × MACs)
    """
    from .engine import analyze

    check_dtype(dtype)
    if training:
        from .training import check_optimizer

        check_optimizer(optimizer)
    return build_summary(analyze(model_or_spec, input_size=input_size, weights=weights, batch_size=batch_size,
                                 training=training), dtype=dtype, optimizer=optimizer, conventions=conventions)
