"""`cnnscope summary MODEL`."""
from __future__ import annotations

import click

from .options import emit, model_options, output_option

FORMATS = ["table", "json", "csv", "markdown"]


def _columns(ctx, param, value):
    from ..report.render import parse_columns

    try:
        return parse_columns(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@click.command(context_settings={"max_content_width": 100})
@model_options
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--depth", "-d", type=click.IntRange(min=0), default=None,
              help="Show rows down to this depth; deeper rows are folded into their parent (whose counts include "
                   "them). Default: 2 for table and markdown, every row for json and csv; 0: totals only.")
@click.option("--columns", "-c", metavar="LIST", default=None, callback=_columns,
              help="Columns of the table and Markdown, comma-separated: input (input shape), output (output "
                   "shape), kernel, params, params% (of the model's), trainable (yes/no/partial), macs, rf; "
                   "'all' for every one, 'default' for output,params,macs,rf. JSON and CSV always carry every "
                   "field.")
@click.option("--no-rf", is_flag=True, help="Skip the receptive-field columns.")
@output_option
def summary(model, weights, input_size, batch_size, fmt, depth, columns, no_rf, output):
    """Per-layer params, MACs, output shapes and receptive field of MODEL.

    \b
    Counts are exact and derivable by hand:
      conv params  = K_h·K_w·(C_in/groups)·C_out (+ C_out bias)
      conv MACs    = (params without bias) × OH × OW
      FLOPs        = 2 × MACs  (1 MAC = one multiply-accumulate)
    A container's params and MACs include its children's. Nothing is allocated:
    the forward runs on meta tensors, so a 645M-param model costs no weight memory.

    \b
    Examples:
      cnnscope summary resnet50
      cnnscope summary resnet18 --columns input,output,kernel,params,params%,trainable --depth 3
      cnnscope summary regnet_y_128gf --weights IMAGENET1K_SWAG_E2E_V1
      cnnscope summary mymodels.py:build --input-size 1x64x64 --format json -o s.json
      cnnscope summary model.onnx
    """
    from ..report.render import render

    if model.lower().endswith(".onnx"):
        from .. import summary as run_summary

        data = run_summary(model, input_size=input_size, weights=weights, batch_size=batch_size).to_dict()
    else:
        from ..analysis.engine import analyze
        from ..analysis.summary import build_summary

        data = build_summary(analyze(model, input_size=input_size, weights=weights, batch_size=batch_size),
                             receptive_field=not no_rf).to_dict()
    emit(render(data, fmt, depth, columns), output)
