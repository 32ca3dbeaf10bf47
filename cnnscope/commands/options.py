"""Options shared by several commands, defined once."""
from __future__ import annotations

import os

import click

MODEL_HELP = "MODEL: a torchvision name, lenet5/zfnet/mnist_cnn, FILE.py:fn, pkg.mod:fn, an artifact .pt or .onnx."


def model_options(fn):
    """``MODEL`` plus ``--weights``, ``--input-size``, ``--batch-size``."""
    fn = click.option("--batch-size", "-b", type=click.IntRange(min=1, max=2**31 - 1), default=1, show_default=True,
                      help="Batch size N of the analysed input.")(fn)
    fn = click.option("--input-size", "-i", metavar="CxHxW",
                      help="Input size: 3x224x224, 224x224, 224, or with the batch: 2x3x224x224 (N×C×H×W). Default: the weights' crop size, else the "
                           "model's natural size (224; 299 for inception_v3; 1x28x28 for lenet5/mnist_cnn).")(fn)
    fn = click.option("--weights", "-w", metavar="NAME|FILE",
                      help="torchvision weights name (DEFAULT, IMAGENET1K_V2, ...): configures the architecture as "
                           "torchvision does for them and sets the input size; never downloaded. Or a local "
                           "state_dict file, loaded with weights_only=True.")(fn)
    fn = click.argument("model", metavar="MODEL")(fn)
    return fn


def output_option(fn):
    return click.option("--output", "-o", type=click.Path(dir_okay=False, allow_dash=True),
                        help="Write to FILE instead of stdout (atomically; never onto an input; - is stdout).")(fn)


#: parameters that name files the command writes, not reads
OUTPUT_PARAMS = {"output", "junit_xml"}


def input_paths() -> list[str]:
    """Files named by the running command's inputs (MODEL, --weights, --config, --baseline, FILE.py of
    FILE.py:fn, ./pyproject.toml that check and the trust list read): an output path must never be
    one of them. Folders named by inputs (``--data DIR``) are registered as read trees, so no output
    lands inside them either (see :func:`cnnscope.fileio.note_read_tree`)."""
    from ..fileio import note_read_tree

    ctx = click.get_current_context(silent=True)
    found: list[str] = [p for p in ("pyproject.toml",) if os.path.isfile(p)]
    if ctx is None:
        return found
    for key, value in ctx.params.items():
        if key in OUTPUT_PARAMS:
            continue
        for v in (value if isinstance(value, (list, tuple)) else [value]):
            if not isinstance(v, str) or not v:
                continue
            for cand in (v, v.rpartition(":")[0]):
                if cand and os.path.exists(cand):
                    if os.path.isdir(cand):
                        if key == "data":
                            note_read_tree(cand)
                    else:
                        found.append(cand)
    return found


def emit(text: str, output: str | None, quiet: bool = False) -> None:
    """Print, or write atomically to ``output`` (never onto one of the command's input files);
    ``quiet``: no "wrote FILE" line (the caller's one error line says it)."""
    if output == "-":
        click.echo(text, nl=False)
    elif output:
        from ..fileio import atomic_write_text, check_output_path

        check_output_path(output, *input_paths())
        atomic_write_text(output, text)
        if not quiet:
            click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
