"""A profile's rows: measured time per layer beside the layer's MACs and bytes, and their roofline.

A row's samples are its time in each measured run (ms); the row reports their median and IQR. Rows
partition the measured forward: every op's time belongs to exactly one row, so the rows' times add up
to the profiled run's time (compare with the unprofiled whole-model time for the profiler's overhead).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .machine import Peak
from .stats import Timing


@dataclass
class LayerTime:
    name: str                     # module name ('' = ops the model's own forward runs), or a label
    type: str                     # module type (PyTorch) or kernel op type (onnxruntime)
    samples_ms: list[float]       # time in each measured run
    macs: int                     # multiply-accumulates of the row's ops
    bytes: int | None             # bytes its ops read from outside the row + bytes they write; None: unknown
    modules: list[str] = field(default_factory=list)   # modules the row covers (a fused kernel: several)
    fused: bool = False           # one onnxruntime kernel that computes several modules' ops

    @property
    def timing(self) -> Timing:
        return Timing.of(self.samples_ms)


@dataclass
class RuntimeProfile:
    """One runtime's measurement of one model."""

    runtime: str                  # "torch" | "ort"
    total: Timing                 # the whole forward, unprofiled: the latency to quote
    profiled_total: Timing        # the whole forward while per-layer timing ran
    layers: list[LayerTime]
    notes: list[str] = field(default_factory=list)

    @property
    def overhead_ms(self) -> float:
        """What per-layer timing added to a forward (median profiled − median plain), milliseconds."""
        return self.profiled_total.median_ms - self.total.median_ms

    def to_dict(self, peak: Peak | None) -> dict:
        layer_total = sum(l.timing.median_ms for l in self.layers) or 1.0
        rows = []
        for l in self.layers:
            t = l.timing
            rows.append({
                "name": l.name, "type": l.type, "modules": l.modules, "fused": l.fused,
                "median_ms": t.median_ms, "iqr_ms": t.iqr_ms,
                "share": t.median_ms / layer_total,
                "macs": l.macs, "flops": 2 * l.macs, "bytes": l.bytes,
                "gmacs_per_s": (l.macs / t.median_ms / 1e6) if t.median_ms > 0 and l.macs else None,
                "bound": peak.bound(l.macs, l.bytes) if peak else None,
                "roof_ms": peak.roof_ms(l.macs, l.bytes) if peak and l.bytes is not None else None,
            })
        notes = list(self.notes)
        rows_sum = sum(l.timing.median_ms for l in self.layers)
        if self.profiled_total.median_ms and abs(rows_sum / self.profiled_total.median_ms - 1) > 0.1:
            notes.append(f"the rows' medians sum to {rows_sum:.3f} ms but the median profiled run took "
                         f"{self.profiled_total.median_ms:.3f} ms (IQR {self.profiled_total.iqr_ms:.3f}): the runs "
                         f"are noisy, and a sum of medians is not the median of sums; measure on a quieter "
                         f"machine or with fewer threads")
        return {"runtime": self.runtime, "total": self.total.to_dict(),
                "profiled_total": self.profiled_total.to_dict(), "overhead_ms": self.overhead_ms,
                "layers_sum_ms": sum(l.timing.median_ms for l in self.layers),
                "layers": rows, "notes": notes}


def ancestor(name: str, depth: int) -> str:
    """``layer1.0.conv1`` at depth 1 → ``layer1``; names shallower than ``depth`` stay."""
    if not name or name.startswith("("):
        return name
    return ".".join(name.split(".")[:depth])


def at_depth(layers: list[LayerTime], depth: int, type_of) -> list[LayerTime]:
    """Rows summed into their ancestor module at ``depth`` (run by run, so medians stay medians of
    real runs), in order of first appearance. ``type_of(name)`` names the ancestor's type."""
    out: dict[str, LayerTime] = {}
    for l in layers:
        key = ancestor(l.name, depth)
        row = out.get(key)
        if row is None:
            out[key] = LayerTime(key, l.type if key == l.name else type_of(key), list(l.samples_ms), l.macs,
                                 l.bytes, list(l.modules))
            continue
        row.samples_ms = [a + b for a, b in zip(row.samples_ms, l.samples_ms)]
        row.macs += l.macs
        row.bytes = None if row.bytes is None or l.bytes is None else row.bytes + l.bytes
        row.modules += [m for m in l.modules if m not in row.modules]
    return list(out.values())
