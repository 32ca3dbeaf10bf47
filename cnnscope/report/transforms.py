"""Text rendering of the transform reports (``prune``, ``reduce``, ``stride``, ``factorize``): the
dicts of :class:`cnnscope.transforms.pipeline.TransformReport`. Never computes."""
from __future__ import annotations

from collections import Counter

from tabulate import tabulate

from ..units import human_count
from .compare import render_diff_table
from .render import format_rf


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def latency_lines(report: dict) -> list[str]:
    """``prune --target-latency``: the target, what the latency table predicted, what was measured."""
    search, measured = report.get("target_search"), report.get("measured")
    if not search or not measured:
        return []
    t = search["table"]
    before, after = measured["before"], measured["after"]
    return [f"Latency target {search['target']} = {search['target_ms']:.3f} ms on {search['runtime']} "
            f"({search['threads']} thread{'s' if search['threads'] != 1 else ''}): the table "
            f"({'cached' if t['cached'] else 'measured now'}, widths {', '.join(f'{w:.0%}' for w in t['widths'])}) "
            f"predicted {search['predicted_ms']:.3f} ms at ratio {search['ratio']:.4g}",
            f"Measured: {before['median_ms']:.3f} ms → {after['median_ms']:.3f} ms (IQR {after['iqr_ms']:.3f}, "
            f"{after['runs']} interleaved runs; target {measured['target_ms']:.3f} ms; prediction error "
            f"{measured['prediction_error']:+.1%} after the machine's drift ×{measured['drift']:.3f} since the "
            f"table): {'target met' if measured['met'] else 'target missed'}"]


def render_prune_report(report: dict) -> str:
    """The human-readable report: what was done, before/after totals and layers, channels, accuracy."""
    d = report["details"]
    lines = []
    if report["method"] == "unstructured":
        lines.append(f"{report['model']}: unstructured pruning to {_pct(d['sparsity'])} sparsity ({d['scope']} "
                     f"scope), {report['seconds']:.2f} s")
        rows = [[r["name"], human_count(r["numel"]), human_count(r["zeros"]), _pct(r["sparsity"])]
                for r in d["layers"][:40]]
        t = d["total"]
        rows.append(["total (conv/linear weights)", human_count(t["numel"]), human_count(t["zeros"]),
                     _pct(t["sparsity"])])
        a = d["all_params"]
        rows.append(["all parameters", human_count(a["numel"]), human_count(a["zeros"]), _pct(a["sparsity"])])
        lines.append(tabulate(rows, headers=["weight", "elements", "zeros", "sparsity"], disable_numparse=True,
                              colalign=("left", "right", "right", "right")))
        if len(d["layers"]) > 40:
            lines.append(f"… and {len(d['layers']) - 40} more layers (use --format json for all)")
    else:
        how = (f"ratio {d['ratio']:.4g}" if d["target"]["macs"] is None and d["target"]["params"] is None else
               "target " + " and ".join(x for x in (
                   d["target"]["macs"] is not None and f"{human_count(d['target']['macs'])} MACs",
                   d["target"]["params"] is not None and f"{human_count(d['target']['params'])} params") if x)
               + f" (ratio {d['ratio']:.4g})")
        lines.append(f"{report['model']}: structured pruning, criterion {d['criterion']}, {d['scope']} scope, {how}, "
                     f"{report['seconds']:.2f} s")
        lines += latency_lines(report)
        lines.append("")
        lines.append(render_diff_table(report["diff"], max_rows=0).rstrip("\n").split("\n\n")[0])
        groups = d["groups"]
        pruned = [g for g in groups if g["pruned"]]
        kept = [g for g in groups if not g["pruned"] and g["why_not"]]
        lines.append("")
        summary = f"channel groups: {len(pruned)} of {len(groups)} pruned"
        if kept:
            why = Counter(g["why_not"] for g in kept)
            summary += "; kept whole: " + "; ".join(f"{n}× {w}" for w, n in why.most_common(4))
        lines.append(summary)
        rows = [[r["name"], r["type"], f"{r['in'][0]} → {r['in'][1]}" if r["in"][0] != r["in"][1] else str(r["in"][0]),
                 f"{r['out'][0]} → {r['out'][1]}" if r["out"][0] != r["out"][1] else str(r["out"][0])]
                for r in d["layers"] if r["kind"] != "norm"]     # norm layers follow their conv
        if rows:
            lines.append(tabulate(rows[:40], headers=["layer", "type", "in channels", "out channels"],
                                  disable_numparse=True))
            if len(rows) > 40:
                lines.append(f"… and {len(rows) - 40} more changed layers (use --format json for all)")
        lines.append("MACs: 1 MAC = one multiply-accumulate; FLOPs = 2 × MACs.")
    lines.extend(render_tail(report, "pruning"))
    return "\n".join(lines) + "\n"


def skipped_lines(skipped: list[dict], names_shown: int = 4) -> list[str]:
    """One line per reason, most frequent first: ``skipped 3 × 1×1 kernel: … (a, b, c)``; the first
    ``names_shown`` names of each reason, the rest counted (every name is in ``--format json``)."""
    by_reason: dict[str, list[str]] = {}
    for s in skipped:
        by_reason.setdefault(s["reason"], []).append(s["name"])
    lines = []
    for reason, names in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(names[:names_shown]) + (f", … {len(names) - names_shown} more" if len(names) > names_shown
                                                  else "")
        lines.append(f"skipped {len(names)} × {reason}: {shown}")
    return lines


def render_rewrite_report(report: dict) -> str:
    """reduce/stride/factorize: totals before → after, one row per rewritten site, skips, accuracy."""
    d = report["details"]
    what = report["kind"] + (f" --method {report['method']}" if report["kind"] == "factorize" else "")
    lines = [f"{report['model']}: {what}, {len(d['sites'])} site{'s' if len(d['sites']) != 1 else ''} rewritten, "
             f"{len(d['skipped'])} skipped", ""]
    lines.append(render_diff_table(report["diff"], max_rows=0).rstrip("\n").split("\n\n")[0])
    lines.append("")
    rows = [[r["name"], r["change"], human_count(r["params"][0]), human_count(r["params"][1]),
             human_count(r["macs"][0]), human_count(r["macs"][1]),
             format_rf(r["receptive_field"][0]), format_rf(r["receptive_field"][1]),
             "-" if r["rel_error"] is None else f"{r['rel_error']:.2e}"] for r in report["sites"]]
    lines.append(tabulate(rows, headers=["layer", "rewrite", "params before", "params after", "MACs before",
                                         "MACs after", "RF before", "RF after", "rel. error"], disable_numparse=True))
    if "output_error" in d:
        on = "a random input" if report["error_inputs"] == "random normal" else report["error_inputs"]
        lines.append(f"relative error of the model output on {on}: {d['output_error']:.2e}")
    if d["skipped"]:
        lines += skipped_lines(d["skipped"])
    on = ("random inputs" if report["error_inputs"] == "random normal"
          else f"the activations of {report['error_inputs']}")
    lines.append(f"MACs: 1 MAC = one multiply-accumulate; FLOPs = 2 × MACs. Errors: ‖new − old‖ / ‖old‖ of each "
                 f"layer's output on {on}.")
    lines.extend(render_tail(report, "the rewrite"))
    return "\n".join(lines) + "\n"


def render_tail(report: dict, what: str) -> list[str]:
    """The lines every transform report ends with: accuracy (with --data), notes, the dry-run line."""
    lines = render_accuracy(report.get("accuracy"), what)
    lines += [f"note: {note}" for note in report["notes"]]
    if report["output"] is None:
        lines.append("dry run: verified, nothing written")
    return lines


def render_accuracy(acc: dict | None, what: str) -> list[str]:
    """The accuracy table's lines (empty without --data); ``what`` as in "before pruning"."""
    if not acc:
        return []
    rows = [[f"before {what}", _pct(acc["before"]["top1"])], [f"after {what}", _pct(acc["after"]["top1"])]]
    if "fine_tuned" in acc:
        rows.append([f"after fine-tuning ({acc['epochs']} epoch{'s' if acc['epochs'] != 1 else ''})",
                     _pct(acc["fine_tuned"]["top1"])])
    return ["", tabulate(rows, headers=[f"top-1 on val/ ({acc['val_images']} images)", ""], disable_numparse=True,
                         colalign=("left", "right"))]
