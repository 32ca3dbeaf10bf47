"""Renderers over a :class:`~cnnscope.analysis.summary.Summary`'s plain data: table, JSON, CSV,
Markdown. Rendering never computes; every number comes from ``Summary.to_dict()``.
"""
from __future__ import annotations

import csv
import io
import json
from typing import Any, Callable

from ..units import human_bytes, human_count

MAC_NOTE = "1 MAC = one multiply-accumulate (conv/linear/matmul/attention); FLOPs = 2 × MACs"

RENDERERS: dict[str, Callable[[dict, int | None], str]] = {}


def register_renderer(name: str):
    def deco(fn):
        RENDERERS[name] = fn
        return fn

    return deco


def _shape(s: Any) -> str:
    if s is None:
        return "-"
    if s and isinstance(s[0], list):
        return " ".join("×".join(str(d) for d in x) for x in s[:3]) + (" …" if len(s) > 3 else "")
    return "×".join(str(d) for d in s)


#: dimension names of an input, by rank
LAYOUTS = {3: "N×C×L", 4: "N×C×H×W", 5: "N×C×D×H×W"}


def _layout(shape) -> str:
    return LAYOUTS.get(len(shape), "N×" + "×".join(f"d{i}" for i in range(1, len(shape))))


def format_rf(rf: Any) -> str:
    if rf is None:
        return "-"
    if rf == "global":
        return "global"
    size, stride = rf["size"], rf["stride"]
    sz = "×".join(str(x) for x in size) if len(set(size)) > 1 else f"{size[0]}"
    st = "×".join(str(x) for x in stride) if len(set(stride)) > 1 else f"{stride[0]}"
    # ~ an envelope (approximate), * paths merged with different centres or strides (misaligned)
    return f"{'~' if rf.get('approximate') else ''}{sz} /{st}{'*' if rf.get('misaligned') else ''}"


RF_LEGEND = "RF marks: ~ approximate (an envelope of the region), * misaligned merge; `cnnscope explain` shows why."


def _rf_flagged(data: dict) -> bool:
    return any(isinstance(r.get("receptive_field"), dict) and (r["receptive_field"].get("approximate")
               or r["receptive_field"].get("misaligned")) for r in data["layers"])


def visible_layers(data: dict, depth: int | None) -> list[dict]:
    """Rows at depth ≤ ``depth``: deeper rows are folded into their parent (whose counts include them)."""
    return [r for r in data["layers"] if depth is None or r["depth"] <= depth]


#: the table's default depth: top-level blocks and their children (``--depth`` shows more or fewer)
TABLE_DEPTH = 2


def tree_labels(rows: list[dict]) -> list[str]:
    """Each row's name drawn as a tree: top-level rows by name, deeper rows by their last name part
    under ``├─``/``└─`` after one ``│`` per enclosing level, so the qualified name of every row can be
    read back from the table (tabulate keeps the glyphs, unlike leading spaces)."""
    depths = [r["depth"] for r in rows]
    n = len(rows)

    def is_last(i: int) -> bool:
        for j in range(i + 1, n):
            if depths[j] < depths[i]:
                return True
            if depths[j] == depths[i]:
                return False
        return True

    last = [is_last(i) for i in range(n)]
    labels = []
    for i, r in enumerate(rows):
        d = depths[i]
        if d <= 1:
            labels.append(r["name"])
            continue
        prefix = "│  " * (d - 2)      # as torchinfo: a bar per level (spaces would be stripped by tabulate)
        labels.append(prefix + ("└─ " if last[i] else "├─ ") + r["name"].rsplit(".", 1)[-1])
    return labels


def names_from_tree(labels: list[str]) -> list[str]:
    """The qualified names back from :func:`tree_labels` (the inverse; used by tests and tools)."""
    names, stack = [], []
    for label in labels:
        body = label.lstrip("│ ")
        if body.startswith(("├─ ", "└─ ")):
            depth = (len(label) - len(body)) // 3 + 2
            part = body[3:]
        else:
            depth, part = 1, label
        stack = stack[:depth - 1] + [part]
        names.append(".".join(stack))
    return names


def _has_rf(data: dict) -> bool:
    return any(r.get("receptive_field") is not None for r in data["layers"])


def _folded_note(data: dict, depth: int, shown: int) -> list[str]:
    hidden = len(data["layers"]) - shown
    if not hidden:
        return []
    deepest = max(r["depth"] for r in data["layers"])
    return [f"({hidden} deeper rows folded into their parents; --depth {min(depth + 1, deepest)} or "
            f"--depth {deepest} shows them)"]


@register_renderer("table")
def render_table(data: dict, depth: int | None = None) -> str:
    from tabulate import tabulate

    depth = TABLE_DEPTH if depth is None else depth
    with_rf = _has_rf(data)
    headers = ["Layer", "Type", "Output shape", "Params", "MACs"] + (["RF /jump"] if with_rf else [])
    visible = visible_layers(data, depth)
    rows = []
    for label, r in zip(tree_labels(visible), visible):
        row = [label, r["type"], _shape(r["output_shape"]), human_count(r["params"]) if r["params"] else "-",
               human_count(r["macs"]) if r["macs"] else "-"]
        if with_rf:
            row.append(format_rf(r.get("receptive_field")))
        rows.append(row)
    t = data["totals"]
    body = tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True,
                    colalign=("left", "left", "left", "right", "right") + (("right",) if with_rf else ())) \
        if rows else "(--depth 0: totals only)"
    lines = [
        f"Model: {data['model']}    input: {_shape(data['input_shape'])} ({_layout(data['input_shape'])})",
        body,
        *_folded_note(data, depth, len(visible)),
        "",
        f"Params:      {t['params']:>16,}  ({human_count(t['params'])}; trainable {t['trainable_params']:,}, "
        f"non-trainable {t.get('non_trainable_params', 0):,})",
        f"MACs:        {t['macs']:>16,}  ({human_count(t['macs'])} MACs)",
        f"FLOPs:       {t['flops']:>16,}  ({human_count(t['flops'])} FLOPs = 2 × MACs)",
        f"Param size:  {human_bytes(t['param_bytes']):>16}   buffers {human_bytes(t['buffer_bytes'])}",
        f"Activations: {human_bytes(t['activation_bytes']):>16}   (bytes written by the forward, batch included)",
    ]
    if t.get("receptive_field") is not None:
        lines.append(f"Receptive field: {_rf_sentence(t['receptive_field'])}")
    if with_rf and _rf_flagged(data):
        lines.append(RF_LEGEND)
    lines.append(f"Convention: {MAC_NOTE}.")
    return "\n".join(lines) + "\n"


def _rf_sentence(rf: Any) -> str:
    if rf == "global":
        return "global"

    def axes(v):
        return "×".join(str(x) for x in v)

    return (f"{axes(rf['size'])} pixels, jump {axes(rf['stride'])}, padding {axes(rf['padding'])}"
            + (" (misaligned merge)" if rf.get("misaligned") else "")
            + (" (approximate)" if rf.get("approximate") else "")
            + " (the last feature map before the network becomes global)")


@register_renderer("json")
def render_json(data: dict, depth: int | None = None) -> str:
    out = dict(data)
    out["layers"] = visible_layers(data, depth)
    return json.dumps(out, indent=2) + "\n"


def _rf_numbers(rf: Any) -> list:
    """RF height, width, jump height, width and a flag ("", global, approximate, misaligned): numbers
    a spreadsheet can sort, not the table's "7 /2" text."""
    if rf is None:
        return ["", "", "", "", ""]
    if rf == "global":
        return ["", "", "", "", "global"]
    size, stride = list(rf["size"])[-2:], list(rf["stride"])[-2:]     # 3-D: the H and W axes
    if len(size) == 1:                                                 # 1-D signals: one axis, in rf_h
        size, stride = [size[0], ""], [stride[0], ""]
    flag = "approximate" if rf.get("approximate") else "misaligned" if rf.get("misaligned") else ""
    return [*size, *stride, flag]


@register_renderer("csv")
def render_csv(data: dict, depth: int | None = None) -> str:
    """One row per layer, numeric columns (RF split into height/width/jump), then a ``TOTAL`` row with the
    model's totals (depth 0)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    with_rf = _has_rf(data)
    rf_cols = ["rf_h", "rf_w", "rf_jump_h", "rf_jump_w", "rf_note"] if with_rf else []
    w.writerow(["name", "type", "depth", "output_shape", "params", "macs"] + rf_cols)
    for r in visible_layers(data, depth):
        row = [r["name"], r["type"], r["depth"], "x".join(map(str, r["output_shape"])) if r["output_shape"] and
               not isinstance(r["output_shape"][0], list) else json.dumps(r["output_shape"]), r["params"], r["macs"]]
        if with_rf:
            row += _rf_numbers(r.get("receptive_field"))
        w.writerow(row)
    t = data["totals"]
    total = ["TOTAL", data["model"], 0, "x".join(map(str, data["input_shape"])), t["params"], t["macs"]]
    if with_rf:
        total += _rf_numbers(t.get("receptive_field"))
    w.writerow(total)
    return buf.getvalue()


@register_renderer("markdown")
def render_markdown(data: dict, depth: int | None = None) -> str:
    from tabulate import tabulate

    depth = TABLE_DEPTH if depth is None else depth
    with_rf = _has_rf(data)
    headers = ["Layer", "Type", "Output shape", "Params", "MACs"] + (["RF /jump"] if with_rf else [])
    rows = [[f"`{r['name']}`", r["type"], _shape(r["output_shape"]), f"{r['params']:,}", f"{r['macs']:,}"]
            + ([format_rf(r.get("receptive_field"))] if with_rf else [])
            for r in visible_layers(data, depth)]
    t = data["totals"]
    rows.append(["**total**", "", _shape(data["input_shape"]) + " in", f"**{t['params']:,}**", f"**{t['macs']:,}**"]
                + ([format_rf(t.get("receptive_field"))] if with_rf else []))
    head = (f"**{data['model']}** — input {_shape(data['input_shape'])}: {t['params']:,} params, "
            f"{human_count(t['macs'])} MACs ({human_count(t['flops'])} FLOPs = 2 × MACs)\n\n")
    return head + tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True) + "\n"


def render(data: dict, fmt: str = "table", depth: int | None = None) -> str:
    return RENDERERS[fmt](data, depth)
