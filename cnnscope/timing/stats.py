"""Interleaved repeated measurements and their median and spread.

The method (``docs/profile.md``): a few warm-up rounds, then ``runs`` rounds that each run every
measured variant once, in the same order. Interleaving spreads a change of machine load over all
variants instead of biasing whichever ran during it; the median ignores the odd slow round, and the
interquartile range (IQR, 75th − 25th percentile) says how much to trust a difference.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Callable, Sequence

from ..progress import Progress, no_progress


@dataclass(frozen=True)
class Timing:
    """The runs of one measured thing, milliseconds."""

    median_ms: float
    iqr_ms: float           # interquartile range of the runs
    runs: int

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> "Timing":
        samples = list(samples_ms)
        if not samples:
            return cls(0.0, 0.0, 0)
        if len(samples) == 1:
            return cls(float(samples[0]), 0.0, 1)
        q = statistics.quantiles(samples, n=4, method="inclusive")
        return cls(float(statistics.median(samples)), float(q[2] - q[0]), len(samples))

    def to_dict(self) -> dict:
        return {"median_ms": self.median_ms, "iqr_ms": self.iqr_ms, "runs": self.runs}


def interleaved(variants: Sequence[Callable[[], float]], runs: int, warmup: int,
                progress: Progress = no_progress, label: str = "measuring") -> list[list[float]]:
    """Run each variant ``warmup`` times, then ``runs`` rounds of one run of each; a variant returns its
    own elapsed milliseconds (so it can time exactly its work). Returns the samples per variant."""
    for _ in range(warmup):
        for v in variants:
            v()
    samples: list[list[float]] = [[] for _ in variants]
    with progress(range(runs), label) as rounds:
        for _ in rounds:
            for k, v in enumerate(variants):
                samples[k].append(float(v()))
    return samples
