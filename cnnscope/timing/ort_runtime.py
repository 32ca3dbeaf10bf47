"""onnxruntime timing, per kernel, mapped back to the modules the kernels came from.

onnxruntime runs an *optimized* graph: at the default level (``ORT_ENABLE_ALL``, what deployments
use) a Conv absorbs the BatchNormalization, the Add of a residual and the ReLU after it, and
layout nodes (``ReorderInput``/``ReorderOutput``) appear. Its built-in profiler times each kernel of
that graph. A kernel is named after the output it writes (``/layer1/layer1.0/relu/Relu_output_0_nchwc``),
so the original nodes it covers are found by walking back from that output's producer to a node of the
kernel's own op type (``Conv``); nodes fused away without a kernel name of their own (the Add and ReLU
folded into a Conv) join the kernel that computes their input. Each row is one kernel, named by the
module of its main node, with every module it covers; MACs are the covered nodes' (the ONNX summary's
formulas), bytes what the kernel reads from outside and writes for others.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path

from ..errors import CnnscopeError
from ..progress import Progress, no_progress
from .rows import LayerTime, RuntimeProfile
from .stats import Timing, interleaved

_SUFFIXES = ("_kernel_time",)
_LAYOUT_SUFFIXES = ("_nchwc", "_nhwc")


def session(path, threads: int, profile_prefix: str | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    if profile_prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - a file onnxruntime cannot load is bad input
        raise CnnscopeError(f"onnxruntime cannot load '{path}' ({first_line(e)}); re-export it with cnnscope "
                            f"export") from None


def first_line(e: Exception) -> str:
    lines = [l for l in str(e).strip().splitlines() if l.strip()]
    return f"{type(e).__name__}: {(lines[0] if lines else '')[:200]}"


def check_runs(s, feed: dict, path) -> None:
    """One run before any timing: a file whose input is not float N×C×… or whose ops fail at run time is
    bad input (exit 2, one line), not a crash inside the measurement."""
    inputs = s.get_inputs()
    if len(inputs) != 1 or "float" not in inputs[0].type:
        raise CnnscopeError(f"'{path}' takes {len(inputs)} input(s) of type "
                            f"{', '.join(i.type for i in inputs)}; profiling feeds one float tensor (an image "
                            f"model's N×C×H×W)")
    try:
        s.run(None, feed)
    except Exception as e:  # noqa: BLE001
        raise CnnscopeError(f"onnxruntime cannot run '{path}' on a random {'×'.join(map(str, next(iter(feed.values())).shape))} "
                            f"input ({first_line(e)})") from None


class _Graph:
    """The original ONNX graph: nodes by name and by output, MACs and sizes per node."""

    def __init__(self, model):
        import copy

        from ..export.onnx_shapes import infer_shapes
        from ..export.onnx_summary import _elem_size, module_path, node_macs

        g = model.graph
        self.nodes = [n for n in g.node if n.op_type != "Constant"]
        self.index = {id(n): i for i, n in enumerate(self.nodes)}
        self.by_name = {n.name: n for n in self.nodes if n.name}
        self.producer = {o: n for n in self.nodes for o in n.output if o}
        shapes = infer_shapes(copy.deepcopy(model))
        self.size = {}
        for name, (dims, elem) in shapes.items():
            if dims is not None and all(isinstance(d, int) and d >= 0 for d in dims):
                n = 1
                for d in dims:
                    n *= d
                self.size[name] = n * _elem_size(elem)
        self.macs = {id(n): node_macs(n, shapes) or 0 for n in self.nodes}
        self.module = {id(n): module_path(n) for n in self.nodes}
        self.consumers: dict[str, list] = {}
        for n in self.nodes:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.outputs = {o.name for o in g.output}

    def covered(self, kernel: str, op_type: str) -> list:
        """The original nodes one kernel computes (see the module docstring); [] for an added node."""
        base = kernel
        for s in _SUFFIXES:
            base = base[: -len(s)] if base.endswith(s) else base
        # a fusion names its kernel after the node it starts from: "/…/Mul/QuickGeluFusion/"
        m = re.match(r"^(.*)/[A-Za-z0-9]+Fusion/?$", base)
        if m:
            base = m.group(1)
        changed = True
        while changed:
            changed = False
            for s in _LAYOUT_SUFFIXES:
                if base.endswith(s):
                    base, changed = base[: -len(s)], True
        start = self.by_name.get(base) or self.producer.get(base)
        if start is None:
            return []
        chain, cur = [start], start
        while cur.op_type != op_type and len(chain) < 8:
            prev = [self.producer[i] for i in cur.input if i in self.producer]
            if not prev:
                break
            cur = max(prev, key=lambda n: self.index[id(n)])
            chain.append(cur)
        return chain if cur.op_type == op_type else [start]

    def bytes_of(self, nodes: list) -> int | None:
        ids = {id(n) for n in nodes}
        made = {o for n in nodes for o in n.output if o}
        read = {i for n in nodes for i in n.input if i and i not in made}
        written = {o for o in made if o in self.outputs or any(id(c) not in ids for c in self.consumers.get(o, []))}
        sizes = [self.size.get(v) for v in read | written]
        return None if any(s is None for s in sizes) else sum(sizes)


BETWEEN = "(onnxruntime between kernels)"


def _kernel_events(trace: list, warmup: int) -> list[dict[str, float]]:
    """Per measured run: kernel name -> microseconds (runs are the ``model_run`` windows; the first
    ``warmup`` are skipped). Kernels that run twice in one run add up. :data:`BETWEEN` holds the rest of
    the run's window: the executor's own time and, with several threads, the thread pool's wake-ups and
    waits between kernels, so the rows partition the run."""
    windows = sorted((e["ts"], e["ts"] + e["dur"]) for e in trace
                     if e.get("cat") == "Session" and e.get("name") == "model_run")
    runs: list[dict[str, float]] = [{} for _ in windows]
    starts = [w[0] for w in windows]
    import bisect

    for e in trace:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        k = bisect.bisect_right(starts, e["ts"]) - 1
        if 0 <= k < len(windows) and e["ts"] <= windows[k][1]:
            runs[k][e["name"]] = runs[k].get(e["name"], 0.0) + float(e["dur"])
    for (start, end), r in zip(windows, runs):
        r[BETWEEN] = max(0.0, (end - start) - sum(r.values()))
    return runs[warmup:]


def _op_types(trace: list) -> dict[str, str]:
    return {e["name"]: str(e.get("args", {}).get("op_name", "?")) for e in trace if e.get("cat") == "Node"}


def profile_ort(path, x, runs: int, warmup: int, threads: int, progress: Progress = no_progress) -> RuntimeProfile:
    """Time the ONNX file at ``path`` on input ``x`` (a NumPy array): ``runs`` rounds of one plain
    session run and one run of a profiling session, interleaved."""
    from ..export.onnx_summary import load_graph

    model = load_graph(path)
    graph = _Graph(model)
    workdir = tempfile.mkdtemp(prefix="cnnscope-ort-profile.")
    try:
        plain_s = session(path, threads)
        prof_s = session(path, threads, profile_prefix=os.path.join(workdir, "profile"))
        feed = {plain_s.get_inputs()[0].name: x}
        check_runs(plain_s, feed, path)

        def run(s):
            def go() -> float:
                t = time.perf_counter_ns()
                s.run(None, feed)
                return (time.perf_counter_ns() - t) / 1e6
            return go

        plain_ms, prof_ms = interleaved([run(plain_s), run(prof_s)], runs, warmup, progress,
                                        "profiling (onnxruntime)")
        trace_path = Path(prof_s.end_profiling())
        trace = json.loads(trace_path.read_text(encoding="utf-8"))
    finally:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    per_run = _kernel_events(trace, warmup)
    op_of = _op_types(trace)
    kernels = list(dict.fromkeys(k for r in per_run for k in r if k != BETWEEN))
    claimed: dict[int, str] = {}
    covers: dict[str, list] = {}
    for k in kernels:
        nodes = [n for n in graph.covered(k, op_of.get(k, "?")) if id(n) not in claimed]
        for n in nodes:
            claimed[id(n)] = k
        covers[k] = nodes
    # nodes fused away without a kernel name (a residual Add, the ReLU after it): they join the kernel that
    # computes one of their inputs — the one that runs last, since the fused kernel needs all its inputs
    position = {k: i for i, k in enumerate(kernels)}
    for n in graph.nodes:
        if id(n) in claimed:
            continue
        owners = [claimed[id(graph.producer[i])] for i in n.input if i in graph.producer
                  and id(graph.producer[i]) in claimed]
        if owners:
            owner = max(owners, key=position.__getitem__)
            claimed[id(n)] = owner
            covers[owner].append(n)
    rows = []
    for k in kernels:
        nodes = sorted(covers[k], key=lambda n: graph.index[id(n)])
        op = op_of.get(k, "?")
        main = next((n for n in nodes if n.op_type == op), nodes[0] if nodes else None)
        modules = list(dict.fromkeys(m for n in nodes if (m := graph.module[id(n)]) is not None))
        name = graph.module[id(main)] if main is not None and graph.module[id(main)] is not None \
            else (main.name if main is not None else f"({k[: -len('_kernel_time')]} added by onnxruntime)")
        samples = [r.get(k, 0.0) / 1000 for r in per_run]
        rows.append(LayerTime(name, op, samples, sum(graph.macs[id(n)] for n in nodes),
                              graph.bytes_of(nodes) if nodes else None, modules,
                              fused=len(modules) > 1))
    rows.append(LayerTime(BETWEEN, "executor", [r.get(BETWEEN, 0.0) / 1000 for r in per_run], 0, None, []))
    notes = []
    untimed = [n for n in graph.nodes if id(n) not in claimed]
    lost = sum(graph.macs[id(n)] for n in untimed)
    if lost:
        notes.append(f"{lost:,} MACs of {len(untimed)} node(s) match no onnxruntime kernel; they are in no row")
    notes.append("onnxruntime times its optimized graph: a row is one kernel, with every module fused into it")
    return RuntimeProfile("ort", Timing.of(plain_ms), Timing.of(prof_ms), rows, notes)
