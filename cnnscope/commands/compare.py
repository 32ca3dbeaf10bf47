"""`cnnscope compare A B`: a per-layer diff of two models (e.g. an original and its pruned artifact)."""
from __future__ import annotations

import click

from .options import emit, output_option

FORMATS = ["table", "json", "markdown"]


@click.command(context_settings={"max_content_width": 100})
@click.argument("model_a", metavar="A")
@click.argument("model_b", metavar="B")
@click.option("--weights-a", metavar="NAME|FILE", help="--weights for A (torchvision weights name or state_dict file).")
@click.option("--weights-b", metavar="NAME|FILE", help="--weights for B.")
@click.option("--input-size", "-i", metavar="CxHxW",
              help="Input size for both models. Default: each model's own (weights' crop size, else natural size).")
@click.option("--batch-size", "-b", type=click.IntRange(min=1, max=2**31 - 1), default=1, show_default=True)
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="markdown: totals plus a folded per-layer table, ready for a PR comment.")
@click.option("--depth", "-d", type=click.IntRange(min=0), default=None,
              help="Show layers down to this depth (deeper ones are folded into their parent's counts).")
@click.option("--changed-only", is_flag=True, help="Show only layers whose params, MACs, shape, type or RF differ.")
@output_option
def compare(model_a, model_b, weights_a, weights_b, input_size, batch_size, fmt, depth, changed_only, output):
    """Per-layer diff of models A and B: params, MACs, output shape and receptive field of each side,
    totals with ratios (B ÷ A), and the layers present in only one of them.

    \b
    A and B are any MODEL: a torchvision name, lenet5/zfnet/mnist_cnn, FILE.py:fn,
    pkg.mod:fn, a cnnscope artifact (.pt) or an ONNX file (.onnx). Layers are matched
    by qualified module name, so an artifact from `cnnscope prune`/`factorize` lines up
    with its original; a rewritten layer's new children show as "only in B".
    Each model is analysed once, on meta tensors (no weights are allocated).

    \b
    Examples:
      cnnscope compare resnet50 resnet50-pruned.pt
      cnnscope compare resnet50 resnet50-pruned.pt --changed-only --depth 2
      cnnscope compare vgg16 vgg16-factorized.pt --format markdown -o pr-comment.md
      cnnscope compare resnet18 resnet18.onnx --format json
    """
    from .. import compare as compare_models
    from ..report.compare import render_compare

    if output and output != "-":
        from ..fileio import check_output_path

        from .options import input_paths

        check_output_path(output, model_a, model_b, *input_paths())
    diff = compare_models(model_a, model_b, weights_a=weights_a, weights_b=weights_b, input_size=input_size,
                          batch_size=batch_size)
    emit(render_compare(diff, fmt, depth, changed_only), output)
