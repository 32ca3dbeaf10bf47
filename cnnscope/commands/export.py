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
    from ..units import human_bytes

    try:
        report = export_onnx(model, output, input_size=input_size, batch_size=batch_size, opset=opset,
                             dynamic_batch=dynamic_batch, verify=not no_verify, simplify=simplify, weights=weights,
                             exporter=exporter, fold_bn=fold_bn, rtol=rtol, atol=atol)
    except ExportFailed as e:
        if e.report is not None and e.report.verify is not None:
            _print_parity(e.report.verify)
        raise
    if fmt == "json":
        import json

        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(_render(report, human_bytes))


def _print_parity(vr) -> None:
    for r in vr.runs:
        click.echo(f"  batch {r.batch_size}: max abs diff {r.max_abs_diff:.3g}, max rel diff {r.max_rel_diff:.3g} "
                   f"(max |PyTorch| {r.ref_max_abs:.3g}) {'ok' if r.passed else 'ABOVE TOLERANCE'}", err=True)


def _render(r, human_bytes) -> str:
    shape = "×".join(str(d) for d in r.input_shape)
    if r.dynamic_batch:
        shape = "N×" + "×".join(str(d) for d in r.input_shape[1:]) + f" (dynamic batch; exported at N={r.input_shape[0]})"
    lines = [f"Exported {r.model} → {r.path}",
             f"  exporter:   {'TorchScript (torch.onnx.export dynamo=False)' if r.exporter == 'torchscript' else 'dynamo (torch.export)'}"
             f", opset {r.opset}, input {shape}, {r.export_seconds:.2f} s"]
    size = human_bytes(r.file_bytes) + (f" (weights in {r.external_data})" if r.external_data else "")
    lines.append(f"  file:       {size}, {r.nodes} nodes" + (f", simplified with {r.simplified_with}" if r.simplified_with else ""))
    same = "= the PyTorch model's" if r.params_in_file == r.torch_params else f"vs {r.torch_params:,} in the PyTorch model"
    lines.append(f"  params:     {r.params_in_file:,} in the file ({same})")
    if r.params_note:
        lines.append(f"              {r.params_note}")
    if r.verify is None:
        lines.append("  verified:   no (--no-verify); onnx.checker ok")
    else:
        lines.append("  onnx.checker: ok")
        for run in r.verify.runs:
            lines.append(f"  parity:     batch {run.batch_size}: max abs diff {run.max_abs_diff:.3g}, "
                         f"max rel diff {run.max_rel_diff:.3g} (max |PyTorch| {run.ref_max_abs:.3g}) ok")
        lines.append(f"  tolerance:  |ORT − PyTorch| ≤ {r.verify.atol:g} + {r.verify.rtol:g} × max|PyTorch|; "
                     f"onnxruntime {r.verify.seconds:.2f} s")
    for note in r.notes:
        lines.append(f"  note:       {note}")
    return "\n".join(lines)
