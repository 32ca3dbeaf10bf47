"""Channel coupling on hand-built nets: every expectation is derived by hand from the architecture.

`classes(c, tensor, dim)` lists the class of each position of a parameter dimension, renumbered
in order of first appearance, so "positions i and j must go together" reads as equal numbers.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnnscope.analysis.engine import analyze
from cnnscope.errors import CnnscopeError
from cnnscope.transforms.coupling import find_coupling

from tests.transforms.nets import Chain


def couple(model, size, ignore=()):
    a = analyze(model.eval(), input_size=size)
    return find_coupling([a.graph], a.model, ignore)


def slot(c, tensor, dim):
    return next(s for s in c.slots if s.tensor == tensor and s.dim == dim)


def raw_classes(c, tensor, dim):
    return slot(c, tensor, dim).classes.tolist()


def classes(c, tensor, dim):
    """Class per position, renumbered by first appearance within this slot."""
    seen = {}
    return [seen.setdefault(k, len(seen)) for k in raw_classes(c, tensor, dim)]


def group_of(c, tensor, dim=0):
    cls = slot(c, tensor, dim).classes[0]
    return c.groups[int(c.class_group[cls])]


def members(c, group):
    return {(c.slots[i].tensor, c.slots[i].dim) for i in group.slots}


def test_chain_groups_and_members():
    c = couple(Chain(), "3x8x8")
    g1 = group_of(c, "conv1.weight")
    # conv1's 8 filters (+bias), the BatchNorm's 4 per-channel tensors, conv2's 8 input slices
    assert members(c, g1) == {("conv1.weight", 0), ("conv1.bias", 0), ("bn1.weight", 0), ("bn1.bias", 0),
                              ("bn1.running_mean", 0), ("bn1.running_var", 0), ("conv2.weight", 1)}
    assert g1.size == 8 and g1.removable == 7 and g1.channels == 8
    g2 = group_of(c, "conv2.weight")
    assert members(c, g2) == {("conv2.weight", 0), ("conv2.bias", 0), ("fc.weight", 1)}
    assert g2.size == 16
    # the classifier's outputs and the image channels are never pruned
    assert group_of(c, "fc.weight", 0).removable == 0
    assert "network output" in group_of(c, "fc.weight", 0).why_not()
    assert "network input" in group_of(c, "conv1.weight", 1).why_not()
    assert classes(c, "conv1.weight", 0) == list(range(8))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_a = nn.Conv2d(3, 8, 3, padding=1)
        self.conv_b = nn.Conv2d(8, 8, 3, padding=1)
        self.conv_c = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        a = self.conv_a(x)
        return self.conv_c(F.relu(a + self.conv_b(F.relu(a))))


def test_residual_add_couples_same_indices():
    c = couple(Residual(), "3x6x6")
    a = raw_classes(c, "conv_a.weight", 0)
    # channel i of the sum is a_i + b_i: a_i, b_i, conv_b's input i and conv_c's input i go together
    assert raw_classes(c, "conv_b.weight", 0) == a
    assert raw_classes(c, "conv_b.weight", 1) == a
    assert raw_classes(c, "conv_c.weight", 1) == a
    assert len(set(a)) == 8


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_a = nn.Conv2d(3, 4, 1)
        self.conv_b = nn.Conv2d(3, 6, 1)
        self.conv_c = nn.Conv2d(10, 5, 1)

    def forward(self, x):
        return self.conv_c(torch.cat([self.conv_a(x), self.conv_b(x)], dim=1))


def test_concat_offsets():
    c = couple(Concat(), "3x4x4")
    c_in = raw_classes(c, "conv_c.weight", 1)
    # conv_c's inputs 0..3 are conv_a's outputs, 4..9 conv_b's (offset 4), in order
    assert c_in[:4] == raw_classes(c, "conv_a.weight", 0)
    assert c_in[4:] == raw_classes(c, "conv_b.weight", 0)
    assert group_of(c, "conv_a.weight") is not group_of(c, "conv_b.weight")


class FlattenLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 2 * 2, 3)

    def forward(self, x):
        return self.fc(torch.flatten(self.conv(x), 1))


def test_flatten_linear_each_channel_owns_hw_inputs():
    c = couple(FlattenLinear(), "3x2x2")
    conv = raw_classes(c, "conv.weight", 0)
    fc_in = raw_classes(c, "fc.weight", 1)
    # NCHW flatten: feature f = c·(H·W) + h·W + w, so feature f belongs to channel f // 4
    assert fc_in == [conv[f // 4] for f in range(16)]


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(4, 8, 1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.conv3 = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.conv3(self.conv2(self.conv1(x)))


def test_grouped_conv_removes_same_positions_in_every_group():
    c = couple(Grouped(), "4x5x5")
    # 2 groups of 4: position j of group 0 goes with position j of group 1 (groups keep equal widths)
    assert classes(c, "conv1.weight", 0) == [0, 1, 2, 3, 0, 1, 2, 3]
    assert classes(c, "conv2.weight", 0) == [0, 1, 2, 3, 0, 1, 2, 3]
    assert raw_classes(c, "conv2.weight", 1) == raw_classes(c, "conv1.weight", 0)[:4]
    assert raw_classes(c, "conv3.weight", 1) == raw_classes(c, "conv2.weight", 0)


class Depthwise(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.dw2 = nn.Conv2d(8, 16, 3, padding=1, groups=8)   # depth multiplier 2
        self.pw = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        return self.pw(self.dw2(self.dw(self.conv1(x))))


def test_depthwise_couples_input_with_its_outputs():
    c = couple(Depthwise(), "3x5x5")
    a = raw_classes(c, "conv1.weight", 0)
    assert raw_classes(c, "dw.weight", 0) == a                       # channel i in, channel i out
    assert raw_classes(c, "dw2.weight", 0) == [a[o // 2] for o in range(16)]   # outputs 2i, 2i+1 from i
    assert raw_classes(c, "pw.weight", 1) == [a[o // 2] for o in range(16)]
    assert group_of(c, "conv1.weight").size == 8


def channel_shuffle(x, groups):
    n, ch, h, w = x.shape
    return x.view(n, groups, ch // groups, h, w).transpose(1, 2).contiguous().view(n, ch, h, w)


class Shuffle(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_a = nn.Conv2d(3, 8, 1)
        self.conv_b = nn.Conv2d(4, 4, 1)
        self.conv_c = nn.Conv2d(8, 5, 1)

    def forward(self, x):
        x1, x2 = self.conv_a(x).chunk(2, dim=1)
        return self.conv_c(channel_shuffle(torch.cat([x1, self.conv_b(x2)], 1), 2))


def test_split_and_shuffle_map_index_permutations():
    c = couple(Shuffle(), "3x4x4")
    A = raw_classes(c, "conv_a.weight", 0)
    B = raw_classes(c, "conv_b.weight", 0)
    # chunk(2) must split the pruned tensor where it split the original: A_j goes with A_{4+j}
    assert A[:4] == A[4:]
    # conv_b reads x2 = A_4..A_7
    assert raw_classes(c, "conv_b.weight", 1) == A[4:]
    # view(n, 2, 4, h, w) rows are [A_0..A_3] and [B_0..B_3]; after transpose + view the order is
    # A_0, B_0, A_1, B_1, ...; the runtime view of the pruned tensor keeps 2 rows, so A_j goes with B_j
    assert B == A[:4]
    assert raw_classes(c, "conv_c.weight", 1) == [x for j in range(4) for x in (A[j], B[j])]
    assert len(set(A)) == 4


class SqueezeExcite(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc1 = nn.Conv2d(8, 2, 1)
        self.fc2 = nn.Conv2d(2, 8, 1)
        self.out = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        y = self.conv(x)
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(y.mean((2, 3), keepdim=True)))))
        return self.out(y * s)


def test_squeeze_excitation_scale_is_coupled_to_the_features():
    c = couple(SqueezeExcite(), "3x5x5")
    y = raw_classes(c, "conv.weight", 0)
    assert raw_classes(c, "fc1.weight", 1) == y      # global pooling passes the channels on
    assert raw_classes(c, "fc2.weight", 0) == y      # the broadcast multiply couples scale and features
    assert raw_classes(c, "out.weight", 1) == y
    assert group_of(c, "fc1.weight").size == 2       # the squeeze width is its own group


class Unknown(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)
        self.conv2 = nn.Conv2d(8, 4, 1)
        self.conv3 = nn.Conv2d(3, 8, 1)
        self.conv4 = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        y = self.conv2(torch.roll(self.conv(x), 1, dims=1))    # aten.roll has no channel rule
        z = self.conv4(self.conv3(x)[:, :4])                   # a literal slice of the channels
        return y + z


def test_unknown_ops_and_literal_slices_block_their_channels():
    c = couple(Unknown(), "3x4x4")
    assert c.unknown_ops["aten.roll"] == 1
    g = group_of(c, "conv.weight")
    assert g.removable == 0 and "without a channel rule" in g.why_not()
    g3 = group_of(c, "conv3.weight")
    assert g3.removable == 0 and "fixed positions" in g3.why_not()


def test_ignore_keeps_every_group_the_layer_holds():
    c = couple(Chain(), "3x8x8", ignore=["conv2"])
    assert group_of(c, "conv2.weight", 0).removable == 0       # its filters
    assert group_of(c, "conv1.weight", 0).removable == 0       # its input channels
    assert "--ignore" in group_of(c, "conv1.weight", 0).why_not()
    with pytest.raises(CnnscopeError, match="--ignore 'conv9'"):
        couple(Chain(), "3x8x8", ignore=["conv9"])


class LayerScale(nn.Module):
    """A raw parameter (ConvNeXt's layer scale) of shape (C, 1, 1) multiplied in."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 1)
        self.gamma = nn.Parameter(torch.ones(6, 1, 1))
        self.out = nn.Conv2d(6, 2, 1)

    def forward(self, x):
        return self.out(self.conv(x) * self.gamma)


def test_raw_parameter_in_a_broadcast_multiply():
    c = couple(LayerScale(), "3x4x4")
    assert raw_classes(c, "gamma", 0) == raw_classes(c, "conv.weight", 0)
