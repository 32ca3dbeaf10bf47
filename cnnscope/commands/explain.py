"""`cnnscope explain MODEL LAYER`: how one layer's size, params, MACs and receptive field are obtained."""
from __future__ import annotations

import json

import click

from .options import emit, model_options, output_option


@click.command(context_settings={"max_content_width": 100})
@model_options
@click.argument("layer", metavar="LAYER")
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@output_option
def explain(model, weights, input_size, batch_size, layer, fmt, output):
    """Show how LAYER's output size, params, MACs and receptive field are computed.

    \b
    The documents' formulas, filled in with the layer's actual values:
      output size  OH = ⌊(H + 2P − D·(K − 1) − 1)/S⌋ + 1   (⌈…⌉ for ceil-mode pooling)
      conv params  K_h·K_w·(C_in/groups)·C_out + bias     (and without weight sharing)
      conv MACs    (params without bias) × OH × OW
      RF           r_out = r_in + (K − 1)·D·j_in,  j_out = j_in·S,  P_out = P_in + P·j_in
    For a block (e.g. layer1.0) it shows the path that determines the receptive field and
    each merge (residual add, concat) on it. LAYER is a module name as `cnnscope summary` prints it.

    \b
    Examples:
      cnnscope explain resnet50 layer1.0.conv2
      cnnscope explain resnet50 layer1.0
      cnnscope explain vgg16 features.0 --format json
    """
    from ..analysis.engine import analyze
    from ..analysis.explain import explain as build
    from ..report.explain import render_text

    data = build(analyze(model, input_size=input_size, weights=weights, batch_size=batch_size), layer)
    emit(json.dumps(data, indent=2) + "\n" if fmt == "json" else render_text(data), output)
