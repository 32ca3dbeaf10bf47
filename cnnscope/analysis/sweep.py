"""Input-size sweep: one row per input size (MACs, params, bytes written, peak activations, receptive
field and how much of the image it covers), and how MACs and memory grow with the image.

Each size is its own recording of the forward (shapes differ, so the graph does); all run on meta
tensors. The growth exponent ``k`` fits ``MACs ∝ pixels^k`` by least squares on a log-log scale
(pixels = the input's spatial elements): a convolutional network is ``k = 1`` (every layer's work
follows its feature map); self-attention over all positions pushes it towards 2.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from ..progress import Progress, no_progress

SCHEMA = "cnnscope.sweep/1"


@dataclass
class SweepRow:
    input_shape: list[int]
    params: int
    macs: int
    flops: int
    activation_bytes: int
    peak_activation_bytes: int | None
    receptive_field: Any
    #: RF size ÷ image size, the smaller over the axes (≥ 1: the field covers the whole image); None if global/none
    rf_coverage: float | None


@dataclass
class Sweep:
    model: str
    rows: list[SweepRow] = field(default_factory=list)
    #: k of MACs ∝ pixels^k and of peak activations ∝ pixels^k (None with fewer than two sizes)
    macs_exponent: float | None = None
    peak_exponent: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "model": self.model, "rows": [asdict(r) for r in self.rows],
                "macs_exponent": self.macs_exponent, "peak_exponent": self.peak_exponent}


def growth_exponent(pixels: Sequence[float], values: Sequence[float]) -> float | None:
    """Least-squares slope of log(value) on log(pixels); None when it is undefined."""
    pts = [(math.log(p), math.log(v)) for p, v in zip(pixels, values) if p and v]
    if len(pts) < 2 or len({x for x, _ in pts}) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)


def _coverage(rf: Any, input_shape: Sequence[int]) -> float | None:
    if not isinstance(rf, dict):
        return None
    spatial = list(input_shape[2:])
    sizes = list(rf["size"])[-len(spatial):]
    return min(s / n for s, n in zip(sizes, spatial)) if spatial else None


def sweep(model_or_spec, sizes: Sequence, weights: str | None = None, batch_size: int = 1,
          dtype: str | None = None, progress: Progress | None = None) -> Sweep:
    """Summaries of ``model_or_spec`` at each of ``sizes`` (each as ``input_size`` takes it: 224,
    "320x320", (3, 448, 448)); ``progress`` (see :mod:`cnnscope.progress`) wraps the sizes."""
    from .engine import analyze
    from .summary import build_summary

    if not sizes:
        from ..errors import CnnscopeError

        raise CnnscopeError("a sweep needs at least one input size")
    name = None
    rows = []
    with (progress or no_progress)(list(sizes), "input sizes") as it:
        for size in it:
            s = build_summary(analyze(model_or_spec, input_size=size, weights=weights, batch_size=batch_size),
                              dtype=dtype)
            name = name or s.model
            t = s.totals
            rf = t.receptive_field
            rows.append(SweepRow(list(s.input_shape), t.params, t.macs, t.flops, t.activation_bytes,
                                 t.peak_activation_bytes, rf, _coverage(rf, s.input_shape)))
    pixels = [math.prod(r.input_shape[2:]) for r in rows]
    return Sweep(name or str(model_or_spec), rows, growth_exponent(pixels, [r.macs for r in rows]),
                 growth_exponent(pixels, [r.peak_activation_bytes or 0 for r in rows]))
