"""``cnnscope quantize``: int8 ONNX by onnxruntime's quantizer, verified and measured before it is written.

The path, the same every time:

1. **float ONNX**: a PyTorch source (name, user code, artifact) is exported and verified by
   :func:`~cnnscope.export.onnx_export.export_onnx` (batch 1); an ``.onnx`` file is read as it is;
2. **pre-processing** (``onnxruntime.quantization.quant_pre_process``): shape inference and
   onnxruntime's basic graph optimisations, which fold BatchNormalization into the preceding Conv
   (a BN node left in the graph would stay float and split every int8 run in two);
3. **quantization**, one of
   - *static* (default): QDQ format, int8 weights per output channel (``per_channel=False``: one scale
     per tensor), activations uint8 (or int8) with scales from calibration images run through the
     float model (MinMax, Entropy or Percentile ranges), or
   - *dynamic* (``dynamic=True``): int8 weights, activations quantized on the fly per batch by
     ``DynamicQuantizeLinear`` for Conv/MatMul/Gemm only (no calibration; for linear-heavy models);
4. **verification**: ``onnx.checker``; onnxruntime loads and runs the int8 file; its outputs are
   compared with the float file's on evaluation images (``--data``'s ``val/``, else seeded N(0, 1)
   inputs, labelled as such): **top-1 agreement** (the share of images whose arg-max class is the
   same) and the **relative error** ‖int8 − float‖₂ / ‖float‖₂ over all outputs; with labels, top-1
   accuracy of both. Agreement under ``min_agreement`` raises :class:`QuantizeFailed` (exit 1) and
   nothing is written;
5. **measurement**: file sizes, onnxruntime latency of both files at batch 1 on ``threads`` threads
   (median and interquartile range of interleaved runs), and which nodes stay float, with the reason;
6. only then the file is moved into place (atomically, never onto an input), carrying its history
   in the ONNX metadata (``cnnscope.model``, ``cnnscope.plan``: the artifact's steps,
   ``cnnscope.quantization``: how it was quantized), which ``cnnscope summary`` shows.

Why calibration images matter: static quantization fixes each activation's int8 range from the
values the calibration inputs produce. Random noise produces ranges no real image does (first-layer
responses to noise are small, deeper ones are not what the classifier was trained on), so the scales
fit nothing real and the int8 model's accuracy on real images is arbitrary. ``calibration="random"``
exists for size and latency measurements only and says so.
"""
from __future__ import annotations

import fnmatch
import json
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CheckFailed, CnnscopeError
from ..progress import Progress, no_progress

METHODS = ("minmax", "entropy", "percentile")
ACTIVATION_TYPES = ("uint8", "int8")
DEFAULT_CALIBRATION_IMAGES = 100
DEFAULT_EVAL_IMAGES = 500
#: agreement below this on real images fails the command (a broken calibration gives far less)
DEFAULT_MIN_AGREEMENT = 0.9
DEFAULT_LATENCY_RUNS = 30

#: nodes the quantizer adds around the original ones: plumbing, not layers
_PLUMBING = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}
#: integer kernels that replace an original node in dynamic (and QOperator) quantization
_INTEGER_OPS = {"ConvInteger", "MatMulInteger", "QLinearConv", "QLinearMatMul", "QGemm", "QAttention",
                "DynamicQuantizeLSTM", "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool"}
#: ops without arithmetic on pixels (shape plumbing): neither int8 nor float work worth a line
_SHAPE_OPS = {"Shape", "Constant", "ConstantOfShape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Reshape",
              "Flatten", "Identity", "Cast", "Range", "Size"}


class QuantizeFailed(CheckFailed):
    """The int8 model failed verification or the agreement budget (exit code 1); nothing was written."""

    def __init__(self, message: str, report: "QuantizeReport | None" = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class NodeStatus:
    """One original (pre-processed float) compute node and how it runs in the int8 file."""

    name: str
    module: str | None      # the PyTorch module it came from, when the node name says
    op: str
    int8: bool
    reason: str             # why it stays float ("" when int8)
    macs: int               # 1 MAC = one multiply-accumulate, at batch 1
    fused: bool = False     # gone from the int8 graph: folded into the previous int8 node (a Relu, a Clip)


@dataclass
class Latency:
    """onnxruntime CPU latency of one file at batch 1, milliseconds."""

    median_ms: float
    iqr_ms: float           # interquartile range of the runs
    runs: int


@dataclass
class Agreement:
    """int8 outputs against the float file's on the same evaluation inputs."""

    inputs: str                         # "val images" | "random N(0,1) inputs"
    images: int
    top1_agreement: float | None        # None when the first output is not (N, classes)
    relative_error: float               # ‖int8 − float‖₂ / ‖float‖₂ over every output element
    max_abs_diff: float
    top1_float: float | None = None     # with labels (--data val/)
    top1_int8: float | None = None


@dataclass
class QuantizeReport:
    """What :func:`quantize` did, as plain data (``to_dict()`` is ``cnnscope quantize -f json``)."""

    model: str
    path: str
    mode: str                           # "static" | "dynamic"
    format: str                         # "QDQ" (static) | "integer ops" (dynamic)
    weights: str                        # "int8 per-channel" | "int8 per-tensor"
    activations: str                    # "uint8 (calibrated MinMax)" | "int8 ..." | "dynamic uint8"
    calibration: dict[str, Any] | None  # {"source": "data"|"random", "images", "method"}
    float_file_bytes: int
    int8_file_bytes: int
    threads: int
    float_latency: Latency | None
    int8_latency: Latency | None
    agreement: Agreement
    min_agreement: float | None
    nodes: list[NodeStatus]
    history: list[str]                  # the artifact's plan, then this step
    seconds: float
    checker: str = "ok"
    notes: list[str] = field(default_factory=list)

    @property
    def int8_macs_fraction(self) -> float:
        """The share of the model's MACs that run in int8 kernels."""
        total = sum(n.macs for n in self.nodes)
        return sum(n.macs for n in self.nodes if n.int8) / total if total else 0.0

    @property
    def size_ratio(self) -> float:
        return self.int8_file_bytes / self.float_file_bytes if self.float_file_bytes else 0.0

    @property
    def speedup(self) -> float | None:
        """float latency ÷ int8 latency (above 1: the int8 file is faster)."""
        if self.float_latency is None or self.int8_latency is None or not self.int8_latency.median_ms:
            return None
        return self.float_latency.median_ms / self.int8_latency.median_ms

    @property
    def passed(self) -> bool:
        a = self.agreement.top1_agreement
        return self.checker == "ok" and (self.min_agreement is None or a is None or a >= self.min_agreement)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(schema="cnnscope.quantize/1", int8_macs_fraction=self.int8_macs_fraction,
                 size_ratio=self.size_ratio, speedup=self.speedup, passed=self.passed,
                 int8_nodes=sum(n.int8 for n in self.nodes), macs=sum(n.macs for n in self.nodes),
                 int8_macs=sum(n.macs for n in self.nodes if n.int8))
        return d


# ----------------------------------------------------------------------------------- validation


def _validate(method: str, activations: str, calibration: str | None, data: str | None, dynamic: bool,
              calibration_images: int, eval_images: int, threads: int, min_agreement: float | None,
              latency_runs: int) -> str | None:
    """Refuse bad settings before anything is built; returns the calibration source (None: dynamic)."""
    from ..units import finite

    if method not in METHODS:
        raise CnnscopeError(f"unknown calibration method '{method}'; choose {', '.join(METHODS)}")
    if activations not in ACTIVATION_TYPES:
        raise CnnscopeError(f"--activations must be uint8 or int8, got '{activations}'")
    for value, what, lo in ((calibration_images, "--calibration-images", 1), (eval_images, "--eval-images", 1),
                            (threads, "--threads", 1), (latency_runs, "--latency-runs", 0)):
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= 1_000_000:
            raise CnnscopeError(f"{what} must be an integer from {lo} to 1000000, got {value!r}")
    if min_agreement is not None:
        finite(min_agreement, "--min-agreement")
        if not 0 <= min_agreement <= 1:
            raise CnnscopeError(f"--min-agreement is a fraction from 0 to 1 (0.99 = 99%), got {min_agreement}")
    if calibration not in (None, "data", "random"):
        raise CnnscopeError(f"--calibration must be data or random, got '{calibration}'")
    if dynamic:
        if calibration == "random":
            raise CnnscopeError("--dynamic needs no calibration (activations are quantized per batch at run "
                                "time); drop --calibration random")
        return None
    if calibration == "random":
        return "random"
    if data is None:
        raise CnnscopeError("static quantization needs calibration images: give --data DIR (ImageFolder train/ "
                            "and val/; random inputs give activation scales that fit no real image, so the int8 "
                            "model's accuracy would be arbitrary), --calibration random to measure size and "
                            "latency only, or --dynamic")
    return "data"


# -------------------------------------------------------------------------------------- inputs


@dataclass
class _Inputs:
    """Calibration inputs and evaluation inputs (+ labels), as float32 numpy batches of one image."""

    calibration: list
    evaluation: list
    labels: list[int] | None
    description: str
    notes: list[str]


def _input_chw(proto) -> tuple[int, ...]:
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    chw = tuple(d.dim_value for d in dims[1:])
    if not chw or any(d <= 0 for d in chw):
        raise CnnscopeError("the ONNX file's input has symbolic channel or spatial dimensions; quantize needs a "
                            "file with a fixed C×H×W input (export it with a fixed --input-size)")
    return chw


def _gather_inputs(src, chw, calibration: str | None, data: str | None, n_calib: int, n_eval: int,
                   mean: str | None, std: str | None, seed: int, progress: Progress) -> _Inputs:
    import numpy as np

    notes: list[str] = []
    if data is not None:
        if len(chw) != 3:
            raise CnnscopeError(f"--data holds images, but the model's input is {'×'.join(map(str, chw))} "
                                f"(not C×H×W)")
        from ..data import data_loaders, normalisation_for

        norm = normalisation_for(src, chw[0], mean, std)
        splits = data_loaders(data, tuple(chw), norm, batch_size=1, seed=seed)
        if norm is None:
            notes.append("images are not normalised (no --mean/--std, no torchvision weights): pixels in [0, 1]")
        calib: list = []
        if calibration == "data":
            with progress(splits.train, "reading calibration images") as batches:
                for x, _ in batches:
                    calib.append(x.numpy())
                    if len(calib) >= n_calib:
                        break
            if len(calib) < n_calib:
                notes.append(f"{len(calib)} calibration images (train/ holds no more; asked for {n_calib})")
        evaluation, labels = [], []
        with progress(splits.val, "reading evaluation images") as batches:
            for x, y in batches:
                evaluation.append(x.numpy())
                labels.append(int(y))
                if len(evaluation) >= n_eval:
                    break
        return _Inputs(calib, evaluation, labels, "val images", notes)
    rng = np.random.default_rng(seed)
    calib = [rng.standard_normal((1, *chw), dtype=np.float32) for _ in range(n_calib)] if calibration else []
    evaluation = [rng.standard_normal((1, *chw), dtype=np.float32) for _ in range(min(n_eval, 64))]
    if calibration == "random":
        notes.append("calibrated on random N(0,1) inputs (--calibration random): the activation scales fit no real "
                     "image, so accuracy on real data is unknown; use this file for size and latency only")
    return _Inputs(calib, evaluation, None, "random N(0,1) inputs", notes)


# --------------------------------------------------------------------------------- quantization


def _session(path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _preprocess(float_path: Path, out: Path, notes: list[str]) -> Path:
    """``quant_pre_process``; a graph its symbolic shape inference cannot read is retried without it."""
    import contextlib
    import io
    import logging

    from onnxruntime.quantization.shape_inference import quant_pre_process

    from .onnx_export import _quiet_native_output

    for skip_symbolic in (False, True):
        try:
            with _quiet_native_output(), contextlib.redirect_stdout(io.StringIO()), _logging_off(logging):
                quant_pre_process(str(float_path), str(out), skip_symbolic_shape=skip_symbolic)
            return out
        except Exception as e:  # noqa: BLE001 - onnxruntime raises many kinds here
            last = e
    notes.append(f"onnxruntime's pre-processing failed ({type(last).__name__}); quantized the float file as it is "
                 f"(BatchNormalization nodes, if any, stay float)")
    return float_path


class _logging_off:
    """onnxruntime's quantizer logs advice through the root logger; a command prints its own report."""

    def __init__(self, logging) -> None:
        self.logging = logging

    def __enter__(self):
        self.logging.disable(self.logging.WARNING)

    def __exit__(self, *exc):
        self.logging.disable(self.logging.NOTSET)


def _reader(batches: list, input_name: str, progress: Progress):
    """An onnxruntime ``CalibrationDataReader`` over the calibration batches, drawing progress."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._cm = progress(batches, "calibrating")
            self._it = iter(self._cm.__enter__())

        def get_next(self):
            x = next(self._it, None)
            if x is None:
                self._cm.__exit__(None, None, None)
                return None
            return {input_name: x}

    return Reader()


def _excluded_nodes(proto, patterns: list[str]) -> list[str]:
    """Node names of the pre-processed graph whose module path or name matches a ``--keep-float`` glob."""
    from ..errors import UnknownNameError
    from .onnx_summary import module_path

    names = []
    for pattern in patterns:
        hits = [n.name for n in proto.graph.node
                if fnmatch.fnmatchcase(n.name, pattern) or fnmatch.fnmatchcase(module_path(n) or "", pattern)]
        if not hits:
            known = sorted({module_path(n) for n in proto.graph.node if module_path(n)} or
                           {n.name for n in proto.graph.node})
            raise UnknownNameError("--keep-float pattern (a module or node name)", pattern, known)
        names += hits
    return sorted(set(names))


def gemm_as_matmul(path: Path) -> int:
    """Rewrite each ``Gemm`` with a constant weight as ``MatMul`` + ``Add`` in place; returns how many.

    Dynamic quantization has an int8 kernel for MatMul (``MatMulInteger``) but none for Gemm, and
    the PyTorch exporter writes every ``nn.Linear`` as a Gemm: without this, ``--dynamic`` would leave
    every linear layer float. Only the plain case is rewritten (alpha = beta = 1, ``transA`` = 0, B an
    initializer); the weight is stored transposed when ``transB`` = 1, so the product is the same.
    """
    import onnx
    from onnx import helper, numpy_helper

    proto = onnx.load(str(path))
    inits = {t.name: t for t in proto.graph.initializer}
    nodes, count = [], 0
    for node in proto.graph.node:
        a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
        plain = (node.op_type == "Gemm" and a.get("alpha", 1.0) == 1.0 and a.get("beta", 1.0) == 1.0
                 and not a.get("transA", 0) and len(node.input) >= 2 and node.input[1] in inits)
        if not plain:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        if a.get("transB", 0):
            w = w.T.copy()
        name = node.input[1] + "_matmul"
        proto.graph.initializer.append(numpy_helper.from_array(w, name))
        has_bias = len(node.input) > 2 and node.input[2]
        mm_out = node.output[0] + "_matmul" if has_bias else node.output[0]
        nodes.append(helper.make_node("MatMul", [node.input[0], name], [mm_out], name=node.name))
        if has_bias:
            nodes.append(helper.make_node("Add", [mm_out, node.input[2]], [node.output[0]], name=node.name + "_bias"))
        count += 1
    if count:
        used = {i for n in nodes for i in n.input}
        keep = [t for t in proto.graph.initializer if t.name in used]
        del proto.graph.initializer[:]
        proto.graph.initializer.extend(keep)
        del proto.graph.node[:]
        proto.graph.node.extend(nodes)
        onnx.save_model(proto, str(path))
    return count


def _quantize_file(pre: Path, out: Path, source: str | None, inputs: _Inputs, method: str, per_channel: bool,
                   activations: str, exclude: list[str], progress: Progress) -> None:
    import logging

    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)

    with _logging_off(logging):
        if source is None:
            quantize_dynamic(str(pre), str(out), weight_type=QuantType.QInt8, per_channel=per_channel,
                             nodes_to_exclude=exclude)
            return
        import onnx

        name = onnx.load(str(pre), load_external_data=False).graph.input[0].name
        calib = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                 "percentile": CalibrationMethod.Percentile}[method]
        act = QuantType.QUInt8 if activations == "uint8" else QuantType.QInt8
        quantize_static(str(pre), str(out), _reader(inputs.calibration, name, progress),
                        quant_format=QuantFormat.QDQ, per_channel=per_channel, activation_type=act,
                        weight_type=QuantType.QInt8, calibrate_method=calib, nodes_to_exclude=exclude,
                        extra_options={"ActivationSymmetric": activations == "int8"})


def _quantizable_ops() -> set[str]:
    from onnxruntime.quantization import registry

    return set(registry.QLinearOpsRegistry) | set(registry.QDQRegistry)


def node_statuses(pre_proto, int8_proto, dynamic: bool, excluded: list[str]) -> list[NodeStatus]:
    """How each compute node of the pre-processed float graph runs in the int8 graph.

    Static (QDQ): a node runs in int8 when every float input comes from a ``DequantizeLinear`` and
    every output goes to a ``QuantizeLinear`` — the pattern onnxruntime fuses into an int8 kernel.
    A node the quantizer removed (a Relu or Clip after an int8 node, whose clipping the output's
    quantization range now does) counts as int8, ``fused``. Dynamic: the node was replaced by an
    integer kernel (``ConvInteger``, ``MatMulInteger``, ...).
    """
    from .onnx_shapes import infer_shapes
    from .onnx_summary import module_path, node_macs

    shapes = infer_shapes(pre_proto)
    produced_by = {o: n for n in int8_proto.graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in int8_proto.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    by_name = {n.name: n for n in int8_proto.graph.node}
    inits = {t.name for t in int8_proto.graph.initializer}
    quantizable = _quantizable_ops()
    rows = []
    for node in pre_proto.graph.node:
        if node.op_type in _SHAPE_OPS:
            continue
        macs = node_macs(node, shapes) or 0
        q = by_name.get(node.name)
        if q is None and by_name.get(node.name + "_quant") is None and not dynamic:
            # the quantizer drops a Relu/Clip after an int8 node: the output's uint8 range does its clipping
            rows.append(NodeStatus(node.name, module_path(node), node.op_type, True, "", int(macs), fused=True))
            continue
        if dynamic:
            replaced = by_name.get(node.name + "_quant")
            int8 = (q is None and replaced is not None and replaced.op_type in _INTEGER_OPS) or \
                   (q is not None and q.op_type in _INTEGER_OPS)
        else:
            feeds = [i for i in (q.input if q is not None else []) if i and i not in inits]
            int8 = q is not None and bool(feeds) and \
                all(produced_by.get(i) is not None and produced_by[i].op_type == "DequantizeLinear" for i in feeds) and \
                all(consumers.get(o) and all(c.op_type == "QuantizeLinear" for c in consumers[o])
                    for o in q.output if o)
        if int8:
            reason = ""
        elif node.name in excluded:
            reason = "kept float by --keep-float"
        elif dynamic:
            from onnxruntime.quantization import registry

            reason = f"dynamic quantization has int8 kernels for {', '.join(sorted(registry.IntegerOpsRegistry))} only"
        elif node.op_type not in quantizable:
            reason = f"onnxruntime's quantizer has no int8 {node.op_type}"
        else:
            reason = "its inputs or outputs stay float (a float neighbour, or a graph output)"
        rows.append(NodeStatus(node.name, module_path(node), node.op_type, bool(int8), reason, int(macs)))
    return rows


# ---------------------------------------------------------------------------------- measurement


def _outputs(sess, batches: list, progress: Progress, label: str) -> list[list]:
    name = sess.get_inputs()[0].name
    with progress(batches, label) as xs:
        return [sess.run(None, {name: x}) for x in xs]


def agreement_of(float_out: list[list], int8_out: list[list], labels: list[int] | None, inputs: str) -> Agreement:
    """Top-1 agreement, relative L2 error and max |difference| of int8 against float outputs (one list of
    output arrays per evaluation input); top-1 accuracy of both when ``labels`` are given."""
    import numpy as np

    num = den = 0.0
    worst = 0.0
    for fo, qo in zip(float_out, int8_out):
        for f, q in zip(fo, qo):
            f, q = np.asarray(f, dtype=np.float64), np.asarray(q, dtype=np.float64)
            num += float(((q - f) ** 2).sum())
            den += float((f ** 2).sum())
            worst = max(worst, float(np.abs(q - f).max()) if f.size else 0.0)
    rel = (num ** 0.5) / (den ** 0.5) if den > 0 else (0.0 if num == 0 else float("inf"))
    first = [np.asarray(o[0]) for o in float_out]
    agree = top_f = top_q = None
    if first and first[0].ndim == 2 and first[0].shape[1] > 1:
        fc = np.concatenate([f.argmax(1) for f in first])
        qc = np.concatenate([np.asarray(o[0]).argmax(1) for o in int8_out])
        agree = float((fc == qc).mean())
        if labels is not None:
            y = np.asarray(labels)
            top_f, top_q = float((fc == y).mean()), float((qc == y).mean())
    return Agreement(inputs, len(float_out), agree, rel, worst, top_f, top_q)


def _latency(paths: list[Path], threads: int, runs: int, x, progress: Progress) -> list[Latency | None]:
    """Interleaved runs of each file (one run of each per round, after 3 warm-up rounds): the median and the
    interquartile range per file; the interleaving spreads any load on the machine over both."""
    if runs == 0:
        return [None for _ in paths]
    sessions = [_session(p, threads) for p in paths]
    names = [s.get_inputs()[0].name for s in sessions]
    for _ in range(3):
        for s, n in zip(sessions, names):
            s.run(None, {n: x})
    times: list[list[float]] = [[] for _ in paths]
    with progress(range(runs), "measuring latency") as rounds:
        for _ in rounds:
            for k, (s, n) in enumerate(zip(sessions, names)):
                t = time.perf_counter()
                s.run(None, {n: x})
                times[k].append(1000 * (time.perf_counter() - t))
    out = []
    for t in times:
        q = statistics.quantiles(t, n=4) if len(t) > 1 else [t[0]] * 3
        out.append(Latency(statistics.median(t), q[2] - q[0], len(t)))
    return out


# ----------------------------------------------------------------------------------------- main


def _history(src) -> list[str]:
    from ..loading.history import history

    return history(src)


def quantize(model_or_spec, output: str | os.PathLike, *, data: str | None = None, calibration: str | None = None,
             calibration_images: int = DEFAULT_CALIBRATION_IMAGES, method: str = "minmax",
             per_channel: bool = True, activations: str = "uint8", dynamic: bool = False,
             keep_float: list[str] | tuple[str, ...] = (), min_agreement: float | None | str = "auto",
             eval_images: int = DEFAULT_EVAL_IMAGES, threads: int = 1, latency_runs: int = DEFAULT_LATENCY_RUNS,
             input_size=None, weights: str | None = None, mean: str | None = None, std: str | None = None,
             seed: int = 0, progress: Progress = no_progress) -> QuantizeReport:
    """Quantize ``model_or_spec`` (an ``nn.Module``, any MODEL string, or a float ``.onnx``) to an int8
    ONNX file at ``output``, verified and measured (module docstring). Returns a :class:`QuantizeReport`.

    ``data``: an ImageFolder tree (``train/`` calibrates, ``val/`` evaluates). ``calibration``:
    ``"data"`` (the default with ``data``) or ``"random"`` (explicit; size and latency only).
    ``min_agreement``: fail (:class:`QuantizeFailed`, nothing written) when the top-1 agreement with the
    float model is lower; ``"auto"`` (the default) applies :data:`DEFAULT_MIN_AGREEMENT` on real images and no
    budget on random inputs; ``None`` never fails. Bad input raises
    :class:`~cnnscope.errors.CnnscopeError` (exit 2) before anything is built or written.
    """
    import onnx
    from torch import nn

    from ..fileio import atomic_path, check_output_path, require_regular_file
    from ..loading.artifact import source_of
    from ..loading.source import resolve

    t0 = time.perf_counter()
    if calibration is None and data is not None and not dynamic:
        calibration = "data"
    source = _validate(method, activations, calibration, data, dynamic, calibration_images, eval_images, threads,
                       None if min_agreement == "auto" else min_agreement, latency_runs)
    budget = (DEFAULT_MIN_AGREEMENT if data is not None else None) if min_agreement == "auto" else min_agreement
    out = Path(output)
    if out.suffix.lower() != ".onnx":
        raise CnnscopeError(f"output '{out}' must end in .onnx")
    if isinstance(model_or_spec, nn.Module):
        if weights is not None:
            raise CnnscopeError("weights= applies to a MODEL string, not to an nn.Module")
        src = source_of(model_or_spec)
        name = type(model_or_spec).__name__
    else:
        src = resolve(model_or_spec, weights)
        name = src.display_name
    from .onnx_export import _input_files

    check_output_path(out, *(_input_files(src) if src is not None else []))
    if src is not None and src.kind == "onnx":
        require_regular_file(src.path, "ONNX file")
        if input_size is not None:
            raise CnnscopeError("an ONNX file fixes its own input size; drop --input-size")
    try:
        workdir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=str(out.parent)))
    except OSError as e:
        raise CnnscopeError(f"cannot write '{out}': {e.strerror or e}") from None
    notes: list[str] = []
    try:
        if src is not None and src.kind == "onnx":
            float_path = Path(src.path)
            from .onnx_export import file_stats
            from .onnx_summary import load_graph

            load_graph(float_path)           # a regular file that parses as an ONNX model, or one clear line

            if file_stats(float_path)["external_data"]:
                raise CnnscopeError(f"'{src.path}' keeps its weights in an external data file; quantize reads files "
                                    f"under 2 GB")
        else:
            from .onnx_export import ExportFailed, export_onnx

            float_path = workdir / "float.onnx"
            try:
                exported = export_onnx(model_or_spec if src is None or isinstance(model_or_spec, nn.Module) else src,
                                       float_path, input_size=input_size, batch_size=1)
            except ExportFailed as e:
                raise CnnscopeError(f"'{name}' does not export to a verified ONNX file ({e}); quantize works on "
                                    f"what `cnnscope export` can write") from None
            if exported.external_data:
                raise CnnscopeError(f"'{name}' exports to more than 2 GB; quantize reads files under 2 GB")
        float_proto = onnx.load(str(float_path), load_external_data=False)
        if not float_proto.graph.input:
            raise CnnscopeError(f"'{float_path}' has no graph input")
        chw = _input_chw(float_proto)
        inputs = _gather_inputs(src, chw, source, data, calibration_images, eval_images, mean, std, seed, progress)
        notes += inputs.notes
        pre = _preprocess(float_path, workdir / "pre.onnx", notes)
        if dynamic:
            if pre == float_path:
                shutil.copyfile(float_path, workdir / "pre.onnx")
                pre = workdir / "pre.onnx"
            gemm_as_matmul(pre)
        pre_proto = onnx.load(str(pre))
        excluded = _excluded_nodes(pre_proto, list(keep_float))
        int8_path = workdir / out.name
        try:
            _quantize_file(pre, int8_path, source, inputs, method, per_channel, activations, excluded, progress)
        except CnnscopeError:
            raise
        except Exception as e:  # noqa: BLE001 - the quantizer's own failure: say which, write nothing
            from .onnx_export import _first_line

            raise QuantizeFailed(f"onnxruntime's quantizer failed ({_first_line(e)}); nothing was written") from None
        step = {"kind": "quantize", "mode": "dynamic" if dynamic else "static", "per_channel": per_channel,
                "activations": "dynamic uint8" if dynamic else activations,
                "calibration": None if source is None else {"source": source, "images": len(inputs.calibration),
                                                            "method": method}}
        int8_proto = onnx.load(str(int8_path))
        _write_metadata(int8_proto, name, src, step)
        onnx.save_model(int8_proto, str(int8_path))
        report = _verify_and_measure(name, out, float_path, int8_path, pre_proto, int8_proto, step, inputs,
                                     dynamic, excluded, threads, latency_runs, budget, src, notes, progress)
        report.seconds = time.perf_counter() - t0
        if report.checker != "ok":
            raise QuantizeFailed(f"the int8 file fails onnx.checker ({report.checker}); nothing was written", report)
        if not report.passed:
            a = report.agreement
            raise QuantizeFailed(f"top-1 agreement with the float model is {a.top1_agreement:.2%} on {a.images} "
                                 f"{a.inputs}, below --min-agreement {budget:.2%}; nothing was written", report)
        with atomic_path(out) as tmp:
            os.replace(int8_path, tmp)
        return report
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _write_metadata(proto, name: str, src, step: dict) -> None:
    plan = list(src.plan or []) if src is not None else []
    entries = {"cnnscope.model": name,
               "cnnscope.history": json.dumps(_history(src) + [describe_quantize(step)]),
               "cnnscope.quantization": json.dumps(step)}
    if plan:
        entries["cnnscope.plan_steps"] = str(len(plan))
    keep = [p for p in proto.metadata_props if p.key not in entries]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for key, value in entries.items():
        e = proto.metadata_props.add()
        e.key, e.value = key, value


def describe_quantize(step: dict) -> str:
    if step["mode"] == "dynamic":
        return f"quantize: dynamic int8 weights{' per-channel' if step['per_channel'] else ''}"
    c = step["calibration"]
    return (f"quantize: static QDQ int8 weights {'per-channel' if step['per_channel'] else 'per-tensor'}, "
            f"{step['activations']} activations ({c['method']} on {c['images']} "
            f"{'train/ images' if c['source'] == 'data' else 'random inputs'})")


def _verify_and_measure(name, out, float_path, int8_path, pre_proto, int8_proto, step, inputs: _Inputs,
                        dynamic, excluded, threads, latency_runs, budget, src, notes, progress) -> QuantizeReport:
    from .verify import check_model

    from .onnx_export import _first_line

    checker = check_model(int8_path)
    try:
        fsess = _session(float_path, threads)
        float_out = _outputs(fsess, inputs.evaluation, progress, "float outputs")
    except Exception as e:  # noqa: BLE001 - a float file onnxruntime cannot run is bad input
        raise CnnscopeError(f"onnxruntime cannot run the float model on a 1×{'×'.join(map(str, inputs.evaluation[0].shape[1:]))} "
                            f"float32 input ({_first_line(e)}); quantize takes models with one float image input") from None
    try:
        qsess = _session(int8_path, threads)
    except Exception as e:  # noqa: BLE001
        raise QuantizeFailed(f"onnxruntime cannot load the int8 file ({_first_line(e)}); nothing was written") from None
    int8_out = _outputs(qsess, inputs.evaluation, progress, "int8 outputs")
    del fsess, qsess
    agreement = agreement_of(float_out, int8_out, inputs.labels, inputs.description)
    if agreement.top1_agreement is None:
        notes.append("the first output is not (batch, classes): top-1 agreement is not defined, only the relative "
                     "error is reported and --min-agreement does not apply")
    lat_f, lat_q = _latency([float_path, int8_path], threads, latency_runs, inputs.evaluation[0], progress)
    nodes = node_statuses(pre_proto, int8_proto, dynamic, excluded)
    if step["calibration"]:
        calib = dict(step["calibration"])
    else:
        calib = None
    acts = ("uint8, quantized per batch at run time" if dynamic else
            f"{step['activations']}, calibrated ({step['calibration']['method']})")
    return QuantizeReport(
        name, str(out), step["mode"], "integer ops" if dynamic else "QDQ",
        f"int8 {'per-channel' if step['per_channel'] else 'per-tensor'}", acts, calib,
        os.path.getsize(float_path), os.path.getsize(int8_path), threads, lat_f, lat_q, agreement, budget, nodes,
        _history(src) + [describe_quantize(step)], 0.0, checker, notes)
