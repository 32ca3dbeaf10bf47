"""`cnnscope export MODEL -o model.onnx`."""
from __future__ import annotations

import click


DEFAULT_OPSET = 18  # == cnnscope.export.onnx_export.DEFAULT_OPSET (kept here so --help imports no torch)


@click.command(context_settings={"max_content_width": 100})
@click.argument("model", metavar="MODEL")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="The .onnx file to write (atomically; never the input). Files over 2 GB keep their "
                   "weights in OUTPUT.data beside it.")
@click.option("--opset", type=int, default=DEFAULT_OPSET, show_default=True,
              help="ONNX opset: 7–20 with the TorchScript exporter, 18–23 with the dynamo exporter.")
@click.option("--input-size", "-i", metavar="CxHxW",
              help="Input size: 3x224x224, 224x224 or 224. Default: the weights' crop size, else the model's "
                   "natural size (224; 299 for inception_v3; 1x28x28 for lenet5/mnist_cnn).")
@click.option("--batch-size", "-b", type=click.IntRange(min=1, max=2**31 - 1), default=1, show_default=True,
              help="Batch size of the exported input (and of the parity check).")
@click.option("--weights", "-w", metavar="NAME|FILE",
              help="torchvision weights name (configures the architecture; loaded only from the local cache) "
                   "or a local state_dict file. Artifacts carry their own weights.")
@click.option("--dynamic-batch", is_flag=True,
              help="Make the batch dimension dynamic; verification then also runs a second batch size.")
@click.option("--no-verify", is_flag=True,
              help="Skip the onnxruntime parity run (onnx.checker still runs; it takes milliseconds).")
@click.option("--simplify", is_flag=True,
              help="Simplify with onnxslim or onnxsim (whichever is installed; pip install \"cnnscope[simplify]\"), then "
                   "verify again.")
@click.option("--fold-bn", is_flag=True,
              help="Fold BatchNorm into the preceding conv in the file (default: keep BN nodes; onnxruntime "
                   "and TensorRT fold them at load time, and the file's params then equal the model's).")
@click.option("--exporter", type=click.Choice(["auto", "torchscript", "dynamo"]), default="auto", show_default=True,
              help="auto: TorchScript first, the dynamo exporter if that fails.")
@click.option("--rtol", type=float, default=1e-4, show_default=True,
              help="Parity tolerance, relative to the largest PyTorch output magnitude.")
@click.option("--atol", type=float, default=1e-5, show_default=True, help="Parity tolerance, absolute.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="json: the export report (cnnscope.export_onnx(...).to_dict()).")
def export(model, output, opset, input_size, batch_size, weights, dynamic_batch, no_verify, simplify, fold_bn,
           exporter, rtol, atol, fmt):
    """Export MODEL to ONNX and verify the file with onnxruntime.

    \b
    MODEL: a torchvision name, lenet5/zfnet/mnist_cnn, FILE.py:fn, pkg.mod:fn, or a
    cnnscope artifact .pt (from prune, reduce, stride, factorize, save_model).

    \b
    Verification, every time: onnx.checker passes; onnxruntime (CPU) runs the file on a random
    N(0,1) input at the export batch size (and, with --dynamic-batch, at batch size + 1) and its
    outputs are compared with PyTorch's: max |ORT − PyTorch| must be ≤ atol + rtol × max|PyTorch|.
    Above tolerance: exit 1 with the numbers, and no file is written.

    \b
    Exporter: torch.onnx.export(dynamo=False), the TorchScript-based exporter: it traces once
    and is several times faster than the dynamo exporter (resnet50 ~0.6 s vs ~5 s on an idle
    2-core CPU). When it fails, or writes a file that does not load, the dynamo exporter
    (torch.export-based, needs the onnxscript package) is tried. BatchNorm stays as BN nodes
    (see --fold-bn), so the file's parameter count equals the model's.

    \b
    Examples:
      cnnscope export resnet50 -o resnet50.onnx
      cnnscope export resnet50-pruned.pt -o resnet50-pruned.onnx --dynamic-batch
      cnnscope export mynets.py:build -i 1x64x64 -o net.onnx --opset 17
      cnnscope export lenet5 -o lenet5.onnx -f json
    """
    from ..export.onnx_export import ExportFailed, export_onnx
    from ..report.export import parity_lines, render_export

    try:
        report = export_onnx(model, output, input_size=input_size, batch_size=batch_size, opset=opset,
                             dynamic_batch=dynamic_batch, verify=not no_verify, simplify=simplify, weights=weights,
                             exporter=exporter, fold_bn=fold_bn, rtol=rtol, atol=atol)
    except ExportFailed as e:
        if e.report is not None and e.report.verify is not None:
            for line in parity_lines(e.report.verify):
                click.echo(line, err=True)
        raise
    if fmt == "json":
        import json

        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(render_export(report))
