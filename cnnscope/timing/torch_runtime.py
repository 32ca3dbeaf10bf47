"""PyTorch eager timing, per module, read against the recorded graph.

Each module call is timed with forward pre/post hooks (``time.perf_counter_ns``; on CUDA after a
``torch.cuda.synchronize()``). A module's row holds its *self* time: its call's time minus the time
of the module calls nested in it, so the ops a block runs itself (the residual ``+=`` of a ResNet
block) land in the block's row and the rows partition the forward. The MACs and bytes of a row are
those of the graph's ops whose scope is that module — the same recording every other feature reads.

Why hooks and not ``torch.profiler``: the profiler maps ATen events to modules only through
``record_function`` ranges, which cost several microseconds per op and per range; a hook pair costs
about one, and on CPU eager each module call is synchronous, so its wall time is its cost.
"""
from __future__ import annotations

import time

from ..graph.dataflow import Graph
from ..progress import Progress, no_progress
from .machine import torch_threads
from .rows import LayerTime, RuntimeProfile
from .stats import Timing, interleaved


def graph_rows(graph: Graph) -> dict[str, tuple[int, int]]:
    """Module name -> (MACs, bytes) of the ops recorded with that module as their innermost scope.

    Bytes: values the module's ops read that were made outside them (activations and parameters, each
    once) plus the values they write (new tensors and in-place updates, not views)."""
    members: dict[str, list] = {}
    for node in graph.ops():
        members.setdefault(node.scope, []).append(node)
    out = {}
    for scope, nodes in members.items():
        made = {v for n in nodes for v in n.outputs}
        read = {v for n in nodes for v in n.inputs if v not in made}
        written = {v for n in nodes if n.writes and not n.aliases for v in n.outputs}
        nbytes = sum(graph.values[v].nbytes for v in read | written if v in graph.values)
        out[scope] = (sum(n.macs for n in nodes), nbytes)
    return out


class _Timer:
    """Self time per module over one forward (a stack of open calls)."""

    def __init__(self, sync):
        self.sync = sync
        self.stack: list[list] = []       # [name, start_ns, nested_ns]
        self.self_ns: dict[str, int] = {}

    def pre(self, name):
        def hook(module, args):
            self.sync()
            self.stack.append([name, time.perf_counter_ns(), 0])
        return hook

    def post(self, name):
        def hook(module, args, output):
            self.sync()
            now = time.perf_counter_ns()
            while self.stack:              # a call whose post-hook never ran (an exception) is closed here
                top_name, start, nested = self.stack.pop()
                total = now - start
                self.self_ns[top_name] = self.self_ns.get(top_name, 0) + total - nested
                if self.stack:
                    self.stack[-1][2] += total
                if top_name == name:
                    break
        return hook


def profile_torch(model, x, graph: Graph, runs: int, warmup: int, threads: int, device: str = "cpu",
                  progress: Progress = no_progress) -> RuntimeProfile:
    """Time ``model`` (a real model the caller owns: hooks are added and removed) on ``x``: ``runs``
    rounds of one plain forward and one per-module timed forward, interleaved."""
    import torch

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    timer = _Timer(sync)
    names = {c.name for c in graph.calls} | {""}
    modules = [(n, m) for n, m in model.named_modules() if n in names]
    per_run: list[dict[str, int]] = []

    def plain() -> float:
        sync()
        t = time.perf_counter_ns()
        model(x)
        sync()
        return (time.perf_counter_ns() - t) / 1e6

    def timed() -> float:
        handles = []
        for name, m in modules:
            handles.append(m.register_forward_pre_hook(timer.pre(name)))
            handles.append(m.register_forward_hook(timer.post(name)))
        timer.self_ns, timer.stack = {}, []
        try:
            sync()
            t = time.perf_counter_ns()
            model(x)
            sync()
            elapsed = (time.perf_counter_ns() - t) / 1e6
        finally:
            for h in handles:
                h.remove()
        per_run.append(dict(timer.self_ns))
        return elapsed

    with torch_threads(threads), torch.no_grad():
        plain_ms, timed_ms = interleaved([plain, timed], runs, warmup, progress, "profiling (PyTorch)")
    per_run = per_run[warmup:]
    counts = graph_rows(graph)
    types = {n: type(m).__name__ for n, m in model.named_modules()}
    # a container that runs no op itself (a Sequential) keeps only call overhead: it goes to the nearest
    # enclosing module that runs ops, so every row is a module with ops of its own
    def owner(name: str) -> str:
        while name and name not in counts:
            name = name.rpartition(".")[0]
        return name

    samples_of: dict[str, list[float]] = {}
    for name, _ in modules:
        samples = [r.get(name, 0) / 1e6 for r in per_run]
        row = samples_of.setdefault(owner(name), [0.0] * len(per_run))
        samples_of[owner(name)] = [a + b for a, b in zip(row, samples)]
    rows = []
    for name, _ in modules:
        if name in samples_of and (name in counts or name == ""):
            macs, nbytes = counts.get(name, (0, 0))
            rows.append(LayerTime(name, types.get(name, "?"), samples_of[name], macs, nbytes, [name]))
    notes = []
    missing = sum(m for s, (m, _) in counts.items() if s not in {n for n, _ in modules})
    if missing:
        notes.append(f"{missing:,} MACs ran in modules that were not called as modules; they are in no row")
    return RuntimeProfile("torch", Timing.of(plain_ms), Timing.of(timed_ms), rows, notes)
