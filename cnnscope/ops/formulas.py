"""Shape-level cost formulas: pure functions of tensor shapes, shared by the ATen MAC pass
(:mod:`cnnscope.analysis.costs`) and the ONNX analysis (:mod:`cnnscope.export.onnx_summary`), so a
model and its ONNX export agree by construction. Units: MACs (1 MAC = one multiply-accumulate).
"""
from __future__ import annotations

from typing import Iterable, Sequence


def prod(dims: Iterable[int]) -> int:
    out = 1
    for d in dims:
        out *= int(d)
    return out


def conv_macs(out_shape: Sequence[int], weight_shape: Sequence[int]) -> int:
    """A convolution (any number of spatial dims, any groups): every output element accumulates
    C_in/groups · K… products, i.e. ``prod(out) · prod(W[1:])`` with W = (C_out, C_in/groups, K…)."""
    return prod(out_shape) * prod(weight_shape[1:])


def conv_transpose_macs(in_shape: Sequence[int], weight_shape: Sequence[int]) -> int:
    """A transposed convolution: every input element is multiplied by the (C_out/groups) · K… weights
    of its group, ``prod(x) · prod(W[1:])`` with W = (C_in, C_out/groups, K…)."""
    return prod(in_shape) * prod(weight_shape[1:])


def matmul_macs(out_shape: Sequence[int], k: int) -> int:
    """A (batched, broadcast) matrix product: every output element accumulates K products."""
    return prod(out_shape) * int(k)


def attention_macs(q_shape: Sequence[int], k_shape: Sequence[int], v_shape: Sequence[int]) -> int:
    """Scaled dot-product attention: Q·Kᵀ (s_q × d × s_k) then softmax(·)·V (s_q × s_k × d_v), per batch
    and head; the softmax and scaling are free."""
    *batch, s_q, d = q_shape
    return prod(batch) * s_q * k_shape[-2] * (d + v_shape[-1])
