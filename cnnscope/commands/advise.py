"""`cnnscope advise MODEL`: rank this model's compression opportunities, each computed by applying it."""
from __future__ import annotations

import click

from .options import model_options, output_option


@click.command(context_settings={"max_content_width": 100})
@model_options
@click.option("--layers", "-l", metavar="GLOB", multiple=True, help="Only consider rewrite sites matching GLOB.")
@click.option("--top", type=click.IntRange(min=1, max=2**31 - 1), default=15, show_default=True,
              help="Per-site rows to show in the table (json lists all).")
@click.option("--by", type=click.Choice(["macs", "latency"]), default="macs", show_default=True,
              help="macs: every method and site by MACs saved (meta model, nothing runs). latency: each method "
                   "applied to the real model and timed against it, ranked by ms saved per point of output error.")
@click.option("--runtime", type=click.Choice(["ort", "torch"]), default="ort", show_default=True,
              help="With --by latency: the runtime the models are timed on.")
@click.option("--threads", type=click.IntRange(1, 1024), default=1, show_default=True,
              help="With --by latency: intra-op threads.")
@click.option("--latency-runs", type=click.IntRange(3, 100_000), default=20, show_default=True,
              help="With --by latency: interleaved runs per model (median and IQR).")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@output_option
def advise(model, weights, input_size, batch_size, layers, top, by, runtime, threads, latency_runs, fmt, output):
    """Rank where stride-2, 1×1 reduction, factorization, pruning and FC → global pooling
    would save the most in MODEL.

    \b
    Every number comes from applying the rewrite to the meta model and analysing
    the result again (no weights are allocated, nothing is estimated).

    \b
    Examples:
      cnnscope advise vgg16
      cnnscope advise resnet50 --format json -o advice.json
      cnnscope advise inception_v3 --layers 'Mixed_5*'
      cnnscope advise resnet18 -i 3x64x64 --by latency --latency-runs 5
    """
    import json

    from ..report.advise import render_advice
    from ..transforms.advise import advise as run_advise
    from .options import emit

    if by == "latency":
        from ..report.advise import render_latency_advice
        from ..timing.advise_latency import advise_by_latency
        from .transform_helpers import terminal_progress

        report = advise_by_latency(model, input_size, weights=weights, batch_size=batch_size, layers=list(layers),
                                   runtime=runtime, threads=threads, runs=latency_runs, progress=terminal_progress)
        emit(json.dumps(report, indent=2) + "\n" if fmt == "json" else render_latency_advice(report), output)
        return
    report = run_advise(model, input_size=input_size, weights=weights, batch_size=batch_size, layers=list(layers))
    if fmt == "json":
        emit(json.dumps(report, indent=2) + "\n", output)
    else:
        emit(render_advice(report, top), output)
