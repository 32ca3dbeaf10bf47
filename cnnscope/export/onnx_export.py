"""Verified ONNX export of any MODEL source: names, user code, artifacts (pruned, rewritten, ...).

Order, the same every time: build the real model → run it once in PyTorch (bad input sizes fail
here, with the arithmetic) → export into a temporary folder beside the output → post-process →
``onnx.checker`` → onnxruntime parity against PyTorch → optionally simplify and verify again →
only then move the file into place. A failure at any step leaves no file behind, and the output
can never be the input.

Exporters (``exporter=``):

- ``torchscript`` (the default, tried first): ``torch.onnx.export(..., dynamo=False)``. Traces
  the model once; several times faster than the dynamo exporter (resnet50: ~0.6 s against ~5 s on
  an idle 2-core CPU; docs/export.md has the measurements). Supports opsets 7–20.
- ``dynamo``: the ``torch.export``-based exporter (``dynamo=True``, several times slower; needs the
  ``onnxscript`` package). Supports opsets 18–23. ``auto`` falls back to it when the TorchScript
  exporter fails or writes a file that onnx.checker / onnxruntime cannot load.

What the file holds (and why the ONNX summary's totals equal the PyTorch summary's):

- BatchNorm is **kept** as ``BatchNormalization`` nodes (the model runs in eval mode; the export
  uses ``TrainingMode.PRESERVE`` so the exporter does not fold BN into the preceding conv).
  onnxruntime and TensorRT fold it themselves when they load the file, so this costs nothing at
  run time, and the file's parameters are exactly the model's. ``fold_bn=True`` folds it in the
  file instead (for runtimes that do not): the file then holds conv weights + one bias per channel
  instead of conv weights + BN scale and shift, and its parameter count is smaller.
- Initializers are **not deduplicated**: the TorchScript exporter merges initializers with equal
  values (e.g. every freshly initialised BN's ones and zeros) behind ``Identity`` nodes; cnnscope
  exports with ``keep_initializers_as_inputs=True`` (which skips that pass) and then removes the
  initializers from the graph inputs, so every PyTorch tensor is one initializer and the graph has
  no extra Identity nodes.
- Files over 2 GB (vit_h_14, regnet_y_128gf) keep their weights in one external data file,
  ``<output>.data``, beside the ``.onnx``.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import CheckFailed, CnnscopeError
from .verify import DEFAULT_ATOL, DEFAULT_RTOL, VerifyReport, random_input, torch_outputs, verify_onnx

DEFAULT_OPSET = 18
#: opsets each exporter can write: (min, max)
OPSET_RANGES = {"torchscript": (7, 20), "dynamo": (18, 23)}
INPUT_NAME = "input"


class ExportFailed(CheckFailed):
    """The model could not be exported, or its file failed verification (exit code 1)."""

    def __init__(self, message: str, report: "ExportReport | None" = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class ExportReport:
    """What ``export_onnx`` did, as plain data (``to_dict()`` is JSON-serialisable)."""

    path: str
    model: str
    exporter: str                    # "torchscript" | "dynamo"
    opset: int
    input_shape: list[int]           # N×C×H×W (N×C×L, N×C×D×H×W) at the export batch size
    dynamic_batch: bool
    file_bytes: int                  # the .onnx plus its external data file, if any
    external_data: str | None        # the external data file's name, for files over 2 GB
    nodes: int
    params_in_file: int              # float initializers except BN running statistics
    torch_params: int                # the PyTorch model's parameters (shared ones once)
    bn_folded: bool
    export_seconds: float
    verify: VerifyReport | None
    simplified_with: str | None = None
    notes: list[str] = field(default_factory=list)
    params_note: str | None = None   # why params_in_file differs from torch_params, when it does

    @property
    def verified(self) -> bool:
        return self.verify is not None and self.verify.passed and bool(self.verify.runs)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["verify"] = self.verify.to_dict() if self.verify is not None else None
        d["verified"] = self.verified
        return d


# ------------------------------------------------------------------------------------ validation


def available_exporters() -> dict[str, bool]:
    import importlib.util

    return {"torchscript": True, "dynamo": importlib.util.find_spec("onnxscript") is not None}


def check_opset(opset: int, exporter: str = "auto") -> None:
    """Refuse an opset no available exporter can write (exit 2)."""
    if not isinstance(opset, int) or isinstance(opset, bool):
        raise CnnscopeError(f"--opset must be an integer, got {opset!r}")
    names = ["torchscript", "dynamo"] if exporter == "auto" else [exporter]
    if exporter not in ("auto", *OPSET_RANGES):
        raise CnnscopeError(f"unknown exporter '{exporter}'; choose auto, torchscript or dynamo")
    for name in names:
        lo, hi = OPSET_RANGES[name]
        if lo <= opset <= hi:
            if name == "dynamo" and not available_exporters()["dynamo"]:
                raise CnnscopeError(
                    f"opset {opset} needs the dynamo exporter, which needs onnxscript (pip install onnxscript); "
                    f"the TorchScript exporter writes opsets {OPSET_RANGES['torchscript'][0]}–"
                    f"{OPSET_RANGES['torchscript'][1]}")
            return
    ranges = ", ".join(f"{n} {OPSET_RANGES[n][0]}–{OPSET_RANGES[n][1]}" for n in names)
    raise CnnscopeError(f"unknown opset {opset}: the exporter{'s' if len(names) > 1 else ''} write{'' if len(names) > 1 else 's'} "
                        f"opsets {ranges}; the default is {DEFAULT_OPSET}")


# --------------------------------------------------------------------------------------- helpers


def _resolve_model(model_or_spec, weights: str | None):
    """(real CPU model, source or None, display name, input files that must not be overwritten)."""
    from torch import nn

    from ..loading.artifact import source_of
    from ..loading.source import ModelSource, resolve

    if isinstance(model_or_spec, nn.Module):
        if weights is not None:
            raise CnnscopeError("weights= applies to a MODEL string, not to an nn.Module")
        src = source_of(model_or_spec)
        return model_or_spec, src, type(model_or_spec).__name__, _input_files(src)
    src = model_or_spec if isinstance(model_or_spec, ModelSource) else resolve(model_or_spec, weights)
    if src.kind == "onnx":
        raise CnnscopeError(f"'{src.display_name}' is already an ONNX file; export needs a PyTorch model "
                            f"(a model name, FILE.py:fn or a cnnscope artifact .pt)")
    return None, src, src.display_name, _input_files(src)


def _input_files(src) -> list[str]:
    if src is None:
        return []
    files = [src.path, src.weights_file]
    if src.kind == "code":
        ref = src.base.get("ref", "")
        target = ref.rpartition(":")[0]
        if target.endswith(".py"):
            files.append(target)
    return [f for f in files if f]


def _input_chw(model, src, name: str, input_size) -> tuple[int, ...]:
    """The export input's (C, *spatial): the analysis' rule (:func:`~cnnscope.analysis.engine.input_chw`),
    so 1-D and 3-D models take CxL / CxDxHxW sizes as in ``summary``."""
    from ..analysis.engine import input_chw
    from ..loading.source import default_input_size

    default = None
    if src is not None and (src.kind in ("torchvision", "builtin") or src.base.get("input_size")):
        default = tuple(default_input_size(src))
    return input_chw(name, model, input_size, default)


def _explain_forward_failure(model, shape, error: Exception):
    """The model did not run: prefer the analysis' explanation (input too small, with the arithmetic)."""
    from ..analysis.engine import analyze

    try:
        analyze(model, input_size=shape[1:], batch_size=shape[0])
    except CnnscopeError as e:
        raise e from None
    except Exception:
        pass
    text = str(error).strip().splitlines()
    raise CnnscopeError(f"the model does not run on a {'×'.join(map(str, shape))} input "
                        f"({type(error).__name__}: {text[0][:200] if text else ''}); check --input-size") from None


@contextlib.contextmanager
def _quiet_native_output():
    """Silence what the exporter's C++ side prints (the whole IR graph on a failed export)."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = []
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        for fd in (1, 2):
            saved.append((fd, os.dup(fd)))
            os.dup2(devnull, fd)
        os.close(devnull)
    except OSError:  # no real file descriptors (embedded interpreters): leave the output alone
        pass
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)


@contextlib.contextmanager
def _eval_mode(model):
    """Run in eval mode without leaving the caller's model changed."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, t in modes:
            m.training = t


def _torch_param_count(model) -> int:
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def _output_names(n: int) -> list[str]:
    return ["output"] if n == 1 else [f"output_{i}" for i in range(n)]


# ------------------------------------------------------------------------------------- exporters

#: (model, example input, path, opset, output names, dynamic batch, fold BN) -> the serialised model
#: if it was kept in memory, else None (``path`` was written)
ExporterFn = Callable[..., "bytes | None"]
EXPORTERS: dict[str, ExporterFn] = {}


def register_exporter(name: str):
    def deco(fn: ExporterFn) -> ExporterFn:
        EXPORTERS[name] = fn
        return fn

    return deco


@register_exporter("torchscript")
def _export_torchscript(model, x, path: Path, opset: int, output_names: list[str], dynamic_batch: bool,
                        fold_bn: bool) -> bytes | None:
    """Returns the serialised model when it fits in one protobuf (it is then post-processed in
    memory, saving a write and a read of the whole file); writes ``path`` (+ external data) else."""
    import io

    import torch

    dynamic_axes = {name: {0: "batch"} for name in [INPUT_NAME, *output_names]} if dynamic_batch else None
    weight_bytes = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    target = io.BytesIO() if weight_bytes < 1_500_000_000 else str(path)
    torch.onnx.export(
        model, (x,), target, dynamo=False, opset_version=opset,
        input_names=[INPUT_NAME], output_names=output_names, dynamic_axes=dynamic_axes,
        training=torch.onnx.TrainingMode.EVAL if fold_bn else torch.onnx.TrainingMode.PRESERVE,
        do_constant_folding=True,
        keep_initializers_as_inputs=True,   # skips value-based initializer dedup; undone in _postprocess
    )
    return target.getvalue() if isinstance(target, io.BytesIO) else None


@register_exporter("dynamo")
def _export_dynamo(model, x, path: Path, opset: int, output_names: list[str], dynamic_batch: bool,
                   fold_bn: bool) -> None:
    import torch

    kwargs: dict[str, Any] = {}
    if dynamic_batch:
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1)},)
        if x.shape[0] == 1:  # torch.export specialises a size-1 dim: trace with two samples
            x = torch.cat([x, x])
    program = torch.onnx.export(model, (x,), dynamo=True, opset_version=opset, input_names=[INPUT_NAME],
                                output_names=output_names, optimize=True, **kwargs)
    program.save(str(path), external_data=False)


def _postprocess(path: Path, model_name: str, exporter: str, data: bytes | None = None) -> None:
    """Initializers out of the graph inputs, cnnscope metadata in, weights in one file at most.

    ``data``: the exporter's serialised model, when it kept it in memory instead of writing ``path``.
    """
    import onnx

    folder = path.parent
    extra = [p for p in folder.iterdir() if p != path]
    proto = onnx.load_model_from_string(data) if data is not None else onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in proto.graph.initializer}
    inputs = [v for v in proto.graph.input if v.name not in inits]
    del proto.graph.input[:]
    proto.graph.input.extend(inputs)
    from .ceil_pools import fix_ceil_mode_pools

    fix_ceil_mode_pools(proto)        # static shapes of ceil_mode pools as PyTorch computes them
    for key, value in (("cnnscope.model", model_name), ("cnnscope.exporter", exporter)):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    if data is not None or not extra:
        onnx.save_model(proto, str(path))
        return
    # external data (over 2 GB): gather every tensor into one file named after the final output
    onnx.load_external_data_for_model(proto, str(folder))
    for p in extra:
        p.unlink() if p.is_file() else shutil.rmtree(p)
    path.unlink()
    onnx.save_model(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=path.name + ".data", size_threshold=1024)


def simplifier() -> str | None:
    """The installed ONNX simplifier: ``onnxslim`` (preferred, maintained), ``onnxsim``, or None."""
    import importlib.util

    for name in ("onnxslim", "onnxsim"):
        if importlib.util.find_spec(name) is not None:
            return name
    return None


def _simplify(path: Path) -> str:
    """Simplify ``path`` in place with onnxslim or onnxsim, whichever is installed; returns its name."""
    import onnx

    tool = simplifier()
    if tool == "onnxslim":
        import onnxslim

        data = path.with_name(path.name + ".data")
        model = onnxslim.slim(str(path))
        _save_like(model, path, external=data.exists())
        return "onnxslim"
    if tool == "onnxsim":
        import onnxsim

        model, ok = onnxsim.simplify(onnx.load(str(path)))
        if not ok:
            raise ExportFailed("onnxsim could not validate its simplified model; nothing was written")
        _save_like(model, path, external=path.with_name(path.name + ".data").exists())
        return "onnxsim"
    raise CnnscopeError("--simplify needs onnxslim or onnxsim: pip install onnxslim (or onnxsim)")


def _save_like(model, path: Path, external: bool) -> None:
    import onnx

    data = path.with_name(path.name + ".data")
    if external or model.ByteSize() > 2_000_000_000:
        if data.exists():
            data.unlink()
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data.name, size_threshold=1024)
    else:
        onnx.save_model(model, str(path))


def _params_difference(model, stats: dict) -> str:
    from torch import nn

    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if has_bn and not stats["bn_nodes"]:
        return ("BatchNorm folded into the preceding convs: each BN's scale and shift (2 per channel) became "
                "the conv's weights and one bias per channel")
    return ("the exporter folded or merged parameters into constants (e.g. a gathered bias table, or "
            "initializers with equal values); see docs/export.md")


def file_stats(path: Path) -> dict[str, Any]:
    """Size (with external data), node count, opset and parameter count of an ONNX file."""
    import onnx

    from .onnx_summary import count_params

    proto = onnx.load(str(path), load_external_data=False)
    data = path.with_name(path.name + ".data")
    has_data = any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    size = path.stat().st_size + (data.stat().st_size if has_data and data.exists() else 0)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    return {"file_bytes": size, "nodes": len(proto.graph.node), "opset": opset,
            "params_in_file": count_params(proto), "external_data": data.name if has_data else None,
            "bn_nodes": sum(n.op_type == "BatchNormalization" for n in proto.graph.node)}


# ------------------------------------------------------------------------------------------ main


def export_onnx(model_or_spec, path: str | os.PathLike, input_size=None, batch_size: int = 1,
                opset: int = DEFAULT_OPSET, dynamic_batch: bool = False, verify: bool = True,
                simplify: bool = False, *, weights: str | None = None, exporter: str = "auto",
                fold_bn: bool = False, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL,
                check_batch_size: int | None = None) -> ExportReport:
    """Export ``model_or_spec`` (an ``nn.Module`` or any MODEL string) to ``path`` and verify it.

    ``verify=True`` (default) runs onnxruntime on random inputs at ``batch_size`` and, with
    ``dynamic_batch``, at ``check_batch_size`` (default ``batch_size + 1``), and compares with
    PyTorch; above tolerance it raises :class:`ExportFailed` (exit code 1) and writes nothing.
    ``onnx.checker`` runs even with ``verify=False``. Bad input raises
    :class:`~cnnscope.errors.CnnscopeError` (exit code 2) before anything is built or written.
    A model passed as ``nn.Module`` is exported where it is and left as it was (mode included).
    Returns an :class:`ExportReport`.
    """
    from ..fileio import check_output_path

    if exporter not in ("auto", *EXPORTERS):
        raise CnnscopeError(f"unknown exporter '{exporter}'; choose auto, torchscript or dynamo")
    check_opset(opset, exporter)
    if batch_size < 1:
        raise CnnscopeError(f"--batch-size must be at least 1, got {batch_size}")
    if check_batch_size is not None and check_batch_size < 1:
        raise CnnscopeError(f"the check batch size must be at least 1, got {check_batch_size}")
    from ..units import finite

    finite(rtol, "--rtol")
    finite(atol, "--atol")
    if simplify and simplifier() is None:
        raise CnnscopeError("--simplify needs onnxslim or onnxsim: pip install onnxslim (or onnxsim)")
    out = Path(path)
    model, src, name, inputs = _resolve_model(model_or_spec, weights)
    check_output_path(out, *inputs)
    if out.suffix.lower() != ".onnx":
        raise CnnscopeError(f"output '{out}' must end in .onnx")
    try:
        workdir = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=str(out.parent)))
    except OSError as e:
        raise CnnscopeError(f"cannot write '{out}': {e.strerror or e}") from None
    try:
        if model is None:
            from ..loading.artifact import load_model

            model = load_model(src)
        with _eval_mode(model):
            return _export_and_verify(model, src, name, out, workdir, input_size, batch_size, opset, dynamic_batch,
                                      verify, simplify, exporter, fold_bn, rtol, atol,
                                      check_batch_size or batch_size + 1)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _export_and_verify(model, src, name, out: Path, workdir: Path, input_size, batch_size, opset, dynamic_batch,
                       verify, simplify, exporter, fold_bn, rtol, atol, check_b) -> ExportReport:
    from .verify import check_model

    from ..analysis.engine import split_batch

    input_size, batch_size = split_batch(model, input_size, batch_size)
    if check_b == batch_size:      # N came from the input size: check another batch still
        check_b = batch_size + 1
    shape = (int(batch_size), *_input_chw(model, src, name, input_size))
    _require_forward_memory(model, shape)
    x = random_input(shape, seed=batch_size)
    try:
        reference = torch_outputs(model, x)
    except CnnscopeError:
        raise
    except Exception as e:
        _explain_forward_failure(model, shape, e)
    if not reference:
        raise CnnscopeError("the model returns no tensors; nothing to export")
    names = _output_names(len(reference))
    cache = {batch_size: (x, reference)}
    batches = [batch_size] + ([check_b] if dynamic_batch and check_b != batch_size else [])
    order = ["torchscript", "dynamo"] if exporter == "auto" else [exporter]
    lo, hi = OPSET_RANGES["torchscript"]
    if exporter == "auto" and not lo <= opset <= hi:
        order = ["dynamo"]
    notes: list[str] = []
    for i, which in enumerate(order):
        last = i == len(order) - 1
        if which == "dynamo" and not available_exporters()["dynamo"]:
            notes.append("dynamo exporter not tried: onnxscript is not installed (pip install onnxscript)")
            continue
        stage = workdir / which
        stage.mkdir()
        tmp = stage / out.name
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings(), _quiet_native_output():
                warnings.simplefilter("ignore")
                data = EXPORTERS[which](model, x.to(_device_of(model)), tmp, opset, names, dynamic_batch, fold_bn)
                _postprocess(tmp, name, which, data)
                del data
        except CnnscopeError:
            raise
        except Exception as e:
            notes.append(f"{which} exporter failed: {_first_line(e)}")
            continue
        seconds = time.perf_counter() - t0
        if verify:
            vr = verify_onnx(tmp, model, shape, batches, rtol=rtol, atol=atol, cache=cache)
        else:
            vr = VerifyReport(check_model(tmp), [], rtol, atol, 0.0)
        unloadable = vr.checker != "ok" or (vr.error is not None and not vr.error.startswith("running batch size"))
        if unloadable and not last:
            notes.append(f"{which} exporter wrote a file that does not load ({vr.describe()})")
            continue
        report = ExportReport(str(out), name, which, opset, list(shape), dynamic_batch, 0, None, 0, 0,
                              _torch_param_count(model), fold_bn, seconds, vr if verify else None, None, notes)
        if vr.checker != "ok" or (verify and not vr.passed):
            raise ExportFailed(f"verification failed: {vr.describe()}; nothing was written", report)
        if verify and all(r.ref_max_abs == 0 for r in vr.runs):
            notes.append("the PyTorch output is all zeros (a zero-initialised head, as in a fresh ViT?), so parity "
                         "compared zeros: export trained weights (--weights FILE) for a meaningful check")
        if simplify:
            try:
                with warnings.catch_warnings(), _quiet_native_output():
                    warnings.simplefilter("ignore")
                    report.simplified_with = _simplify(tmp)
            except CnnscopeError:
                raise
            except Exception as e:
                raise ExportFailed(f"simplification with {simplifier()} failed ({_first_line(e)}); "
                                   f"nothing was written", report) from None
            vr2 = verify_onnx(tmp, model, shape, batches, rtol=rtol, atol=atol, cache=cache) if verify else \
                VerifyReport(check_model(tmp), [], rtol, atol, 0.0)
            if verify:
                report.verify = vr2
            if vr2.checker != "ok" or (verify and not vr2.passed):
                raise ExportFailed(f"verification after {report.simplified_with} failed: {vr2.describe()}; "
                                   f"nothing was written", report)
        stats = file_stats(tmp)
        report.file_bytes, report.nodes, report.opset = stats["file_bytes"], stats["nodes"], stats["opset"]
        report.params_in_file, report.external_data = stats["params_in_file"], stats["external_data"]
        if report.params_in_file != report.torch_params:
            report.params_note = _params_difference(model, stats)
        if stats["external_data"]:
            os.replace(tmp.with_name(stats["external_data"]), out.with_name(stats["external_data"]))
        os.replace(tmp, out)
        return report
    raise ExportFailed("export failed: " + "; ".join(notes) + "; nothing was written")


def _require_forward_memory(model, shape) -> None:
    """Refuse (exit 2, with the number) an export whose real forward cannot fit in memory, before its
    input is allocated: the lower bound comes from the meta graph of the same model at that shape."""
    from ..analysis.engine import analyze
    from ..limits import forward_bytes, require_memory

    n = 1
    for d in shape:
        n *= int(d)
    what = f"exporting at input {tuple(shape)}"
    fix = "use a smaller --input-size or --batch-size"
    require_memory(4 * n, what, fix)          # the input alone, before even tracing on meta
    analysis = analyze(model, input_size="x".join(map(str, shape[1:])), batch_size=shape[0])
    require_memory(forward_bytes(analysis), what, fix)


def _device_of(model):
    import torch

    return next((p.device for p in model.parameters()), torch.device("cpu"))


def _first_line(e: Exception) -> str:
    lines = [l for l in str(e).strip().splitlines() if l.strip()]
    text = lines[0] if lines else ""
    text = text.split(" Please feel free to request support")[0]   # torch's boilerplate
    return f"{type(e).__name__}: {text[:240]}"
