"""``cnnscope profile``: measured latency of a whole model and of each of its layers.

:func:`profile` builds the real model once (random weights unless an artifact or ``--weights`` gives
them: dense float latency does not depend on the values), records its graph once on meta tensors for
the MACs and bytes of every row, and times it on each runtime asked for:

* ``torch``: PyTorch eager, per module (:mod:`.torch_runtime`);
* ``ort``: onnxruntime on CPU, per kernel of its optimized graph (:mod:`.ort_runtime`), from a
  verified export (``cnnscope export``'s path, into a temporary folder) or the ``.onnx`` given.

Each layer is placed on the machine's roofline (:mod:`.machine`): achieved GMAC/s, and whether its
MACs or its bytes bound it here.
"""
from __future__ import annotations

import copy
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CnnscopeError, UnknownNameError
from ..progress import Progress, no_progress
from .machine import Peak
from .rows import RuntimeProfile, at_depth

RUNTIMES = ("torch", "ort", "both")
DEVICES = ("cpu", "cuda")
DEFAULT_RUNS = 20
DEFAULT_WARMUP = 3
SCHEMA = "cnnscope.profile/1"


@dataclass
class ProfileReport:
    model: str
    input_shape: tuple[int, ...]
    threads: int
    device: str
    runs: int
    warmup: int
    peak: Peak
    profiles: list[RuntimeProfile]
    weights: str                          # where the weights came from ("random (fresh init)", a file, ...)
    depth: int | None = None
    notes: list[str] = field(default_factory=list)

    def runtime(self, name: str) -> RuntimeProfile:
        return next(p for p in self.profiles if p.runtime == name)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "model": self.model, "input_shape": list(self.input_shape),
                "batch_size": self.input_shape[0], "threads": self.threads, "device": self.device,
                "runs": self.runs, "warmup": self.warmup, "depth": self.depth, "weights": self.weights,
                "units": {"time": "milliseconds (median and interquartile range of the runs)",
                          "macs": "multiply-accumulates (FLOPs = 2 × MACs)",
                          "bytes": "read from outside the row + written by it"},
                "peak": self.peak.to_dict(),
                "runtimes": [p.to_dict(self.peak) for p in self.profiles], "notes": list(self.notes)}


def validate(runtime: str, threads: int, runs: int, warmup: int, device: str, depth: int | None) -> None:
    if runtime not in RUNTIMES:
        raise UnknownNameError("runtime", runtime, RUNTIMES)
    if device not in DEVICES:
        raise UnknownNameError("device", device, DEVICES)
    for what, v, lo, hi in (("--threads", threads, 1, 1024), ("--runs", runs, 3, 100_000),
                            ("--warmup", warmup, 0, 10_000)):
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise CnnscopeError(f"{what} must be a whole number from {lo} to {hi:,}, got {v}")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise CnnscopeError(f"--depth must be at least 1, got {depth}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise CnnscopeError("--device cuda needs a CUDA GPU and a CUDA build of PyTorch; none is available "
                                "here (use --device cpu)")
        if runtime != "torch":
            raise CnnscopeError("onnxruntime is profiled on CPU only; use --runtime torch with --device cuda")


def _weights_note(src) -> str:
    if src is None:
        return "the given model's"
    if src.kind == "onnx":
        return "the ONNX file's"
    if src.weights_file:
        return f"from {src.weights_file}"
    if src.kind == "torchvision" and src.base.get("weights"):
        return f"torchvision {src.base['weights']}"
    return "random (fresh init): dense float latency does not depend on the weight values"


def profile(model_or_spec, input_size: Any = None, *, weights: str | None = None, batch_size: int = 1,
            runtime: str = "torch", threads: int = 1, runs: int = DEFAULT_RUNS, warmup: int = DEFAULT_WARMUP,
            device: str = "cpu", depth: int | None = None, use_cache: bool = True,
            progress: Progress = no_progress) -> ProfileReport:
    """Measure ``model_or_spec`` (an ``nn.Module``, left untouched, or any MODEL string, ``.onnx`` included).

    ``runtime``: "torch", "ort" or "both"; ``threads``: intra-op threads of both; ``runs`` interleaved
    rounds after ``warmup`` rounds; ``depth``: sum the rows into their modules at that depth
    (1 = ``layer1``, ``layer2``, …). The peaks of the roofline come from the cache (measured once).

    >>> r = cnnscope.profile("resnet18", runtime="both")
    >>> r.runtime("ort").total.median_ms
    """
    from torch import nn

    validate(runtime, threads, runs, warmup, device, depth)
    from .machine import peak as machine_peak

    src = None
    if not isinstance(model_or_spec, nn.Module):
        from ..loading.source import ModelSource, resolve

        src = model_or_spec if isinstance(model_or_spec, ModelSource) else resolve(model_or_spec, weights)
    elif weights is not None:
        raise CnnscopeError("weights= applies to a MODEL string, not to an nn.Module")
    if src is not None and src.kind == "onnx":
        return _profile_onnx(src, input_size, batch_size, runtime, threads, runs, warmup, depth, use_cache,
                             progress, machine_peak)
    from ..analysis.engine import analyze
    from ..limits import forward_bytes, require_memory

    analysis = analyze(model_or_spec if src is None else src, input_size=input_size, batch_size=batch_size)
    require_memory(forward_bytes(analysis), f"profiling at input {tuple(analysis.input_shape)}",
                   "use a smaller --input-size or --batch-size")
    if src is None:
        model = copy.deepcopy(model_or_spec)          # hooks go on our copy, never on the caller's model
        name = type(model_or_spec).__name__
    else:
        from ..loading.artifact import load_model

        model = load_model(src)
        name = src.display_name
    model.eval()
    from ..export.verify import random_input

    x = random_input(tuple(analysis.input_shape), seed=0)
    profiles = []
    if runtime in ("torch", "both"):
        from .torch_runtime import profile_torch

        model.to(device)
        profiles.append(profile_torch(model, x.to(device), analysis.graph, runs, warmup, threads, device, progress))
        model.to("cpu")
    if runtime in ("ort", "both"):
        profiles.append(_export_and_profile(model, x, analysis.input_shape, runs, warmup, threads, progress))
    types = {n: type(m).__name__ for n, m in model.named_modules()}
    if depth is not None:
        for p in profiles:
            p.layers = at_depth(p.layers, depth, lambda n: types.get(n, ""))
    return ProfileReport(name, tuple(analysis.input_shape), threads, device, runs, warmup,
                         machine_peak(threads, device, use_cache), profiles, _weights_note(src), depth)


def _export_and_profile(model, x, input_shape, runs, warmup, threads, progress) -> RuntimeProfile:
    from ..export.onnx_export import export_onnx
    from .ort_runtime import profile_ort

    workdir = Path(tempfile.mkdtemp(prefix="cnnscope-profile."))
    try:
        path = workdir / "model.onnx"
        n, *chw = input_shape
        from .machine import torch_threads

        with progress([0], "exporting to ONNX") as steps, torch_threads(threads):
            for _ in steps:     # on the measured threads: a wider pool left spinning would disturb the runs
                export_onnx(model, path, input_size="x".join(map(str, chw)), batch_size=n)
        return profile_ort(path, x.numpy(), runs, warmup, threads, progress)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _profile_onnx(src, input_size, batch_size, runtime, threads, runs, warmup, depth, use_cache, progress,
                  machine_peak) -> ProfileReport:
    if runtime != "ort":
        raise CnnscopeError(f"'{src.display_name}' is an ONNX file: profile it with --runtime ort (PyTorch "
                            f"timing needs a PyTorch model)")
    from ..export.onnx_summary import onnx_summary
    from ..export.verify import random_input
    from .ort_runtime import profile_ort

    summary = onnx_summary(src.path, input_size=input_size, batch_size=batch_size)
    x = random_input(tuple(summary.input_shape), seed=0)
    p = profile_ort(src.path, x.numpy(), runs, warmup, threads, progress)
    if depth is not None:
        p.layers = at_depth(p.layers, depth, lambda n: "")
    return ProfileReport(src.display_name, tuple(summary.input_shape), threads, "cpu", runs, warmup,
                         machine_peak(threads, "cpu", use_cache), [p], _weights_note(src), depth)
