"""`cnnscope report MODEL [MODEL2] -o report.html`."""
from __future__ import annotations

import click

CHART_NAMES = ["macs", "params", "biggest", "shape", "rf", "memory", "latency"]   # == cnnscope.report.html.CHARTS


@click.command(context_settings={"max_content_width": 100})
@click.argument("model", metavar="MODEL")
@click.argument("model2", metavar="[MODEL2]", required=False)
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="The file to write (atomically): .html (the report), .svg/.png (one chart), .md (Markdown "
                   "with every chart as an SVG beside it).")
@click.option("--format", "-f", "fmt", type=click.Choice(["html", "svg", "png", "markdown"]),
              help="Default: from the output's suffix.")
@click.option("--chart", type=click.Choice(CHART_NAMES), default="macs", show_default=True,
              help="The chart of --format svg/png: MACs or params by stage, the biggest layers, feature-map "
                   "size and channels along the depth, receptive field along the depth, live memory.")
@click.option("--input-size", "-i", metavar="CxHxW", help="Input size (default: the model's natural size).")
@click.option("--batch-size", "-b", type=click.IntRange(min=1, max=2**31 - 1), default=1, show_default=True)
@click.option("--weights", "-w", metavar="NAME|FILE", help="torchvision weights name or a state_dict file for MODEL.")
@click.option("--weights2", metavar="NAME|FILE", help="The same for MODEL2.")
@click.option("--profile", "with_profile", is_flag=True,
              help="Also measure MODEL's latency per layer here (cnnscope profile): a chart of the slowest layers "
                   "coloured by roofline bound, and a time column in the layer table. Runs the model for real.")
@click.option("--runtime", type=click.Choice(["torch", "ort"]), default="torch", show_default=True,
              help="With --profile: PyTorch eager or onnxruntime (an .onnx MODEL: onnxruntime).")
@click.option("--runs", type=click.IntRange(3, 100_000), default=10, show_default=True,
              help="With --profile: interleaved measured runs (median and IQR).")
def report(model, model2, output, fmt, chart, input_size, batch_size, weights, weights2, with_profile, runtime, runs):
    """A self-contained HTML report of MODEL (and its comparison with MODEL2).

    \b
    One file, no network: the totals with their conventions (params, MACs, FLOPs = 2 × MACs,
    bytes, receptive field), MACs and params by stage, the biggest layers, feature-map size and
    channels along the depth, the receptive field along the depth (marking where it covers the
    whole input), live activation memory, the per-layer table (sortable, filterable, nesting
    visible), an artifact's history and, with MODEL2, the per-layer comparison highlighted.
    MODEL: any source the other commands take, .onnx included.

    \b
    Examples:
      cnnscope report resnet18 -o resnet18.html
      cnnscope report resnet18 r18-sparse.pt -o r18-compare.html
      cnnscope report resnet18 -o rf.svg --chart rf
      cnnscope report resnet18.onnx -o resnet18-report.md
      cnnscope report mnist_cnn --profile -o mnist-latency.html
    """
    from .. import html_report

    written = html_report(model, output, model2, format=fmt, chart=chart, input_size=input_size,
                          batch_size=batch_size, weights=weights, weights2=weights2, profile=with_profile,
                          runtime=runtime, runs=runs)
    click.echo(f"wrote {output}" + (f" ({len(written['layers'])} layers)" if written else ""))
