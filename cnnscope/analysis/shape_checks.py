"""Pre-flight checks run before conv/pool ops while recording: an input too small for a layer is
reported with the documents' formula and the layer's numbers, e.g. ``(8 + 2·2 − 11)/4 + 1 < 1``.
"""
from __future__ import annotations

import torch

from ..graph.tracer import register_shape_check
from ..ops.args import conv_args, pool_args, spatial_rank
from .arithmetic import output_size, too_small_message

aten = torch.ops.aten


def _first_empty(spatial, k, s, p, d, ceil=False) -> str | None:
    for h, kk, ss, pp, dd in zip(spatial, k, s, p, d):
        if output_size(h, kk, ss, pp, dd, ceil).size < 1:
            return too_small_message(h, kk, ss, pp, dd)
    return None


@register_shape_check(aten.convolution, aten._convolution, aten.cudnn_convolution, aten.mkldnn_convolution)
def check_convolution(packet: str, named: dict) -> str | None:
    x, w = named.get("input", named.get("self")), named["weight"]
    n = w.dim() - 2
    c = conv_args(named, n)
    if c.transposed or x.dim() < n + 1:     # transposed convs grow the input
        return None
    return _first_empty(list(x.shape[-n:]), list(w.shape[2:]), c.stride, c.padding, c.dilation)


@register_shape_check(aten.max_pool1d, aten.max_pool2d, aten.max_pool3d, aten.max_pool1d_with_indices,
                      aten.max_pool2d_with_indices, aten.max_pool3d_with_indices, aten.avg_pool1d, aten.avg_pool2d,
                      aten.avg_pool3d)
def check_pool(packet: str, named: dict) -> str | None:
    n = spatial_rank(packet)
    x = named.get("self", named.get("input"))
    a = pool_args(named, n)
    return _first_empty(list(x.shape[-n:]), a.kernel, a.stride, a.padding, a.dilation, a.ceil_mode)
