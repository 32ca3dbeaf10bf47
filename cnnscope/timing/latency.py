"""Whole-model latency alone (no per-layer timing): what ``check --max-latency`` and ``prune
--target-latency`` measure. Same method as ``cnnscope profile``'s total: warm-up, then the median and
IQR of ``runs`` runs; onnxruntime runs a verified export of the model (or the ``.onnx`` given)."""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from ..progress import Progress, no_progress
from .stats import Timing, interleaved

LATENCY_RUNTIMES = ("ort", "torch")


def _torch_runner(model, x):
    import torch

    def run() -> float:
        t = time.perf_counter_ns()
        with torch.no_grad():
            model(x)
        return (time.perf_counter_ns() - t) / 1e6
    return run


def _ort_runner(path, x, threads: int):
    from .ort_runtime import check_runs, session

    s = session(path, threads)
    feed = {s.get_inputs()[0].name: x.numpy()}
    check_runs(s, feed, path)

    def run() -> float:
        t = time.perf_counter_ns()
        s.run(None, feed)
        return (time.perf_counter_ns() - t) / 1e6
    return run


def latencies(models: list, input_shape: tuple[int, ...], runtime: str = "ort", threads: int = 1, runs: int = 20,
              warmup: int = 3, progress: Progress = no_progress) -> list[Timing]:
    """Latency of each real model (``nn.Module``, eval mode, CPU) or ``.onnx`` path on one random input of
    ``input_shape``, measured interleaved so that they compare fairly."""
    from torch import nn

    from ..export.verify import random_input
    from .machine import torch_threads

    x = random_input(tuple(input_shape), seed=0)
    workdir = Path(tempfile.mkdtemp(prefix="cnnscope-latency."))
    # the exports' verification forwards run on the measured thread count too: a wider PyTorch pool left
    # spinning after them competes with the measured runs on a small machine
    try:
        with torch_threads(threads):
            runners = []
            for k, m in enumerate(models):
                if runtime == "torch":
                    runners.append(_torch_runner(m, x))
                    continue
                path = m
                if isinstance(m, nn.Module):
                    from ..export.onnx_export import export_onnx

                    path = workdir / f"model{k}.onnx"
                    n, *chw = input_shape
                    export_onnx(m, path, input_size="x".join(map(str, chw)), batch_size=n)
                runners.append(_ort_runner(path, x, threads))
            samples = interleaved(runners, runs, warmup, progress, f"measuring latency ({runtime})")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return [Timing.of(s) for s in samples]


def latency_of(spec_or_src, input_size=None, batch_size: int = 1, runtime: str = "ort", threads: int = 1,
               runs: int = 20, warmup: int = 3, progress: Progress = no_progress) -> tuple[Timing, tuple[int, ...]]:
    """(latency, input shape) of a MODEL (a :class:`~cnnscope.loading.source.ModelSource` or string)."""
    from ..errors import CnnscopeError
    from ..loading.source import ModelSource, resolve

    src = spec_or_src if isinstance(spec_or_src, ModelSource) else resolve(spec_or_src)
    if src.kind == "onnx":
        if runtime != "ort":
            raise CnnscopeError(f"'{src.display_name}' is an ONNX file: its latency is measured with --runtime ort")
        from ..export.onnx_summary import onnx_summary

        shape = tuple(onnx_summary(src.path, input_size=input_size, batch_size=batch_size).input_shape)
        return latencies([src.path], shape, runtime, threads, runs, warmup, progress)[0], shape
    from ..analysis.engine import analyze
    from ..limits import forward_bytes, require_memory
    from ..loading.artifact import load_model

    analysis = analyze(src, input_size=input_size, batch_size=batch_size)
    require_memory(forward_bytes(analysis), f"measuring latency at input {tuple(analysis.input_shape)}",
                   "use a smaller --input-size or --batch-size")
    model = load_model(src).eval()
    shape = tuple(analysis.input_shape)
    return latencies([model], shape, runtime, threads, runs, warmup, progress)[0], shape
