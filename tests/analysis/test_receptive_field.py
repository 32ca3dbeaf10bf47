"""Receptive fields: the published values, hand arithmetic, and an independent empirical check.

Published values: Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional Neural
Networks", Distill 2019 (output index i sees input pixels [i·S − P, i·S − P + r − 1]). Hand values
use r_out = r_in + (K − 1)·D·j_in, j_out = j_in·S, P_out = P_in + p·j_in. The empirical check
builds random small CNN DAGs with real tensors and compares the analytic region of one output
position with the support of that position's gradient w.r.t. the input.
"""
import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnscope
from cnnscope.analysis.receptive_field import analyse, receptive_fields


def rf_of(summary, layer=None):
    return summary.totals.receptive_field if layer is None else summary.layer(layer).receptive_field


def square(r, s, p=None):
    out = {"size": [r, r], "stride": [s, s]}
    if p is not None:
        out["padding"] = [p, p]
    return out


def pick(rf, keys=("size", "stride", "padding")):
    return {k: rf[k] for k in keys if k in rf}


# -- published values ------------------------------------------------------------------------------
def test_alexnet_published():
    s = cnnscope.summary("alexnet")
    # Distill: r = 195, S = 32 at the last pooling layer (pool5 = features.12)
    assert pick(rf_of(s), ("size", "stride")) == square(195, 32)
    # P by hand: 2 + 2·8 (conv2 p2 at j 8) + 3·(1·16) (conv3-5 p1 at j 16) = 66
    assert rf_of(s)["padding"] == [66, 66]
    assert rf_of(s, "features") == rf_of(s) == rf_of(s, "features.12")
    # the adaptive 6×6 pool on a 6×6 map is the identity: still 195 before flatten → linear
    assert rf_of(s, "avgpool") == rf_of(s)
    assert rf_of(s, "classifier.1") == "global"


def test_vgg16_published():
    s = cnnscope.summary("vgg16")
    assert pick(rf_of(s)) == square(212, 32, 90)
    assert rf_of(s, "features") == rf_of(s)


def test_inception_v3_published():
    s = cnnscope.summary("inception_v3")
    assert pick(rf_of(s)) == square(1311, 32, 618)
    assert rf_of(s, "Mixed_7c") == rf_of(s)


def test_resnet50_published_at_layer4():
    s = cnnscope.summary("resnet50")
    assert pick(rf_of(s, "layer4")) == square(427, 32, 213)
    assert rf_of(s) == rf_of(s, "layer4")            # totals: the last map before global pooling
    assert rf_of(s, "avgpool") == "global" and rf_of(s, "fc") == "global"
    d = s.to_dict()
    assert all("receptive_field" in row for row in d["layers"])
    assert d["totals"]["receptive_field"] == rf_of(s, "layer4")


# -- hand arithmetic ---------------------------------------------------------------------------------
def _rf(net, size="1x32x32"):
    a = cnnscope.analyze(net, input_size=size)
    return receptive_fields(a.graph)[a.graph.outputs[0]].to_json()


def test_stacked_3x3_convs_see_5x5_then_7x7():
    # the documents: two 3×3 convs see 5×5, three see 7×7 (with 9+9 weights instead of 25)
    c = lambda: nn.Conv2d(1, 1, 3, padding=1)  # noqa: E731
    assert _rf(nn.Sequential(c(), c())) == square(5, 1, 2)
    assert _rf(nn.Sequential(c(), c(), c())) == square(7, 1, 3)


def test_asymmetric_kernels_dilation_stride():
    # 1×7 then 7×1 (Inception v3's factorisation) sees 7×7
    net = nn.Sequential(nn.Conv2d(1, 1, (1, 7), padding=(0, 3)), nn.Conv2d(1, 1, (7, 1), padding=(3, 0)))
    assert _rf(net) == square(7, 1, 3)
    assert _rf(nn.Conv2d(1, 1, (1, 7))) == {"size": [1, 7], "stride": [1, 1], "padding": [0, 0]}
    # dilation 2: 1 + (3 − 1)·2 = 5
    assert _rf(nn.Conv2d(1, 1, 3, dilation=2)) == square(5, 1, 0)
    # stride 2 then 3×3: 3 + (3 − 1)·2 = 7, j = 2, P = 1 + 1·2 = 3
    net = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2, padding=1), nn.Conv2d(1, 1, 3, padding=1))
    assert _rf(net) == square(7, 2, 3)


def test_ceil_mode_pooling_keeps_the_recurrence():
    # GoogLeNet: conv 7/2/3 → r 7, j 2, P 3; maxpool 3/2 ceil → r 7 + 2·2 = 11, j 4, P 3
    s = cnnscope.summary("googlenet")
    assert pick(rf_of(s, "maxpool1")) == square(11, 4, 3)


def test_residual_union_and_channel_concat():
    s = cnnscope.summary("resnet50")
    # stem + maxpool: r 11, j 4, P 5; layer1.0 main path 3×3 → 11 + 2·4 = 19 ⊇ the 1×1 shortcut's 11
    assert pick(rf_of(s, "maxpool")) == square(11, 4, 5)
    assert pick(rf_of(s, "layer1.0")) == square(19, 4, 9)
    assert pick(rf_of(s, "layer1.0.downsample")) == square(11, 4, 5)

    class Branches(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(1, 2, 1)
            self.b = nn.Conv2d(1, 2, 5, padding=2)

        def forward(self, x):
            return torch.cat([self.a(x), self.b(x)], 1)

    assert _rf(Branches()) == square(5, 1, 2)


def test_misaligned_merge_is_flagged():
    class Shifted(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 2)

        def forward(self, x):
            # conv k2 sees [i, i+1]; padded by one on the left it sees [i−1, i]; x itself sees [i, i]
            return x + F.pad(self.conv(x), (1, 0, 1, 0))

    rf = _rf(Shifted())
    assert pick(rf) == square(2, 1, 1)
    assert rf["misaligned"] is True and "misaligned merge" in rf["notes"][0]


def test_layout_followed_through_channels_last_mlp():
    # ConvNeXt runs LayerNorm and its MLP on N×H×W×C and (N·H·W)×C: RF-neutral, not global.
    # stem 4×4/4 → r 4, j 4; block dwconv 7×7 p3 → 4 + 6·4 = 28, P 0 + 3·4 = 12
    s = cnnscope.summary("convnext_tiny")
    assert pick(rf_of(s, "features.0")) == square(4, 4, 0)
    assert pick(rf_of(s, "features.1.0")) == square(28, 4, 12)


def test_channel_split_and_shuffle():
    # ShuffleNetV2: conv 3/2/1 → r 3, j 2, P 1; maxpool 3/2/1 → 7, 4, 3; stage2.0's dw 3×3/2 → 15, 8, 7;
    # stage2.1 splits channels, one half through a dw 3×3: 15 + 2·8 = 31, P 7 + 8 = 15, then shuffles
    s = cnnscope.summary("shufflenet_v2_x1_0")
    assert pick(rf_of(s, "stage2.0")) == square(15, 8, 7)
    assert pick(rf_of(s, "stage2.1")) == square(31, 8, 15)


def test_global_operations():
    # squeeze-and-excitation multiplies every position by a gate computed from the whole map:
    # EfficientNet-B0 is global from its first SE block; before it, stem 3/2/1 + dw 3×3 → 7, j 2, P 3
    s = cnnscope.summary("efficientnet_b0")
    assert rf_of(s, "features.1") == "global"
    assert pick(rf_of(s)) == square(7, 2, 3)

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.fc = nn.Linear(4 * 6 * 6, 2)

        def forward(self, x):
            y = self.conv(x)
            return self.fc(y.flatten(1)), y.mean((2, 3)), torch.softmax(y.flatten(2), -1)

    a = cnnscope.analyze(Head(), input_size="3x8x8")
    rfs = receptive_fields(a.graph)
    assert [rfs[v].to_json() for v in a.graph.outputs] == ["global"] * 3
    # the flattened map itself keeps its RF: only the linear layer mixes positions
    assert cnnscope.summary(Head(), input_size="3x8x8").totals.receptive_field == square(3, 1, 0)


def test_non_spatial_values_are_null():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3)
            self.bias = nn.Parameter(torch.zeros(4))
            self.proj = nn.Linear(4, 4)

        def forward(self, x):
            return self.conv(x), self.proj(self.bias)

    s = cnnscope.summary(Net(), input_size="1x8x8")
    assert s.layer("proj").receptive_field is None
    assert pick(s.layer("conv").receptive_field) == square(3, 1, 0)


def test_unknown_op_is_conservatively_global():
    class Rolled(nn.Module):
        def forward(self, x):
            return torch.roll(x, 1, dims=2)

    a = cnnscope.analyze(nn.Sequential(nn.Conv2d(1, 1, 3), Rolled()), input_size="1x8x8")
    rf = receptive_fields(a.graph)[a.graph.outputs[0]]
    assert rf.is_global and "no receptive-field rule for aten.roll" in rf.notes[-1]


def test_adaptive_pooling():
    # divisible: a pool with k = s = 8/2 = 4 (not global); to 1×1: global
    net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.AdaptiveAvgPool2d(2))
    assert _rf(net, "1x8x8") == square(3 + 3 * 1, 4, 1)
    assert _rf(nn.Sequential(nn.Conv2d(1, 1, 3), nn.AdaptiveAvgPool2d(1)), "1x8x8") == "global"
    # 7 → 3 is not divisible: an envelope, flagged
    rf = _rf(nn.AdaptiveAvgPool2d(3), "1x7x7")
    assert rf["approximate"] is True


class Resize(nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.kw = kw
        self.down = nn.Conv2d(1, 1, 3, stride=2, padding=1, bias=False)
        self.conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)

    def forward(self, x):
        return self.conv(F.interpolate(self.down(x), **self.kw))


@pytest.mark.parametrize("kw", [dict(scale_factor=2, mode="nearest"), dict(size=(24, 24), mode="nearest"),
                                dict(scale_factor=2, mode="bilinear", align_corners=False),
                                dict(size=(21, 21), mode="bilinear", align_corners=True),
                                dict(scale_factor=1.5, mode="bicubic", align_corners=False)])
def test_interpolation_is_an_envelope_of_the_gradient_support(kw):
    net = Resize(**kw)
    with torch.no_grad():
        for p in net.parameters():
            p.uniform_(0.5, 1.5)
    a = cnnscope.analyze(net, input_size="1x16x16")
    rf = receptive_fields(a.graph)[a.graph.outputs[0]]
    assert rf.approximate and rf.to_json()["approximate"] is True
    if kw.get("scale_factor") == 2 and kw["mode"] == "nearest":
        assert rf.axes[0].jump == 1          # stride 2, then ×2: jump 2/2 = 1
    x = torch.rand(1, 1, 16, 16) + 0.5
    n = net(x).shape[-2]
    for i, (rows, _) in enumerate(_support(net, x, [(i, i) for i in range(n)])):
        lo, hi = rf.axes[0].interval(i)
        assert rows is None or (lo <= rows[0] and rows[1] <= hi), (i, rows, lo, hi)


# -- empirical check: random DAGs, analytic region == gradient support -------------------------------
class Residual(nn.Module):
    def __init__(self, main, shortcut):
        super().__init__()
        self.main, self.shortcut = main, shortcut

    def forward(self, x):
        return self.main(x) + (x if self.shortcut is None else self.shortcut(x))


class Concat(nn.Module):
    def __init__(self, branches):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        return torch.cat([b(x) for b in self.branches], 1)


class ShiftedAdd(nn.Module):
    """x + pad(conv 2×2 (x)): paths with different centres (misaligned)."""

    def __init__(self, c, top, left):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 2, bias=False)
        self.pad = (left, 1 - left, top, 1 - top)

    def forward(self, x):
        return x + F.pad(self.conv(x), self.pad)


class SplitShuffle(nn.Module):
    """ShuffleNet-style: half the channels through a conv, concat, channel shuffle (view/transpose/view)."""

    def __init__(self, c, k):
        super().__init__()
        self.conv = nn.Conv2d(c // 2, c // 2, k, padding=k // 2, bias=False)

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        y = torch.cat([a, self.conv(b)], 1)
        n, c, h, w = y.shape
        return y.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)


class TokenMix(nn.Module):
    """ConvNeXt/ViT-style layout round trip: N×C×H×W → N×(H·W)×C → linear over channels → back."""

    def __init__(self, c):
        super().__init__()
        self.fc = nn.Linear(c, c, bias=False)

    def forward(self, x):
        n, c, h, w = x.shape
        return self.fc(x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(n, c, h, w)


class Crop(nn.Module):
    def __init__(self, top, left, step):
        super().__init__()
        self.top, self.left, self.step = top, left, step

    def forward(self, x):
        return x[:, :, self.top::self.step, self.left:]


def _out(n, k, s, p, d=1, ceil=False):
    num = n + 2 * p - d * (k - 1) - 1
    if not ceil:
        return num // s + 1
    o = -(-num // s) + 1
    return o - 1 if (o - 1) * s >= n + p else o


def random_dag(rng: random.Random, h: int, w: int, c: int = 2, max_jump: int = 8) -> nn.Module:
    """A random small CNN DAG: convs (asymmetric kernels, strides, paddings, dilations), avg-pools
    (max-pool's window, but every input of the window gets gradient), residual adds with strided
    shortcuts, inception-style concats, misaligned adds, channel split/shuffle, crops and layout
    round trips. Positive weights and no biases: no cancellation can hide a pixel."""
    mods, jump = [], [1, 1]
    for _ in range(rng.randint(3, 6)):
        kind = rng.choice(["conv", "conv", "pool", "res", "res", "concat", "shift", "shuffle", "tokens", "crop"])
        if kind in ("conv", "pool", "res"):
            if kind == "conv":
                k = (rng.randint(1, 5), rng.randint(1, 5))
                s = (rng.randint(1, 2), rng.randint(1, 2))
                d = (rng.randint(1, 2), rng.randint(1, 2))
                p = tuple(rng.randint(0, dd * (kk - 1) // 2 + 1) for kk, dd in zip(k, d))
                ceil = False
                mod = nn.Conv2d(c, c, k, s, p, d, bias=False)
            elif kind == "pool":
                kk, ss = rng.randint(2, 3), rng.randint(1, 2)
                k, s, d, p = (kk, kk), (ss, ss), (1, 1), (rng.randint(0, kk // 2),) * 2
                ceil = rng.random() < 0.5
                mod = nn.AvgPool2d(kk, ss, p[0], ceil_mode=ceil)
            else:
                kk, ss, dd = rng.choice([1, 3, 5]), rng.randint(1, 2), rng.randint(1, 2)
                k, s, d, p, ceil = (kk, kk), (ss, ss), (dd, dd), (dd * (kk - 1) // 2,) * 2, False
                main = [nn.Conv2d(c, c, kk, ss, p[0], dd, bias=False)]
                if rng.random() < 0.5:
                    k2 = rng.choice([1, 3])
                    main.append(nn.Conv2d(c, c, k2, 1, k2 // 2, bias=False))
                mod = Residual(nn.Sequential(*main), nn.Conv2d(c, c, 1, ss, bias=False) if ss > 1 else None)
            nh, nw = _out(h, k[0], s[0], p[0], d[0], ceil), _out(w, k[1], s[1], p[1], d[1], ceil)
            if min(nh, nw) < 4 or jump[0] * s[0] > max_jump or jump[1] * s[1] > max_jump:
                continue
            mods.append(mod)
            h, w, jump = nh, nw, [jump[0] * s[0], jump[1] * s[1]]
        elif kind == "concat":
            branches = []
            for _ in range(rng.randint(2, 3)):
                k, dd = rng.choice([1, 3, 5]), rng.randint(1, 2)
                b = [nn.Conv2d(c, c, (k, 1), 1, (dd * (k - 1) // 2, 0), (dd, 1), bias=False),
                     nn.Conv2d(c, c, (1, k), 1, (0, dd * (k - 1) // 2), (1, dd), bias=False)]
                if rng.random() < 0.3:
                    b.insert(0, nn.AvgPool2d(3, 1, 1))
                branches.append(nn.Sequential(*b))
            mods += [Concat(branches), nn.Conv2d(c * len(branches), c, 1, bias=False)]
        elif kind == "shift":
            mods.append(ShiftedAdd(c, rng.randint(0, 1), rng.randint(0, 1)))
        elif kind == "shuffle":
            mods.append(SplitShuffle(c, rng.choice([1, 3, 5])))
        elif kind == "tokens":
            mods.append(TokenMix(c))
        else:
            top, left, step = rng.randint(0, 2), rng.randint(0, 2), rng.randint(1, 2)
            nh, nw = -(-(h - top) // step), w - left
            if min(nh, nw) < 4 or jump[0] * step > max_jump:
                continue
            mods.append(Crop(top, left, step))
            h, w, jump[0] = nh, nw, jump[0] * step
    net = nn.Sequential(*mods)
    with torch.no_grad():
        for p in net.parameters():
            p.uniform_(0.5, 1.5)
    return net


def _support(net, x, positions):
    """Per output position: the (rows, cols) bounding box of the nonzero input gradient."""
    xb = x.expand(len(positions), *x.shape[1:]).clone().requires_grad_(True)
    y = net(xb)
    g, = torch.autograd.grad(sum(y[b, :, i, j].sum() for b, (i, j) in enumerate(positions)), xb)
    out = []
    for b in range(len(positions)):
        m = g[b].abs().sum(0) > 0
        rows, cols = torch.nonzero(m.any(1)).flatten(), torch.nonzero(m.any(0)).flatten()
        out.append(tuple((int(t.min()), int(t.max())) if len(t) else None for t in (rows, cols)))
    return out


@pytest.mark.parametrize("seed", range(16))
def test_random_dags_match_gradient_support(seed):
    rng = random.Random(seed)
    torch.manual_seed(seed)
    h, w = rng.randint(32, 48), rng.randint(32, 48)
    net = random_dag(rng, h, w)
    a = cnnscope.analyze(net, input_size=f"2x{h}x{w}")
    rf = receptive_fields(a.graph)[a.graph.outputs[0]]
    assert not rf.is_global
    # an image large enough that the centre output's region stays clear of every padded border
    # (at a border, a padded intermediate position contributes nothing, so the support can only shrink)
    hb = max(h, 2 * int(rf.axes[0].size) + 8 * int(rf.axes[0].jump) + 16)
    wb = max(w, 2 * int(rf.axes[1].size) + 8 * int(rf.axes[1].jump) + 16)
    x = torch.rand(1, 2, hb, wb) + 0.5
    oh, ow = net(x).shape[-2:]
    centre = [(oh // 2, ow // 2), (oh // 2 + 1, ow // 2 - 1)]
    border = [(0, 0), (oh - 1, ow - 1), (0, ow - 1)]
    for (i, j), got in zip(centre + border, _support(net, x, centre + border)):
        expected = []
        for ax, idx, n in ((rf.axes[0], i, hb), (rf.axes[1], j, wb)):
            lo, hi = ax.interval(idx)
            expected.append((max(lo, 0), min(hi, n - 1)) if hi >= 0 and lo <= n - 1 else None)
        if (i, j) in centre:
            assert got == tuple(expected), (seed, (i, j), got, expected, rf, net)
        else:   # near the border: the support lies inside the clipped analytic region
            for g, e in zip(got, expected):
                assert g is None or (e is not None and e[0] <= g[0] and g[1] <= e[1]), (seed, (i, j), got, expected)


def test_rf_pass_visits_each_node_once_and_totals_match():
    a = cnnscope.analyze("resnet18")
    res = analyse(a.graph)
    assert res.global_node is not None and a.graph.nodes[res.global_node].scope == "avgpool"
    # resnet18 by hand: stem + maxpool 11/4/5; layer1 four 3×3 at j 4 → 43; layer2 (first conv /2 at j 4,
    # then three at j 8) → 43 + 8 + 3·16 = 99; layer3 → 99 + 16 + 3·32 = 211; layer4 → 211 + 32 + 3·64 = 435
    assert res.before_global.to_json() == square(435, 32, 217)
