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
                   "shape), kernel, params, params% (of the model's), trainable (yes/no/partial), macs, rf, live "
                   "(activation bytes alive while the layer runs); "
                   "'all' for every one, 'default' for output,params,macs,rf. JSON and CSV always carry every "
                   "field.")
@click.option("--no-rf", is_flag=True, help="Skip the receptive-field columns.")
@click.option("--training", is_flag=True,
              help="Also the cost of one training step: backward MACs per layer (input and weight gradients, "
                   "only those needed) and training memory = params + grads + optimizer state + activations "
                   "saved for the backward. Recorded in train mode with autograd, on meta tensors.")
@click.option("--optimizer", type=click.Choice(["sgd", "sgd-nomomentum", "adam", "adamw"]), default="sgd",
              show_default=True, help="With --training: the optimizer whose state is counted (sgd: one momentum "
                                      "buffer per parameter; adam/adamw: two).")
@click.option("--conventions", is_flag=True,
              help="Also what each peer tool reports for this model (torchvision _ops, 2×MAC FLOPs, "
                   "FlopCounterMode, fvcore, thop, ptflops aten backend, torchinfo), reproduced from the same "
                   "graph by their own rules, with the op-class breakdown that explains the differences.")
@click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16", "int8"]), default=None,
              help="Give weight and activation bytes as they would be in this precision; nothing is converted. "
                   "int8: conv/linear weights 1 B + a float32 scale and int8 zero point per output channel, "
                   "biases int32, other weights float32, activations 1 B.")
@output_option
def summary(model, weights, input_size, batch_size, fmt, depth, columns, no_rf, training, optimizer, conventions,
            dtype, output):
    """Per-layer params, MACs, output shapes and receptive field of MODEL.

    \b
    Counts are exact and derivable by hand:
      conv params  = K_h·K_w·(C_in/groups)·C_out (+ C_out bias)
      conv MACs    = (params without bias) × OH × OW
      FLOPs        = 2 × MACs  (1 MAC = one multiply-accumulate)
    A container's params and MACs include its children's. Nothing is allocated:
    the forward runs on meta tensors, so a 645M-param model costs no weight memory.
    Peak memory: the activations alive at once (tensor liveness), plus the weights.

    \b
    Examples:
      cnnscope summary resnet50
      cnnscope summary resnet18 --columns input,output,kernel,params,params%,trainable --depth 3
      cnnscope summary mobilenet_v2 --columns default,live --depth 1
      cnnscope summary resnet50 --dtype int8 --depth 0
      cnnscope summary resnet18 --training --optimizer adam --depth 1
      cnnscope summary resnet50 --conventions --depth 0       # 4.09G here, 4.11G fvcore, 4.13G thop…
      cnnscope summary resnet50 --input-size 224,320,448,640     # one row per size
      cnnscope summary regnet_y_128gf --weights IMAGENET1K_SWAG_E2E_V1
      cnnscope summary mymodels.py:build --input-size 1x64x64 --format json -o s.json
      cnnscope summary model.onnx
    """
    from ..errors import CnnscopeError
    from ..report.render import render

    if _given("optimizer") and not training:
        raise CnnscopeError("--optimizer applies to --training (the optimizer state of a training step); add "
                            "--training or drop it")
    if input_size and "," in input_size:
        if training or conventions:
            raise CnnscopeError(f"{'--training' if training else '--conventions'} applies to one input size; drop "
                                f"it from the sweep")
        _sweep(model, weights, input_size, batch_size, fmt, depth, columns, no_rf, dtype, output)
        return
    if model.lower().endswith(".onnx"):
        from .. import summary as run_summary

        data = run_summary(model, input_size=input_size, weights=weights, batch_size=batch_size,
                           dtype=dtype, training=training, conventions=conventions).to_dict()
    else:
        from ..analysis.engine import analyze
        from ..analysis.summary import build_summary

        data = build_summary(analyze(model, input_size=input_size, weights=weights, batch_size=batch_size,
                                     training=training), receptive_field=not no_rf, dtype=dtype,
                             optimizer=optimizer, conventions=conventions).to_dict()
        if training and columns is not None and not _given("columns"):
            columns = (*columns, "bwd")
    emit(render(data, fmt, depth, columns), output)


def _sweep(model, weights, input_size, batch_size, fmt, depth, columns, no_rf, dtype, output):
    """``--input-size 224,320,448``: one row per size."""
    from .. import sweep
    from ..errors import CnnscopeError
    from ..report.sweep import render_sweep
    from .transform_helpers import terminal_progress

    for flag, given in (("--depth", depth is not None), ("--columns", _given("columns")), ("--no-rf", no_rf)):
        if given:
            raise CnnscopeError(f"{flag} applies to one input size; a sweep (--input-size with commas) prints one "
                                f"row per size")
    sizes = [part.strip() for part in input_size.split(",")]
    if any(not part for part in sizes):
        raise CnnscopeError(f"malformed sweep '{input_size}': an empty size between commas (e.g. 224,320,448)")
    looks_like_dims = len(sizes) == 3 and sizes[0].isdigit() and int(sizes[0]) <= 4
    if len(set(sizes)) < len(sizes) or looks_like_dims:
        raise CnnscopeError(f"--input-size {input_size}: commas separate the sizes of a sweep, and these repeat or "
                            f"start with a channel count; one size is written {'x'.join(sizes)}")
    result = sweep(model, sizes, weights=weights, batch_size=batch_size, dtype=dtype, progress=terminal_progress)
    emit(render_sweep(result.to_dict(), fmt), output)


def _given(param: str) -> bool:
    """Whether the user wrote the option on the command line (not its default)."""
    return click.get_current_context().get_parameter_source(param) == click.core.ParameterSource.COMMANDLINE
