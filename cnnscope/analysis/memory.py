"""Peak activation memory of one inference forward, from tensor liveness on the recorded graph.

The model (bytes; weights are not activations and are reported apart):

- a *storage* is what an op allocates: every new tensor. A view (``view``, ``permute``, ``split``,
  ``expand``…) and an in-place op (``relu_``, ``add_``) write into their input's storage, so they
  allocate nothing and keep that storage alive;
- a storage is alive from the op that allocates it to the last op that reads it or any view of it,
  and at least until every module call it was passed to returns (in eager PyTorch the caller's frame
  holds a module's arguments for the whole call: ``identity = self.downsample(x)`` keeps ``x``);
  while an op runs, its inputs and its outputs are alive together (an output is allocated before
  the inputs it reads can be freed);
- the model's inputs stay alive for the whole forward (the caller holds them), and so do its outputs
  from the op that writes them; an output no op reads (max-pool's indices, batch norm's saved
  statistics) is alive during its op only;
- views of parameters or buffers (``weight.t()`` inside ``linear``) are weights, not activations.

Not modelled: the allocator's caching and rounding (PyTorch's CUDA allocator rounds to 512 B blocks
and keeps freed blocks), backend workspaces (cuDNN/oneDNN scratch buffers, weight reorders), and
other references a model's Python code keeps (a tensor stored on ``self``, a list of features
kept for a later stage). The forward runs without autograd (inference): nothing is saved for a backward.
``benchmarks/bench_memory.py`` compares the prediction with allocations measured by the profiler.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..graph.dataflow import Graph, ModuleCall, Value

#: source kinds whose storage is the model's own (weights), never an activation
_WEIGHT_SOURCES = frozenset({"param", "buffer", "const"})


@dataclass(frozen=True)
class Storage:
    root: int          # the value that allocated it
    nbytes: int
    birth: int         # node index of the op that allocated it (-1: before the first op, the inputs)
    death: int         # node index of its last reader (len(nodes): alive to the end)


@dataclass
class Liveness:
    """Every activation storage and the live bytes while each node runs."""

    graph: Graph
    storages: list[Storage]
    live: list[int]            # live[i]: activation bytes alive while node i runs
    peak_bytes: int
    peak_node: int | None      # the op at the (first) peak; None for a graph without ops

    def during(self, call: ModuleCall) -> int:
        """The most activation bytes alive while ``call`` ran (its node range)."""
        hi = call.last_node if call.last_node >= 0 else len(self.live)
        window = self.live[call.first_node:hi]
        return max(window) if window else 0

    def to_dict(self) -> dict:
        node = self.graph.nodes[self.peak_node] if self.peak_node is not None else None
        return {"peak_bytes": self.peak_bytes,
                "at": None if node is None else {"node": node.index, "op": node.packet, "module": node.scope}}


def storage_roots(graph: Graph) -> dict[int, int]:
    """value id -> the value whose storage it lives in (itself unless a view or in-place op made it)."""
    root: dict[int, int] = {}
    for node in graph.nodes:
        base = None
        if node.kind == "op" and node.aliases and node.inputs:
            base = root.get(node.inputs[0], node.inputs[0])
        for v in node.outputs:
            root[v] = base if base is not None else v
    return root


def liveness(graph: Graph, itemsize: Callable[[Value], int] | None = None) -> Liveness:
    """One pass over the nodes: storages with their lifetimes, then the live bytes per node.
    ``itemsize``: bytes per element of a value (default: as recorded; the precision what-if)."""
    end = len(graph.nodes)
    root = storage_roots(graph)
    last: dict[int, int] = {}
    for node in graph.nodes:
        for v in node.inputs:
            r = root.get(v, v)
            last[r] = max(last.get(r, -1), node.index)
    for call in graph.calls:        # the caller's frame holds a module's inputs until the call returns
        hi = (call.last_node if call.last_node >= 0 else end) - 1
        for v in call.inputs:
            r = root.get(v, v)
            last[r] = max(last.get(r, -1), hi)
    for v in graph.outputs:
        last[root.get(v, v)] = end
    for v in graph.inputs:
        last[root.get(v, v)] = end
    storages = []
    for r in sorted(set(root.values())):
        producer = graph.nodes[graph.values[r].producer]
        if producer.kind in _WEIGHT_SOURCES:
            continue
        birth = -1 if producer.kind == "input" else producer.index
        value = graph.values[r]
        nbytes = value.nbytes if itemsize is None else value.numel * itemsize(value)
        storages.append(Storage(r, nbytes, birth, max(last.get(r, birth), birth)))
    delta = [0] * (end + 2)
    for s in storages:
        delta[max(s.birth, 0)] += s.nbytes
        delta[min(s.death, end) + 1] -= s.nbytes
    live, running = [], 0
    for i in range(end):
        running += delta[i]
        live.append(running)
    op_steps = [n.index for n in graph.ops()]
    peak_node = max(op_steps, key=lambda i: (live[i], -i)) if op_steps else None
    peak = live[peak_node] if peak_node is not None else sum(s.nbytes for s in storages)
    return Liveness(graph, storages, live, peak, peak_node)


def profiled_peak(model, inputs: tuple) -> dict[str, int]:
    """Measure what the liveness model predicts, on a real CPU forward (the model and inputs are the
    caller's, already allocated; this runs the forward twice: a warm-up, then under the profiler):

    - ``total``: the peak of every allocation ``torch.profiler(profile_memory=True)`` records, plus the
      inputs the caller holds;
    - ``tensors``: the same without what an op allocates and frees before it returns — backend
      workspace such as oneDNN's reordered weights, which the liveness model leaves out.

    Used by the tests and ``benchmarks/bench_memory.py`` as the second method; bytes.
    """
    import torch
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        model(*inputs)
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            model(*inputs)
    events = _allocation_events(prof)
    owner: dict[int, tuple[int, int]] = {}
    transient: set[tuple[int, int]] = set()
    for t, size, ptr, top in events:
        if size > 0:
            owner[ptr] = (top, t)
        elif ptr in owner and owner[ptr][0] == top:
            transient.add(owner[ptr])
    held = sum(x.nbytes for x in inputs if isinstance(x, torch.Tensor))
    total = peak_total = tensors = peak_tensors = 0
    is_transient: dict[int, bool] = {}
    for t, size, ptr, top in events:
        total += size
        peak_total = max(peak_total, total)
        if size > 0:
            is_transient[ptr] = (top, t) in transient
        if not is_transient.get(ptr, False):
            tensors += size
            peak_tensors = max(peak_tensors, tensors)
    return {"total": peak_total + held, "tensors": peak_tensors + held}


def _allocation_events(prof) -> list[tuple[int, int, int, int]]:
    """The profiler's allocations in time order: (time, bytes (+alloc, −free), address, top-level op)."""
    events: list[tuple[int, int, int, int]] = []

    def walk(node, top: int) -> None:
        if type(node.extra_fields).__name__ == "_ExtraFields_Allocation":
            events.append((node.start_time_ns, node.extra_fields.alloc_size, node.extra_fields.ptr, top))
        for child in node.children:
            walk(child, top)

    for i, root in enumerate(prof.profiler.kineto_results.experimental_event_tree()):
        walk(root, i)
    return sorted(events)


def profiled_saved(model, inputs: tuple) -> int:
    """Bytes a real train-mode CPU forward keeps for the backward: what it leaves allocated (the
    profiler's allocations without a matching free) minus its output, plus the inputs (allocated
    before, and saved by the first layer). The model is put in train mode and back in eval mode: pass
    one of your own (tests and ``benchmarks/bench_memory.py`` do). The measurement of
    :func:`cnnscope.analysis.training.saved_activation_bytes`."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    model.train()
    try:
        model(*inputs)
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            out = model(*inputs)
    finally:
        model.eval()
    live: dict[int, int] = {}
    for _, size, ptr, _ in _allocation_events(prof):
        if size > 0:
            live[ptr] = size
        else:
            live.pop(ptr, None)
    held = sum(x.nbytes for x in inputs if isinstance(x, torch.Tensor))
    return sum(live.values()) + held - out.nbytes
