"""`cnnscope list`."""
from __future__ import annotations

import click

from .options import emit, output_option


@click.command("list")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--filter", "pattern", metavar="GLOB", help="Only names matching GLOB, e.g. 'resnet*'.")
@output_option
def list_models(fmt, pattern, output):
    """Every model name cnnscope knows, with params and MACs.

    torchvision rows show torchvision's published numbers for the model's first weights
    (params and GMACs at the weights' input size); built-in rows are computed here.
    """
    import fnmatch
    import json

    from ..models_catalog import catalog
    from ..units import human_count

    rows = [r for r in catalog() if pattern is None or fnmatch.fnmatch(r["name"], pattern)]
    if fmt == "json":
        emit(json.dumps(rows, indent=2) + "\n", output)
        return
    from tabulate import tabulate

    table = tabulate(
        [[r["name"], r["source"], "×".join(map(str, r["input_size"])), human_count(r["params"]),
          human_count(r["macs"]), r["note"]] for r in rows],
        headers=["Model", "Source", "Input", "Params", "MACs", "Numbers from"], disable_numparse=True)
    emit(table + f"\n\n{len(rows)} models. 1 MAC = one multiply-accumulate; FLOPs = 2 × MACs.\n", output)
