"""Renderers over a :class:`~cnnscope.analysis.summary.Summary`'s plain data: table, JSON, CSV,
Markdown. Rendering never computes; every number comes from ``Summary.to_dict()``.
"""
from __future__ import annotations

import csv
import io
import json
import re
from typing import Any, Callable

from ..units import human_bytes, human_count

MAC_NOTE = "1 MAC = one multiply-accumulate (conv/linear/matmul/attention); FLOPs = 2 × MACs"

RENDERERS: dict[str, Callable[..., str]] = {}


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


def _trainable_text(t: Any) -> str:
    return "-" if t is None else {True: "yes", False: "no"}.get(t, str(t))


def _kernel(k: Any) -> str:
    return "×".join(str(x) for x in k) if k else "-"


#: column key -> (header, cell text for a table row, alignment). Order here is the order printed.
COLUMNS: dict[str, tuple[str, Callable[[dict], str], str]] = {
    "input": ("Input shape", lambda r: _shape(r.get("input_shape")), "left"),
    "output": ("Output shape", lambda r: _shape(r.get("output_shape")), "left"),
    "kernel": ("Kernel", lambda r: _kernel(r.get("kernel_shape")), "left"),
    "params": ("Params", lambda r: r["params_text"], "right"),
    "params%": ("Params %", lambda r: f"{r.get('params_percent', 0):.2f}%" if r["params"] and not r.get("repeat")
                else "-", "right"),
    "trainable": ("Trainable", lambda r: _trainable_text(r.get("trainable")), "left"),
    "macs": ("MACs", lambda r: human_count(r["macs"]) if r["macs"] else "-", "right"),
    "rf": ("RF /jump", lambda r: format_rf(r.get("receptive_field")), "right"),
    "live": ("Live mem", lambda r: human_bytes(r.get("live_bytes")), "right"),
    "bwd": ("Bwd MACs", lambda r: "-" if not r.get("backward_macs") else human_count(r["backward_macs"]), "right"),
}
#: what the table shows without ``--columns``
DEFAULT_COLUMNS = ("output", "params", "macs", "rf")


def parse_columns(text: str | None) -> tuple[str, ...]:
    """``"input,output,params"`` (or ``all``, or ``default,kernel``) -> column keys in print order;
    raises ValueError naming the unknown key and the known ones."""
    if not text:
        return DEFAULT_COLUMNS
    keys: list[str] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if part == "all":
            keys += list(COLUMNS)
        elif part == "default":
            keys += list(DEFAULT_COLUMNS)
        elif part in COLUMNS:
            keys.append(part)
        elif part:
            raise ValueError(f"unknown column {part!r}; choose from {', '.join(COLUMNS)}, all, default")
    return tuple(k for k in COLUMNS if k in keys)


def _call_rows(r: dict) -> list[dict]:
    """A row per call of a module the forward ran more than once (first call first), each with that
    call's shapes, MACs and RF; params are shown on the first call's row and marked shared after it."""
    calls = r.get("per_call") or []
    if len(calls) < 2:
        return [dict(r, params_text=human_count(r["params"]) if r["params"] else "-", call=None, repeat=False)]
    out = []
    for i, c in enumerate(calls, 1):
        first = i == 1
        out.append(dict(r, **c, params_text=(human_count(r["params"]) if r["params"] else "-") if first
                        else ("(shared)" if r["params"] else "-"), call=(i, len(calls)), repeat=not first))
    return out


def _table_rows(data: dict, depth: int | None, columns: tuple[str, ...], label) -> list[list[str]]:
    visible = visible_layers(data, depth)
    rows = []
    for tree_label, r in zip(tree_labels(visible), visible):
        for c in _call_rows(r):
            name = label(tree_label, r)
            if c["call"]:
                name += f" (call {c['call'][0]} of {c['call'][1]})"
            rows.append([name, r["type"]] + [COLUMNS[k][1](c) for k in columns])
    return rows


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


CALL_SUFFIX = re.compile(r" \(call \d+ of \d+\)$")


def names_from_tree(labels: list[str]) -> list[str]:
    """The qualified names back from :func:`tree_labels` (the inverse; used by tests and tools)."""
    names, stack = [], []
    for label in labels:
        label = CALL_SUFFIX.sub("", label)
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


def _columns_for(data: dict, columns: tuple[str, ...] | None) -> tuple[str, ...]:
    columns = DEFAULT_COLUMNS if columns is None else columns
    return tuple(k for k in columns if k != "rf" or _has_rf(data))


@register_renderer("table")
def render_table(data: dict, depth: int | None = None, columns: tuple[str, ...] | None = None) -> str:
    from tabulate import tabulate

    depth = TABLE_DEPTH if depth is None else depth
    columns = _columns_for(data, columns)
    headers = ["Layer", "Type"] + [COLUMNS[k][0] for k in columns]
    rows = _table_rows(data, depth, columns, lambda tree_label, r: tree_label)
    shown = len(visible_layers(data, depth))
    t = data["totals"]
    body = tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True,
                    colalign=("left", "left") + tuple(COLUMNS[k][2] for k in columns)) \
        if rows else "(--depth 0: totals only)"
    lines = [
        f"Model: {data['model']}    input: {_shape(data['input_shape'])} ({_layout(data['input_shape'])})"
        + (f"    bytes as {data['dtype']} (what-if: nothing converted)" if data.get("dtype") else ""),
        body,
        *_folded_note(data, depth, shown),
        *(["(call N of M: a module the forward ran M times; its params are counted once)"]
          if any(r.get("per_call") for r in visible_layers(data, depth)) else []),
        "",
        f"Params:      {t['params']:>16,}  ({human_count(t['params'])}; trainable {t['trainable_params']:,}, "
        f"non-trainable {t.get('non_trainable_params', 0):,})",
        *([_nonzero_line(t)] if t.get("nonzero_params") is not None else []),
        f"MACs:        {t['macs']:>16,}  ({human_count(t['macs'])} MACs)",
        f"FLOPs:       {t['flops']:>16,}  ({human_count(t['flops'])} FLOPs = 2 × MACs)",
        f"Param size:  {human_bytes(t['param_bytes']):>16}   buffers {human_bytes(t['buffer_bytes'])}",
        f"Activations: {human_bytes(t['activation_bytes']):>16}   (bytes written by the forward, batch included)",
    ]
    if t.get("peak_activation_bytes") is not None:
        lines.append(_peak_line(t))
    if data.get("training"):
        lines += _training_lines(data["training"])
    if data.get("conventions"):
        lines += _convention_lines(data["conventions"])
    if t.get("estimated_total_bytes", -1) >= 0:
        lines.append(f"Est. total:  {human_bytes(t['estimated_total_bytes']):>16}   (input "
                     f"{human_bytes(t.get('input_bytes', 0))} + activations + params + buffers: every activation "
                     "kept: an upper bound for inference; torchinfo's also doubles activations for a backward)")
    if t.get("receptive_field") is not None:
        lines.append(f"Receptive field: {_rf_sentence(t['receptive_field'])}")
    if "rf" in columns and _rf_flagged(data):
        lines.append(RF_LEGEND)
    if data.get("uncounted_ops"):
        lines.append(uncounted_line(data["uncounted_ops"]))
    if data.get("history"):
        lines.append("History:     " + " → ".join(data["history"]))
    lines.append(f"Convention: {MAC_NOTE}.")
    return "\n".join(lines) + "\n"


def _nonzero_line(t: dict) -> str:
    zeros = 1 - t["nonzero_params"] / t["params"] if t["params"] else 0.0
    why = ": unstructured sparsity; dense kernels still multiply them" if zeros >= 0.01 else ""
    return f"Non-zero:    {t['nonzero_params']:>16,}  ({zeros:.1%} of the params are zero{why})"


def uncounted_line(uncounted: list[dict]) -> str:
    """One line naming the ops that count 0 MACs only because no formula knows them."""
    shown = ", ".join(f"{u['op']} ×{u['count']} (in {', '.join(u['modules'][:2])}"
                      f"{', …' if len(u['modules']) > 2 else ''})" for u in uncounted[:4])
    more = f", … {len(uncounted) - 4} more (--format json)" if len(uncounted) > 4 else ""
    return (f"Uncounted: {sum(u['count'] for u in uncounted)} op call(s) have no MAC formula, so the MACs above "
            f"leave them out: {shown}{more}")


def _rf_sentence(rf: Any) -> str:
    if rf == "global":
        return "global"

    def axes(v):
        return "×".join(str(x) for x in v)

    return (f"{axes(rf['size'])} pixels, jump {axes(rf['stride'])}, padding {axes(rf['padding'])}"
            + (" (misaligned merge)" if rf.get("misaligned") else "")
            + (" (approximate)" if rf.get("approximate") else "")
            + " (the last feature map before the network becomes global)")


#: how each convention's row is labelled
CONVENTION_LABELS = {"torchvision": "torchvision _ops (= cnnscope)", "2xmac": "2×MAC FLOPs",
                     "flopcountermode": "FlopCounterMode", "fvcore": "fvcore", "thop": "thop",
                     "ptflops-aten": "ptflops (aten)", "torchinfo": "torchinfo mult-adds"}


def _convention_lines(conv: dict) -> list[str]:
    b = conv["breakdown"]
    lines = ["", "Conventions (the same graph, each tool's rules; ratio to cnnscope's MACs):"]
    for name, c in conv["conventions"].items():
        ratio = "-" if c["ratio"] is None else f"{c['ratio']:.4f}"
        lines.append(f"  {CONVENTION_LABELS.get(name, name):<30} {c['value']:>18,} {c['unit']:<5}  ×{ratio:<7} "
                     f"{c['note']}")
    lines.append(f"  breakdown: conv {human_count(b['conv_macs'])} MACs, matrix products {human_count(b['matmul_macs'])}, "
                 f"attention {human_count(b['attention_macs'])}; batch norm {human_count(b['batch_norm_elements'])} "
                 f"elements, other norms {human_count(b['other_norm_elements'])}; bias additions "
                 f"{human_count(b['bias_elements'])}; adaptive pooling {human_count(b['adaptive_pool_input_elements'])} "
                 f"elements in")
    return lines + [""]


def _training_lines(tr: dict) -> list[str]:
    mem = (f"params {human_bytes(tr['param_bytes'])} + grads {human_bytes(tr['grad_bytes'])} + {tr['optimizer']} "
           f"state {human_bytes(tr['optimizer_state_bytes'])} + saved activations "
           f"{human_bytes(tr['saved_activation_bytes'])}")
    return [f"Training:    {tr['step_macs']:>16,}  MACs a step = forward {human_count(tr['forward_macs'])} + backward "
            f"{human_count(tr['backward_macs'])} (input and weight gradients that are needed)",
            f"Train mem:   {human_bytes(tr['memory_bytes']):>16}   = {mem} (no backward temporaries or workspace)"]


def _peak_line(t: dict) -> str:
    at = t.get("peak_at") or {}
    where = f" at {at.get('module') or 'the model'} ({str(at.get('op', '')).replace('aten.', '')})" if at else ""
    return (f"Peak memory: {human_bytes(t['peak_activation_bytes']):>16}   activations alive at once{where}; "
            f"{human_bytes(t.get('peak_memory_bytes'))} with params and buffers (inference; no allocator cache "
            f"or workspace)")


@register_renderer("json")
def render_json(data: dict, depth: int | None = None, columns: tuple[str, ...] | None = None) -> str:
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


def _csv_shape(shape: Any) -> str:
    if not shape:
        return ""
    return json.dumps(shape) if isinstance(shape[0], list) else "x".join(map(str, shape))


@register_renderer("csv")
def render_csv(data: dict, depth: int | None = None, columns: tuple[str, ...] | None = None) -> str:
    """One row per layer with every field (numeric columns; the RF split into height/width/jump), then a
    ``TOTAL`` row with the model's totals (depth 0). ``columns`` does not apply: a CSV is for tools."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    with_rf = _has_rf(data)
    rf_cols = ["rf_h", "rf_w", "rf_jump_h", "rf_jump_w", "rf_note"] if with_rf else []
    w.writerow(["name", "type", "depth", "output_shape", "params", "macs"] + rf_cols
               + ["input_shape", "kernel_shape", "trainable", "params_percent", "calls", "live_bytes"])
    for r in visible_layers(data, depth):
        row = [r["name"], r["type"], r["depth"], _csv_shape(r["output_shape"]), r["params"], r["macs"]]
        if with_rf:
            row += _rf_numbers(r.get("receptive_field"))
        t = r.get("trainable")
        row += [_csv_shape(r.get("input_shape")), "x".join(map(str, r.get("kernel_shape") or [])),
                "" if t is None else {True: "yes", False: "no"}.get(t, t), f"{r.get('params_percent', 0):.4f}",
                r.get("calls", 1), "" if r.get("live_bytes") is None else r["live_bytes"]]
        w.writerow(row)
    t = data["totals"]
    total = ["TOTAL", data["model"], 0, "x".join(map(str, data["input_shape"])), t["params"], t["macs"]]
    if with_rf:
        total += _rf_numbers(t.get("receptive_field"))
    peak = t.get("peak_activation_bytes")
    total += ["", "", "", "100.0000" if t["params"] else "0.0000", "", "" if peak is None else peak]
    w.writerow(total)
    return buf.getvalue()


@register_renderer("markdown")
def render_markdown(data: dict, depth: int | None = None, columns: tuple[str, ...] | None = None) -> str:
    from tabulate import tabulate

    depth = TABLE_DEPTH if depth is None else depth
    columns = _columns_for(data, columns)
    headers = ["Layer", "Type"] + [COLUMNS[k][0] for k in columns]
    exact = {"params": lambda r: f"{r['params']:,}", "macs": lambda r: f"{r['macs']:,}"}
    rows = []
    for r in visible_layers(data, depth):
        for c in _call_rows(r):
            name = f"`{r['name']}`" + (f" (call {c['call'][0]} of {c['call'][1]})" if c["call"] else "")
            cells = []
            for k in columns:
                if k == "params" and c["repeat"]:
                    cells.append(c["params_text"])
                else:
                    cells.append(exact.get(k, COLUMNS[k][1])(c))
            rows.append([name, r["type"]] + cells)
    t = data["totals"]
    total_cells = {"input": _shape(data["input_shape"]), "params": f"**{t['params']:,}**",
                   "params%": "100.00%" if t["params"] else "-", "macs": f"**{t['macs']:,}**",
                   "rf": format_rf(t.get("receptive_field")), "live": human_bytes(t.get("peak_activation_bytes"))}
    if "input" not in columns and "output" in columns:
        total_cells["output"] = _shape(data["input_shape"]) + " in"
    rows.append(["**total**", ""] + [total_cells.get(k, "") for k in columns])
    head = (f"**{data['model']}** — input {_shape(data['input_shape'])}: {t['params']:,} params, "
            f"{human_count(t['macs'])} MACs ({human_count(t['flops'])} FLOPs = 2 × MACs)\n\n")
    return head + tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True) + "\n"


def render(data: dict, fmt: str = "table", depth: int | None = None, columns: tuple[str, ...] | None = None) -> str:
    """``data`` (a ``to_dict()``) as ``fmt``; ``depth`` folds deeper rows; ``columns`` picks the table's and
    Markdown's columns (keys of :data:`COLUMNS`; default :data:`DEFAULT_COLUMNS`)."""
    return RENDERERS[fmt](data, depth, columns)
