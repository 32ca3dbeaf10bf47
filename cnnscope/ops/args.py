"""Argument decoders: an op's arguments bound by its schema's names, never by position.

Backends order the same arguments differently (``aten.convolution`` has ``transposed`` at 6,
``aten.cudnn_convolution`` has no ``transposed`` at all), so every pass that reads a convolution's
stride or a pool's kernel goes through these decoders: one reading, the same for the MAC pass, the
receptive field, ``explain``, channel coupling and the tracer's input-size checks.

Pure functions of already-bound arguments (``{schema name: value}``), so they work on recorded
graph nodes (:meth:`cnnscope.graph.dataflow.Node.named_args`) and on live dispatcher calls alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence


def bind_schema(schema: Any, args: Sequence, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``{argument name: value}`` for one call of an op with TorchScript schema ``schema``, defaults
    filled in; without a schema (a non-ATen node) the positional arguments are keyed "0", "1", …"""
    if schema is None:
        return {str(i): a for i, a in enumerate(args)} | dict(kwargs)
    out: dict[str, Any] = {}
    for i, arg in enumerate(schema.arguments):
        if i < len(args):
            out[arg.name] = args[i]
        elif arg.name in kwargs:
            out[arg.name] = kwargs[arg.name]
        elif arg.has_default_value():
            out[arg.name] = arg.default_value
    return out


def per_axis(v: Any, n: int) -> list:
    """An int-or-list argument as one value per spatial axis: ``3`` → ``[3, 3]``, ``[3]`` → ``[3, 3]``;
    an empty list stays empty (a pool's "stride = kernel" default)."""
    if isinstance(v, (list, tuple)):
        v = list(v)
        if not v:
            return []
        return v * n if len(v) == 1 else v
    return [v] * n


@dataclass(frozen=True)
class ConvArgs:
    """A convolution's hyper-parameters, one entry per spatial axis (the kernel comes from the weight)."""

    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    transposed: bool
    output_padding: tuple[int, ...]
    groups: int


def conv_args(named: Mapping[str, Any], spatial_rank: int) -> ConvArgs:
    """Decode ``convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding,
    groups)`` and every backend overload of it (a missing ``transposed`` means a forward conv)."""
    n = spatial_rank
    return ConvArgs(stride=tuple(per_axis(named.get("stride", 1), n)),
                    padding=tuple(per_axis(named.get("padding", 0), n)),
                    dilation=tuple(per_axis(named.get("dilation", 1), n)),
                    transposed=bool(named.get("transposed", False)),
                    output_padding=tuple(per_axis(named.get("output_padding", 0) or 0, n)),
                    groups=int(named.get("groups", 1) or 1))


@dataclass(frozen=True)
class PoolArgs:
    """A max or average pool's window, one entry per spatial axis."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    ceil_mode: bool


def pool_args(named: Mapping[str, Any], spatial_rank: int) -> PoolArgs:
    """Decode ``max_pool*(input, kernel_size, stride=[], padding=0, dilation=1, ceil_mode=False)`` and
    ``avg_pool*(input, kernel_size, stride=[], padding=0, ceil_mode=False, …)``: an empty stride means
    "the kernel", average pools have no dilation."""
    n = spatial_rank
    kernel = tuple(per_axis(named["kernel_size"], n))
    stride = tuple(per_axis(named.get("stride") or [], n)) or kernel
    return PoolArgs(kernel=kernel, stride=stride, padding=tuple(per_axis(named.get("padding", 0), n)),
                    dilation=tuple(per_axis(named.get("dilation", 1), n)),
                    ceil_mode=bool(named.get("ceil_mode", False)))


def spatial_rank(packet: str, default: int = 2) -> int:
    """1, 2 or 3 from an op name such as ``aten.max_pool3d`` (the pools' schemas do not say)."""
    for nd in (1, 2, 3):
        if f"{nd}d" in packet:
            return nd
    return default


def swapped_dims(named: Mapping[str, Any]) -> tuple[int, int] | None:
    """The two dims ``transpose(self, dim0, dim1)`` / ``swapaxes(self, axis0, axis1)`` swap, as given
    (maybe negative); None for ``t``/``mT``-style ops, which swap the last two."""
    pair = [named[k] for k in ("dim0", "dim1", "axis0", "axis1") if k in named]
    return (int(pair[0]), int(pair[1])) if pair else None
