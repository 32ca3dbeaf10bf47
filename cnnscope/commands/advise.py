"""`cnnscope advise MODEL`: rank this model's compression opportunities, each computed by applying it."""
from __future__ import annotations

import click

from .options import model_options, output_option


@click.command(context_settings={"max_content_width": 100})
@model_options
@click.option("--layers", "-l", metavar="GLOB", multiple=True, help="Only consider rewrite sites matching GLOB.")
@click.option("--top", type=click.IntRange(min=1, max=2**31 - 1), default=15, show_default=True,
              help="Per-site rows to show in the table (json lists all).")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@output_option
def advise(model, weights, input_size, batch_size, layers, top, fmt, output):
    """Rank where stride-2, 1×1 reduction, factorization, pruning and FC → global pooling
    would save the most in MODEL.

    \b
    Every number comes from applying the rewrite to the meta model and analysing
    the result again (no weights are allocated, nothing is estimated).

    \b
    Examples:
      cnnscope advise vgg16
      cnnscope advise resnet50 --format json -o advice.json
      cnnscope advise inception_v3 --layers 'Mixed_5*'
    """
    import json

    from ..transforms.advise import advise as run_advise
    from ..report.render import format_rf
    from .options import emit

    report = run_advise(model, input_size=input_size, weights=weights, batch_size=batch_size, layers=list(layers))
    if fmt == "json":
        emit(json.dumps(report, indent=2) + "\n", output)
    else:
        emit(render(report, top, format_rf), output)


def render(report: dict, top: int, format_rf) -> str:
    from tabulate import tabulate

    from ..units import human_count

    t = report["totals"]
    lines = [f"{report['model']} (input {'×'.join(map(str, report['input_shape']))}): "
             f"{human_count(t['params'])} params, {human_count(t['macs'])} MACs, RF {format_rf(t['receptive_field'])}",
             ""]
    rows = []
    for m in report["methods"]:
        rows.append([m["method"], human_count(m["macs"][1]), f"{m['macs'][1] / m['macs'][0]:.1%}" if m["macs"][0] else "-",
                     human_count(m["params"][1]), f"{m['params'][1] / m['params'][0]:.1%}" if m["params"][0] else "-",
                     format_rf(m["receptive_field"][1])])
    lines.append(tabulate(rows, headers=["method (whole model)", "MACs after", "of before", "params after",
                                         "of before", "RF after"], disable_numparse=True,
                          colalign=("left", "right", "right", "right", "right", "right")))
    if report["sites"]:
        lines.append("")
        rows = [[s["method"], s["site"], human_count(s["macs_saved"]), human_count(s["params_saved"]),
                 f"{format_rf(s['rf'][0])} → {format_rf(s['rf'][1])}"] for s in report["sites"][:top]]
        lines.append(tabulate(rows, headers=["method", "site", "MACs saved", "params saved", "layer RF"],
                              disable_numparse=True))
        if len(report["sites"]) > top:
            lines.append(f"… {len(report['sites']) - top} more sites (--top N or --format json)")
    for m in report["methods"]:
        if m.get("note"):
            lines.append(f"note: {m['note']}")
    lines.append("MACs: 1 MAC = one multiply-accumulate; FLOPs = 2 × MACs. Apply with cnnscope stride|reduce|factorize|"
                 "prune MODEL -o OUT.pt.")
    return "\n".join(lines) + "\n"
