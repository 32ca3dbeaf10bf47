"""`cnnscope quantize MODEL -o model.int8.onnx`."""
from __future__ import annotations

import click

from .transform_helpers import terminal_progress


@click.command(context_settings={"max_content_width": 100})
@click.argument("model", metavar="MODEL")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="The int8 .onnx file to write (atomically, after verification; never an input).")
@click.option("--data", metavar="DIR",
              help="ImageFolder tree (DIR/train/<class>/, DIR/val/<class>/): train/ images calibrate the "
                   "activation ranges, val/ images measure agreement and top-1 of float and int8.")
@click.option("--calibration", type=click.Choice(["data", "random"]),
              help="Where calibration inputs come from (default: data when --data is given). random: N(0,1) "
                   "noise, for size and latency measurements only: its scales fit no real image.")
@click.option("--calibration-images", type=click.IntRange(1, 1_000_000), default=100, show_default=True,
              help="Calibration images (the first N of train/ in a seeded order).")
@click.option("--method", type=click.Choice(["minmax", "entropy", "percentile"]), default="minmax",
              show_default=True, help="How activation ranges are chosen from the calibration outputs.")
@click.option("--per-tensor", is_flag=True,
              help="One weight scale per tensor (default: one per output channel, which keeps depthwise and "
                   "pruned layers accurate).")
@click.option("--activations", type=click.Choice(["uint8", "int8"]), default="uint8", show_default=True,
              help="Activation type: uint8 (asymmetric) or int8 (symmetric).")
@click.option("--dynamic", is_flag=True,
              help="Dynamic quantization: int8 weights, activations quantized per batch at run time, for "
                   "Conv/MatMul/Gemm only; needs no calibration (best for linear-heavy models).")
@click.option("--keep-float", "keep_float", multiple=True, metavar="GLOB",
              help="Keep these modules or ONNX nodes float (repeatable), e.g. --keep-float 'fc' "
                   "--keep-float 'features.0'.")
@click.option("--min-agreement", type=float, default=None,
              help="Fail (exit 1, nothing written) when int8 and float agree on fewer images' top-1 class "
                   "(a fraction, 0.99 = 99%). Default: 0.9 with --data, no budget on random inputs.")
@click.option("--eval-images", type=click.IntRange(1, 1_000_000), default=500, show_default=True,
              help="val/ images compared (random inputs: 64 at most).")
@click.option("--threads", type=click.IntRange(1, 1024), default=1, show_default=True,
              help="onnxruntime CPU threads for the latency measurement.")
@click.option("--latency-runs", type=click.IntRange(0, 1_000_000), default=30, show_default=True,
              help="Interleaved float/int8 runs at batch 1 (median and IQR reported; 0 skips).")
@click.option("--input-size", "-i", metavar="CxHxW",
              help="Input size of the exported float model (not for an .onnx MODEL, which fixes its own).")
@click.option("--weights", "-w", metavar="NAME|FILE",
              help="torchvision weights name (local cache only) or a local state_dict file.")
@click.option("--mean", metavar="M1,M2,M3", help="Normalisation mean for --data images (default: the "
                                                 "torchvision weights' own, else none).")
@click.option("--std", metavar="S1,S2,S3", help="Normalisation std for --data images.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of the image order and of random inputs.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="json: the report (cnnscope.quantize(...).to_dict()).")
def quantize(model, output, data, calibration, calibration_images, method, per_tensor, activations, dynamic,
             keep_float, min_agreement, eval_images, threads, latency_runs, input_size, weights, mean, std, seed, fmt):
    """Quantize MODEL to an int8 ONNX file, verified against the float model before it is written.

    \b
    MODEL: a torchvision name, lenet5/zfnet/mnist_cnn, FILE.py:fn, pkg.mod:fn, a cnnscope
    artifact .pt (pruned, factorized, ...: its history is kept in the file), or a float .onnx.

    \b
    Static (default): onnxruntime's QDQ quantization after its pre-processing (BatchNorm folded
    into convs): int8 weights per output channel, activations with ranges calibrated on --data
    train/ images. Without --data it refuses: calibrating on noise gives ranges that fit no real
    image (--calibration random does it anyway, for size and latency only). --dynamic needs no
    calibration.

    \b
    Verification, every time: onnx.checker, onnxruntime runs the int8 file, and its outputs are
    compared with the float file's on val/ images (or random inputs): top-1 agreement, relative
    error, and top-1 of both against the labels. Agreement below --min-agreement: exit 1, no file.
    The report gives file sizes, onnxruntime latency (float vs int8), and which nodes stay float
    and why. `cnnscope summary FILE.int8.onnx` reads the result (int8 bytes, the same MACs).

    \b
    Examples:
      cnnscope quantize digits/mnist_cnn-digits.pt --data digits -o mnist.int8.onnx
      cnnscope quantize resnet18 --calibration random -o r18.int8.onnx --latency-runs 5
      cnnscope quantize lenet5 --dynamic -o lenet5.int8.onnx -f json
    """
    from ..export.quantize import QuantizeFailed
    from ..export.quantize import quantize as run_quantize
    from ..report.quantize import agreement_line, render_quantize

    try:
        report = run_quantize(model, output, data=data, calibration=calibration, calibration_images=calibration_images,
                              method=method, per_channel=not per_tensor, activations=activations, dynamic=dynamic,
                              keep_float=list(keep_float), min_agreement="auto" if min_agreement is None else min_agreement,
                              eval_images=eval_images, threads=threads, latency_runs=latency_runs,
                              input_size=input_size, weights=weights, mean=mean, std=std, seed=seed,
                              progress=terminal_progress)
    except QuantizeFailed as e:
        if e.report is not None:
            click.echo("  " + agreement_line(e.report.to_dict()), err=True)
        raise
    if fmt == "json":
        import json

        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(render_quantize(report.to_dict()))
