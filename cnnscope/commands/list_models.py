"""`cnnscope list`."""
from __future__ import annotations

import click

from .options import emit, output_option


@click.command("list")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--filter", "pattern", metavar="GLOB", help="Only names matching GLOB, e.g. 'resnet*'.")
@click.option("--exact", is_flag=True, help="Analyse each torchvision model for its exact MAC count (on meta "
                                              "tensors, ~0.1-1 s a model) instead of the published, rounded GMACs.")
@output_option
def list_models(fmt, pattern, exact, output):
    """Every model name cnnscope knows, with params and MACs.

    torchvision rows show torchvision's published numbers for the model's first weights
    (params, and GMACs at the weights' input size, rounded to 3 decimals: JSON gives
    them as "gmacs" and "macs": null); --exact computes every MAC. Built-in rows are
    computed here.

    \b
    Examples:
      cnnscope list --filter 'resnet*'
      cnnscope list --filter 'resnet1*' --exact -f json
    """
    import json

    from ..models_catalog import catalog
    from ..units import human_count
    from .transform_helpers import terminal_progress

    rows = catalog(pattern, exact=exact, progress=terminal_progress)
    if fmt == "json":
        emit(json.dumps(rows, indent=2) + "\n", output)
        return
    from tabulate import tabulate

    table = tabulate(
        [[r["name"], r["source"], "×".join(map(str, r["input_size"])), human_count(r["params"]),
          human_count(r["macs"]) if r["macs"] is not None else f"{r['gmacs']:.3f}G", r["note"]] for r in rows],
        headers=["Model", "Source", "Input", "Params", "MACs", "Numbers from"], disable_numparse=True)
    rounded = any(r["macs"] is None for r in rows)
    emit(table + f"\n\n{len(rows)} models. 1 MAC = one multiply-accumulate; FLOPs = 2 × MACs."
         + (" MACs with three decimals are torchvision's published, rounded figures (--exact computes them)."
            if rounded else "") + "\n", output)
