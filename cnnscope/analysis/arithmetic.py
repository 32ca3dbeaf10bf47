"""The per-layer arithmetic the source documents teach, as small pure functions on integers.

- output size ``OH = ⌊(H + 2P − D·(K − 1) − 1) / S⌋ + 1`` (``⌈…⌉`` for ceil-mode pooling); with D = 1
  this is the documents' ``(H + 2P − K)/S + 1``;
- conv weights ``K_h·K_w·(C_in/groups)·C_out`` (+ ``C_out`` biases);
- conv MACs ``= weights × OH × OW`` (one multiply-accumulate per weight per output position).
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class OutputSize:
    size: int
    exact: bool          # the division had no remainder: no border pixel is dropped
    numerator: int       # H + 2P − D·(K − 1) − 1
    stride: int

    def formula(self, h: int, k: int, s: int, p: int, d: int = 1, ceil: bool = False) -> str:
        kk = f"{d}·({k} − 1) − 1" if d != 1 else f"{k}"
        rnd = ("⌈", "⌉") if ceil else ("⌊", "⌋")
        if d == 1:
            return f"{rnd[0]}({h} + 2·{p} − {kk})/{s}{rnd[1]} + 1 = {self.size}"
        return f"{rnd[0]}({h} + 2·{p} − {kk})/{s}{rnd[1]} + 1 = {self.size}"


def output_size(h: int, k: int, s: int = 1, p: int = 0, d: int = 1, ceil: bool = False) -> OutputSize:
    """Spatial output size of a conv or pooling window along one axis (PyTorch's rule)."""
    num = h + 2 * p - d * (k - 1) - 1
    if ceil:
        size = (num + s - 1) // s + 1          # PyTorch's div_rtn(num + s − 1, s): ⌈num/s⌉, also for num < 0
        # PyTorch: the last window must start inside the input or left padding
        if size > 1 and (size - 1) * s >= h + p:
            size -= 1
    else:
        size = num // s + 1
    return OutputSize(size, num % s == 0 if num >= 0 else False, num, s)


def too_small_message(h: int, k: int, s: int, p: int, d: int = 1) -> str:
    """``(8 + 2·2 − 11)/4 + 1 < 1`` — the documents' formula with the layer's numbers."""
    kk = f"{k}" if d == 1 else f"{d}·({k} − 1) − 1"
    return f"({h} + 2·{p} − {kk})/{s} + 1 < 1"


def conv_weight_count(k_h: int, k_w: int, c_in: int, c_out: int, groups: int = 1) -> int:
    return k_h * k_w * (c_in // groups) * c_out


def conv_macs(out_positions: int, k_h: int, k_w: int, c_in: int, c_out: int, groups: int = 1) -> int:
    """Multiply-accumulates of a conv: every weight is used once per output position."""
    return conv_weight_count(k_h, k_w, c_in, c_out, groups) * out_positions


def same_padding(k: int, d: int = 1) -> int:
    """Padding that keeps the size at stride 1 for an odd kernel: F=3 → 1, F=5 → 2, F=7 → 3."""
    return d * (k - 1) // 2


def prod(xs) -> int:
    return math.prod(int(x) for x in xs)
