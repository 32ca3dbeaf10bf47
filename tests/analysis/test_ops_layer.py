"""The op layer (issue 14): arguments bound by schema name, per-op registries that refuse
duplicates, and op families every pass reads. Values by hand from the ATen schemas."""
import pytest
import torch

from cnnscope.ops.args import bind_schema, conv_args, pool_args, spatial_rank
from cnnscope.ops.registry import op_registrar

aten = torch.ops.aten


def test_cudnn_convolution_is_read_by_name_not_position():
    """cudnn_convolution(self, weight, padding, stride, dilation, groups, …) puts padding *before*
    stride, unlike convolution(input, weight, bias, stride, padding, …): by position one would swap them."""
    x, w = torch.empty(1, 8, 16, 16, device="meta"), torch.empty(8, 4, 3, 3, device="meta")
    named = bind_schema(aten.cudnn_convolution.default._schema,
                        (x, w, [1, 1], [2, 2], [1, 1], 2, False, False, False), {})
    c = conv_args(named, 2)
    assert (c.stride, c.padding, c.dilation, c.groups, c.transposed) == ((2, 2), (1, 1), (1, 1), 2, False)
    named = bind_schema(aten.convolution.default._schema,
                        (x, w, None, [2, 2], [1, 1], [1, 1], True, [1, 0], 2), {})
    c = conv_args(named, 2)
    assert (c.stride, c.padding, c.transposed, c.output_padding, c.groups) == ((2, 2), (1, 1), True, (1, 0), 2)


def test_pool_arguments_and_defaults():
    """avg_pool2d has no dilation (ceil_mode is its 5th argument); max_pool2d's ceil_mode is the 6th;
    an empty stride means the kernel."""
    x = torch.empty(1, 3, 9, 9, device="meta")
    avg = pool_args(bind_schema(aten.avg_pool2d.default._schema, (x, [3, 3], [], [1, 1], True), {}), 2)
    assert (avg.kernel, avg.stride, avg.padding, avg.dilation, avg.ceil_mode) == ((3, 3), (3, 3), (1, 1), (1, 1), True)
    mx = pool_args(bind_schema(aten.max_pool2d.default._schema, (x, [2], [1], [0], [2], True), {}), 2)
    assert (mx.kernel, mx.stride, mx.dilation, mx.ceil_mode) == ((2, 2), (1, 1), (2, 2), True)
    assert bind_schema(aten.max_pool2d.default._schema, (x, [2]), {})["ceil_mode"] is False   # default filled
    assert [spatial_rank(p) for p in ("aten.max_pool1d", "aten.avg_pool3d", "aten.convolution")] == [1, 3, 2]


def test_keyword_arguments_bind_too():
    x = torch.empty(2, 3, device="meta")
    named = bind_schema(aten.sum.dim_IntList._schema, (x, [1]), {"keepdim": True})
    assert named == {"self": x, "dim": [1], "keepdim": True, "dtype": None}


def test_registries_refuse_a_second_entry_for_one_op():
    table: dict = {}
    register = op_registrar(table, "MAC formula")

    @register("aten.mm", "aten.bmm")
    def first(node, graph):
        return 0

    with pytest.raises(RuntimeError, match="aten.bmm already has a MAC formula"):
        @register("aten.bmm")
        def second(node, graph):
            return 1
    assert table == {"aten.mm": first, "aten.bmm": first}


def test_every_registered_op_exists():
    """A misspelt packet in a family or registry would never match: each names a real ATen op."""
    import cnnscope.transforms.channel_rules  # noqa: F401  (registers the channel rules)
    from cnnscope.analysis.costs import MAC_FORMULAS, ZERO_MACS
    from cnnscope.analysis.receptive_field import RF_RULES
    from cnnscope.ops import families
    from cnnscope.transforms.channel_registry import RULES

    packets = set(ZERO_MACS) | set(MAC_FORMULAS) | set(RF_RULES) | set(RULES)
    for name in dir(families):
        if name.isupper():
            packets |= set(getattr(families, name))
    missing = sorted(p for p in packets if p.startswith("aten.") and not hasattr(aten, p[len("aten."):]))
    assert missing == []


def test_families_are_read_by_the_passes():
    """One list per family: a pooling op has a window (RF), counts 0 MACs on purpose and passes
    channels through (coupling) — all three from POOLING."""
    import cnnscope.transforms.channel_rules  # noqa: F401
    from cnnscope.analysis.costs import ZERO_MACS
    from cnnscope.analysis.receptive_field import WINDOWS
    from cnnscope.ops.families import ADAPTIVE_POOLING, CONVOLUTION, POOLING, RESAMPLING
    from cnnscope.transforms.channel_registry import RULES

    assert POOLING | ADAPTIVE_POOLING | RESAMPLING | CONVOLUTION == set(WINDOWS)
    assert POOLING | ADAPTIVE_POOLING | RESAMPLING <= ZERO_MACS
    assert all(p in RULES for p in POOLING | ADAPTIVE_POOLING | RESAMPLING)
