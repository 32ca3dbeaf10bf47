"""The machine's own peaks, measured once and cached: the roof of the roofline.

* compute: float32 matrix multiply of two 1024×1024 matrices (1024³ MACs), best of 5 runs, on the
  threads the profile uses — the MAC rate a well-shaped dense layer can reach here;
* memory: copy of a 64 MiB float32 tensor into another (2 × 64 MiB moved: read + write), best of 5.

A layer whose MACs at the compute peak take longer than its bytes at the memory peak is labelled
*compute-bound*, otherwise *memory-bound* (its arithmetic intensity, MACs per byte, is below the
ridge point peak MAC/s ÷ peak B/s). Best-of, not median: a peak is what the machine can do.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Iterator

from . import cache

MATMUL_N = 1024
COPY_BYTES = 64 * 2**20
REPEATS = 5


@dataclass(frozen=True)
class Peak:
    macs_per_s: float       # multiply-accumulates per second (1 MAC = 2 FLOPs)
    bytes_per_s: float      # bytes moved per second (read + written)
    key: str                # the machine, runtime and threads it was measured for
    cached: bool            # read from the cache rather than measured now

    @property
    def ridge_macs_per_byte(self) -> float:
        return self.macs_per_s / self.bytes_per_s if self.bytes_per_s else float("inf")

    def bound(self, macs: int, nbytes: int | None) -> str:
        """"compute" or "memory": which roof limits a layer with these MACs and bytes moved."""
        if nbytes is None or (not macs and not nbytes):
            return "-"
        return "compute" if macs / self.macs_per_s >= nbytes / self.bytes_per_s else "memory"

    def roof_ms(self, macs: int, nbytes: int | None) -> float:
        """The least time the roofline allows: the larger of compute and memory time, milliseconds."""
        return 1000 * max(macs / self.macs_per_s, (nbytes or 0) / self.bytes_per_s)

    def to_dict(self) -> dict:
        return {"macs_per_s": self.macs_per_s, "bytes_per_s": self.bytes_per_s,
                "ridge_macs_per_byte": self.ridge_macs_per_byte, "key": self.key, "cached": self.cached,
                "method": f"best of {REPEATS}: {MATMUL_N}³ float32 matmul; {COPY_BYTES // 2**20} MiB copy"}


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """PyTorch's intra-op threads set to ``threads`` for the block, restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _best(fn, repeats: int, sync) -> float:
    fn()
    sync()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t)
    return best


def measure_peak(threads: int, device: str = "cpu") -> tuple[float, float]:
    """(MAC/s, bytes/s) measured now."""
    import torch

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    with torch_threads(threads), torch.no_grad():
        a = torch.randn(MATMUL_N, MATMUL_N, device=device)
        b = torch.randn(MATMUL_N, MATMUL_N, device=device)
        t_mm = _best(lambda: torch.mm(a, b), REPEATS, sync)
        src = torch.empty(COPY_BYTES // 4, device=device).fill_(1.0)
        dst = torch.empty_like(src)
        t_copy = _best(lambda: dst.copy_(src), REPEATS, sync)
    return MATMUL_N ** 3 / t_mm, 2 * COPY_BYTES / t_copy


def peak(threads: int = 1, device: str = "cpu", use_cache: bool = True) -> Peak:
    """This machine's peaks for ``threads`` threads, from the cache or measured (about a second) and cached."""
    key = cache.machine_key("torch", threads, device)
    entries = cache.read("peaks") if use_cache else {}
    hit = entries.get(key)
    if isinstance(hit, dict):
        macs, nbytes = hit.get("macs_per_s"), hit.get("bytes_per_s")
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1e18 for v in (macs, nbytes)):
            return Peak(float(macs), float(nbytes), key, True)
    macs, nbytes = measure_peak(threads, device)
    if use_cache:
        entries = dict(entries)
        entries[key] = {"macs_per_s": macs, "bytes_per_s": nbytes, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        cache.write("peaks", entries)
    return Peak(macs, nbytes, key, False)
