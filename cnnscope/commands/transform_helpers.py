"""Glue shared by the transform commands (prune, reduce, stride, factorize)."""
from __future__ import annotations

import click


def transform_output_option(fn):
    return click.option("--output", "-o", type=click.Path(dir_okay=False),
                        help="Artifact to write (.pt). Never the input file. Loadable with "
                             "torch.load(weights_only=True) and by every cnnscope command.")(fn)


def load_for_transform(model: str, weights: str | None, input_size, batch_size: int = 1):
    """(source, real CPU model, analysis of it): the model is built once with real weights
    (the artifact's, the --weights file's, or a fresh init) and analysed once."""
    from ..analysis.engine import analyze
    from ..loading.artifact import load_model
    from ..loading.source import resolve

    src = resolve(model, weights)
    real = load_model(src)
    analysis = analyze(real, input_size=input_size, batch_size=batch_size)
    analysis.name = src.display_name
    analysis.source = src
    return src, real, analysis
