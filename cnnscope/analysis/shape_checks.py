"""Pre-flight checks run before conv/pool ops while recording: an input too small for a layer is
reported with the documents' formula and the layer's numbers, e.g. ``(8 + 2·2 − 11)/4 + 1 < 1``.
"""
from __future__ import annotations

import torch

from ..graph.tracer import register_shape_check
from .arithmetic import output_size, too_small_message

aten = torch.ops.aten


def _tuple(v, n):
    if isinstance(v, (list, tuple)):
        v = list(v)
        return v * n if len(v) == 1 else v
    return [v] * n


def _first_empty(spatial, k, s, p, d, ceil=False) -> str | None:
    for h, kk, ss, pp, dd in zip(spatial, k, s, p, d):
        if output_size(h, kk, ss, pp, dd, ceil).size < 1:
            return too_small_message(h, kk, ss, pp, dd)
    return None


@register_shape_check(aten.convolution, aten._convolution)
def check_convolution(args, kwargs):
    x, w = args[0], args[1]
    if len(args) > 6 and args[6]:  # transposed convs grow the input
        return None
    n = w.dim() - 2
    if x.dim() < n + 1:
        return None
    spatial = list(x.shape[-n:])
    return _first_empty(spatial, list(w.shape[2:]), _tuple(args[3], n), _tuple(args[4], n), _tuple(args[5], n))


def _pool_args(args, dilation_at: int | None, ceil_at: int):
    k = _tuple(args[1], 2)
    s = _tuple(args[2] if len(args) > 2 and args[2] else k, 2)
    p = _tuple(args[3] if len(args) > 3 else 0, 2)
    d = _tuple(args[dilation_at], 2) if dilation_at is not None and len(args) > dilation_at else [1, 1]
    ceil = bool(args[ceil_at]) if len(args) > ceil_at else False
    return k, s, p, d, ceil


@register_shape_check(aten.max_pool2d_with_indices, aten.max_pool2d)
def check_max_pool2d(args, kwargs):
    # max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode)
    return _first_empty(list(args[0].shape[-2:]), *_pool_args(args, 4, 5))


@register_shape_check(aten.avg_pool2d)
def check_avg_pool2d(args, kwargs):
    # avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    return _first_empty(list(args[0].shape[-2:]), *_pool_args(args, None, 4))
