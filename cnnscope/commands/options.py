"""Options shared by several commands, defined once."""
from __future__ import annotations

import click

MODEL_HELP = "MODEL: a torchvision name, lenet5/zfnet/mnist_cnn, FILE.py:fn, pkg.mod:fn, an artifact .pt or .onnx."


def model_options(fn):
    """``MODEL`` plus ``--weights``, ``--input-size``, ``--batch-size``."""
    fn = click.option("--batch-size", "-b", type=click.IntRange(min=1), default=1, show_default=True,
                      help="Batch size N of the analysed input.")(fn)
    fn = click.option("--input-size", "-i", metavar="CxHxW",
                      help="Input size: 3x224x224, 224x224 or 224. Default: the weights' crop size, else the "
                           "model's natural size (224; 299 for inception_v3; 1x28x28 for lenet5/mnist_cnn).")(fn)
    fn = click.option("--weights", "-w", metavar="NAME|FILE",
                      help="torchvision weights name (DEFAULT, IMAGENET1K_V2, ...): configures the architecture as "
                           "torchvision does for them and sets the input size; never downloaded. Or a local "
                           "state_dict file, loaded with weights_only=True.")(fn)
    fn = click.argument("model", metavar="MODEL")(fn)
    return fn


def output_option(fn):
    return click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")(fn)


def emit(text: str, output: str | None) -> None:
    """Print, or write atomically to ``output``."""
    if output:
        from ..fileio import atomic_write_text, check_output_path

        check_output_path(output)
        atomic_write_text(output, text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
