"""`cnnscope advise MODEL`: rank this model's compression opportunities, each computed by applying it."""
from __future__ import annotations

import click

from .options import model_options, output_option


@click.command(context_settings={"max_content_width": 100})
@model_options
@click.option("--layers", "-l", metavar="GLOB", multiple=True, help="Only consider rewrite sites matching GLOB.")
@click.option("--top", type=click.IntRange(min=1, max=2**31 - 1), default=15, show_default=True,
              help="Per-site rows to show in the table (json lists all).")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@output_option
def advise(model, weights, input_size, batch_size, layers, top, fmt, output):
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
    """
    import json

    from ..report.advise import render_advice
    from ..transforms.advise import advise as run_advise
    from .options import emit

    report = run_advise(model, input_size=input_size, weights=weights, batch_size=batch_size, layers=list(layers))
    if fmt == "json":
        emit(json.dumps(report, indent=2) + "\n", output)
    else:
        emit(render_advice(report, top), output)
