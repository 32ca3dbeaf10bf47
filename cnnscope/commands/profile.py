"""`cnnscope profile MODEL`: measured latency, whole model and per layer."""
from __future__ import annotations

import click

from .options import emit, model_options, output_option
from .transform_helpers import terminal_progress


@click.command(context_settings={"max_content_width": 100})
@model_options
@click.option("--runtime", "-r", type=click.Choice(["torch", "ort", "both"]), default=None,
              help="torch: PyTorch eager, per module; ort: onnxruntime (CPU) on a verified export, per "
                   "kernel of its optimized graph; both. Default: torch (ort for an .onnx MODEL).")
@click.option("--threads", "-t", type=click.IntRange(1, 1024), default=1, show_default=True,
              help="Intra-op threads of the runtime (and of the roofline's peak measurement).")
@click.option("--runs", type=click.IntRange(3, 100_000), default=20, show_default=True,
              help="Measured rounds; each runs one plain and one per-layer-timed forward, interleaved.")
@click.option("--warmup", type=click.IntRange(0, 10_000), default=3, show_default=True,
              help="Unmeasured rounds first (allocator, caches, onnxruntime's first-run set-up).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="Where PyTorch runs (cuda: synchronised around every module; onnxruntime is CPU only).")
@click.option("--depth", "-d", type=click.IntRange(1, 64), default=None,
              help="Sum rows into their modules at this depth (1: conv1, layer1, layer2, ...: per stage).")
@click.option("--top", type=click.IntRange(0, 100_000), default=None,
              help="Show only the N slowest rows, slowest first (0: all).")
@click.option("--no-cache", is_flag=True, help="Measure the machine's peaks again instead of reading the cache.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "csv", "markdown"]), default="table",
              show_default=True, help="json: cnnscope.profile(...).to_dict(); csv: one row per layer and runtime.")
@output_option
def profile(model, weights, input_size, batch_size, runtime, threads, runs, warmup, device, depth, top, no_cache,
            fmt, output):
    """Measure MODEL's latency on this machine: the whole forward and every layer.

    \b
    MODEL: a torchvision name, lenet5/zfnet/mnist_cnn, FILE.py:fn, pkg.mod:fn, a cnnscope
    artifact .pt, or an .onnx file (onnxruntime only). Weights are random unless the artifact or
    --weights has them: dense float latency does not depend on their values.

    \b
    Every number is a median of --runs interleaved rounds, with its IQR (never one run). Each
    row shows its time, share, MACs, achieved GMAC/s, bytes moved, and whether this machine's
    compute or memory roof bounds it: the roofline's peaks (a matmul and a copy) are measured
    once and cached (CNNSCOPE_CACHE_DIR, default ~/.cache/cnnscope). Per-layer timing has a
    cost; the header shows it against the plain forward. Latency needs a quiet machine.

    \b
    Examples:
      cnnscope profile mnist_cnn
      cnnscope profile resnet18 --runtime both --depth 1 --runs 5
      cnnscope profile lenet5 --runtime ort -f csv -o lenet5-profile.csv
    """
    from ..report.profile import render_profile
    from ..timing.profile import profile as run_profile

    if runtime is None:
        runtime = "ort" if model.lower().endswith(".onnx") else "torch"
    report = run_profile(model, input_size, weights=weights, batch_size=batch_size, runtime=runtime, threads=threads,
                         runs=runs, warmup=warmup, device=device, depth=depth, use_cache=not no_cache,
                         progress=terminal_progress)
    emit(render_profile(report.to_dict(), fmt, top or None), output)
