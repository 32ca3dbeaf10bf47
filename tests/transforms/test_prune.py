"""Structured and unstructured pruning: numbers derived by hand or by an independent method.

- hand arithmetic for the params/MACs of a pruned tiny net;
- an exact functional check: in the original model, make the channels that will be removed
  contribute nothing (zero their consumers' input weights, by hand); the pruned model must then
  compute the same outputs, which checks the index bookkeeping through residuals, concatenation,
  channel split + shuffle, grouped/depthwise convs, squeeze-excitation and flatten → Linear;
- torch's own FlopCounterMode on the real pruned zoo models (FLOPs = 2 × MACs).
"""
import copy
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnscope
from cnnscope.analysis.summary import summary
from cnnscope.errors import CnnscopeError
from cnnscope.transforms.prune import apply_prune_step, prune_channels
from cnnscope.transforms.unstructured import prune_unstructured

from tests.transforms.nets import Chain


def kept(step, tensor, dim):
    for name, d, _size, kid in step["tensors"]:
        if name == tensor and d == dim:
            return step["keep"][kid]
    return None


def test_tiny_net_params_and_macs_by_hand():
    torch.manual_seed(0)
    r = prune_channels(Chain().eval(), "3x8x8", ratio=0.5)
    m = r.model
    assert (m.conv1.out_channels, m.bn1.num_features, m.conv2.in_channels, m.conv2.out_channels,
            m.fc.in_features, m.fc.out_features) == (4, 4, 4, 8, 8, 10)
    s = summary(m, input_size="3x8x8")
    # conv1 3→4 3×3: 3·9·4 + 4 = 112; bn 4 + 4 = 8; conv2 4→8: 4·9·8 + 8 = 296; fc 8·10 + 10 = 90
    assert s.totals.params == 112 + 8 + 296 + 90 == 506
    # MACs = weights × output positions (8×8 = 64): 108·64 + 288·64 + 80
    assert s.totals.macs == 108 * 64 + 288 * 64 + 80 == 25424
    assert summary(Chain(), input_size="3x8x8").totals.params == (216 + 8) + 16 + (1152 + 16) + 170


def test_user_model_untouched():
    model = Chain().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prune_channels(model, "3x8x8", ratio=0.5)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.conv1.out_channels == 8


def channel_shuffle(x, groups):
    n, ch, h, w = x.shape
    return x.view(n, groups, ch // groups, h, w).transpose(1, 2).contiguous().view(n, ch, h, w)


class Mixed(nn.Module):
    """Residual + grouped conv, chunk + concat + channel shuffle, depthwise + SE, concat, flatten → Linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.stem_bn = nn.BatchNorm2d(8)
        self.res = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.res_bn = nn.BatchNorm2d(8)
        self.b = nn.Conv2d(4, 4, 1)
        self.b_bn = nn.BatchNorm2d(4)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.dw_bn = nn.BatchNorm2d(8)
        self.fc1 = nn.Conv2d(8, 2, 1)
        self.fc2 = nn.Conv2d(2, 8, 1)
        self.e2 = nn.Conv2d(8, 4, 1)
        self.head = nn.Linear(12 * 2 * 2, 5)

    def forward(self, x):
        s = F.relu(self.stem_bn(self.stem(x)))
        y = F.relu(s + self.res_bn(self.res(s)))
        x1, x2 = y.chunk(2, dim=1)
        z = channel_shuffle(torch.cat([x1, F.relu(self.b_bn(self.b(x2)))], 1), 2)
        d = F.relu(self.dw_bn(self.dw(z)))
        d = d * torch.sigmoid(self.fc2(F.relu(self.fc1(d.mean((2, 3), keepdim=True)))))
        c = torch.cat([d, self.e2(z)], 1)
        return self.head(torch.flatten(F.adaptive_avg_pool2d(c, 2), 1))


def test_removed_channels_that_contribute_nothing_give_identical_outputs():
    """Hand derivation. The residual, the grouped conv (2 groups of 4), chunk(2) and the shuffle tie
    stem channels j and j+4 and b's channel j into one class K_j (j = 0..3); z = shuffle(cat(y_0..3,
    b)) orders them S0,B0,S1,B1,…, so K_j owns z/d/SE/e2-input positions 2j and 2j+1 and head inputs
    8j..8j+7. We make K_1, K_2, e2's filters 0 and 3 and the SE squeeze channel 1 contribute
    nothing (their consumers' input weights are zero) and small, so l1 removes exactly them."""
    torch.manual_seed(0)
    m = Mixed().eval()
    with torch.no_grad():
        for bn in (m.stem_bn, m.res_bn, m.b_bn, m.dw_bn):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.bias.uniform_(-0.5, 0.5)
        small = 1e-3
        for c in (1, 2, 5, 6):                      # K_1, K_2 in the stem and the residual conv
            m.stem.weight[c] *= small
            m.stem_bn.weight[c] = small
            m.res.weight[c] *= small
            m.res_bn.weight[c] = small
        m.res.weight[:, [1, 2]] = 0                 # grouped conv: within-group inputs 1, 2
        m.b.weight[:, [1, 2]] = 0                   # b reads stem channels 4..7: 5, 6 are K_1, K_2
        m.b.weight[[1, 2]] *= small
        m.b_bn.weight[[1, 2]] = small
        for pos in (2, 3, 4, 5):                    # z/d positions of K_1, K_2
            m.dw.weight[pos] *= small
            m.dw_bn.weight[pos] = small
        m.fc1.weight[:, [2, 3, 4, 5]] = 0
        m.fc2.weight[[2, 3, 4, 5]] *= small
        m.e2.weight[:, [2, 3, 4, 5]] = 0
        m.fc1.weight[1] *= small                    # SE squeeze channel 1
        m.fc2.weight[:, 1] = 0
        m.e2.weight[[0, 3]] *= small                # e2 filters 0 and 3
        m.head.weight[:, 8:24] = 0                  # c channels 2..5 (K_1, K_2) × 4 positions
        m.head.weight[:, 32:36] = 0                 # c channel 8 = e2 filter 0
        m.head.weight[:, 44:48] = 0                 # c channel 11 = e2 filter 3
    r = prune_channels(m, "3x8x8", ratio=0.5)
    step = r.steps[0]
    assert kept(step, "stem.weight", 0) == [0, 3, 4, 7]
    assert kept(step, "res.weight", 1) == [0, 3]
    assert kept(step, "b.weight", 1) == [0, 3]
    assert kept(step, "dw.weight", 0) == [0, 1, 6, 7]
    assert kept(step, "fc1.weight", 0) == [0]
    assert kept(step, "e2.weight", 0) == [1, 2]
    assert kept(step, "e2.weight", 1) == [0, 1, 6, 7]
    assert kept(step, "head.weight", 1) == [*range(0, 8), *range(24, 32), *range(36, 44)]
    p = r.model
    assert (p.res.groups, p.res.in_channels, p.dw.groups, p.head.in_features) == (2, 4, 4, 24)
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(p(x), m(x), rtol=1e-5, atol=1e-5)


def test_plan_step_is_plain_data_and_replays_on_meta_and_real(tmp_path):
    torch.manual_seed(0)
    base = Mixed().eval()
    r = prune_channels(base, "3x8x8", ratio=0.5, criterion="random", seed=3)
    path = tmp_path / "step.pt"
    torch.save(r.steps[0], path)
    step = torch.load(path, weights_only=True)
    real = apply_prune_step(copy.deepcopy(base), step)
    meta = apply_prune_step(Mixed().to("meta"), step)
    shapes = {k: tuple(v.shape) for k, v in r.model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in real.state_dict().items()} == shapes
    assert {k: tuple(v.shape) for k, v in meta.state_dict().items()} == shapes
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(real(x), r.model(x))
    with pytest.raises(CnnscopeError, match="does not belong"):
        apply_prune_step(Chain(), step)


def test_min_one_channel_and_round_to():
    torch.manual_seed(0)
    tiny = prune_channels(Chain().eval(), "3x8x8", ratio=0.99).model
    assert (tiny.conv1.out_channels, tiny.conv2.out_channels) == (1, 1)
    r = prune_channels(Chain().eval(), "3x8x8", ratio=0.6, round_to=4).model
    # conv1 keeps 8 − ⌊4.8⌋ = 4 (a multiple of 4); conv2 keeps 16 − ⌊9.6⌋ = 7 → rounded up to 8
    assert (r.conv1.out_channels, r.conv2.out_channels) == (4, 8)


def _weak_half_chain():
    m = Chain().eval()
    with torch.no_grad():
        for p in m.parameters():
            p.fill_(1.0)
        m.conv2.weight[8:] *= 1e-3                 # conv2's filters 8..15 are nearly zero
    return m


def test_global_scope_ranks_across_groups():
    # 24 prunable classes (8 + 16); global 1/3 = 8 classes: exactly conv2's 8 weak filters
    g = prune_channels(_weak_half_chain(), "3x8x8", ratio=1 / 3, scope="global")
    assert (g.model.conv1.out_channels, g.model.conv2.out_channels) == (8, 8)
    assert kept(g.steps[0], "conv2.weight", 0) == list(range(8))
    # layer scope removes ⌊8/3⌋ = 2 of conv1 and ⌊16/3⌋ = 5 of conv2
    lay = prune_channels(_weak_half_chain(), "3x8x8", ratio=1 / 3, scope="layer")
    assert (lay.model.conv1.out_channels, lay.model.conv2.out_channels) == (6, 11)


def test_bn_and_random_criteria():
    m = Chain().eval()
    with torch.no_grad():
        m.bn1.weight.copy_(torch.tensor([1.0, 0.01, 1.0, -0.02, 1.0, 1.0, 0.03, 1.0]))
    r = prune_channels(m, "3x8x8", ratio=3 / 8, criterion="bn")
    assert kept(r.steps[0], "conv1.weight", 0) == [0, 2, 4, 5, 7]     # smallest |γ|: 1, 3, 6
    assert any("ranked by l1" in n for n in r.notes)                     # conv2's group has no BN
    a = prune_channels(m, "3x8x8", ratio=0.5, criterion="random", seed=1).steps[0]
    b = prune_channels(m, "3x8x8", ratio=0.5, criterion="random", seed=1).steps[0]
    assert a == b


def test_bad_options():
    m = Chain().eval()
    for kwargs, msg in (({"ratio": 1.0}, "strictly between 0 and 1"), ({"ratio": 0.0}, "strictly between"),
                        ({"ratio": 0.5, "criterion": "l3"}, "unknown criterion 'l3'"),
                        ({"ratio": 0.5, "scope": "net"}, "unknown scope"),
                        ({"ratio": 0.5, "ignore": ["nope*"]}, "--ignore 'nope\\*'"),
                        ({"target_macs": 10}, "cannot be met"), ({"target_macs": 10**9}, "already meets"),
                        ({}, "say how much"), ({"ratio": 0.5, "target_params": 100}, "not both")):
        with pytest.raises(CnnscopeError, match=msg):
            prune_channels(m, "3x8x8", **kwargs)


def test_target_macs_is_met_by_the_smallest_ratio():
    torch.manual_seed(0)
    model = cnnscope.load_model("resnet18")
    target = 500_000_000
    r = prune_channels(model, ratio=None, target_macs=target)
    macs = summary(r.model, input_size=224).totals.macs
    assert macs <= target
    ratio = r.details["ratio"]
    looser = prune_channels(model, ratio=ratio - 0.01)
    assert summary(looser.model, input_size=224).totals.macs > target


def test_unstructured_exact_sparsity_and_plain_weights():
    torch.manual_seed(0)
    m = Chain().eval().requires_grad_(False)
    r = prune_unstructured(m, 0.6, input_size="3x8x8")
    assert r.steps == [] and "no speed" not in r.notes[0] and "neither faster" in r.notes[0]
    pm = r.model
    assert set(pm.state_dict()) == set(m.state_dict())          # no masks, no weight_orig
    names = ["conv1.weight", "conv2.weight", "fc.weight"]
    sizes = [3 * 9 * 8, 8 * 9 * 16, 16 * 10]                      # 216 + 1152 + 160 = 1528 weights
    zeros = sum(int((pm.get_parameter(n) == 0).sum()) for n in names)
    assert zeros == round(0.6 * sum(sizes)) == 917
    cut = max(float(m.get_parameter(n).abs()[pm.get_parameter(n) == 0].max()) for n in names)
    kept_min = min(float(m.get_parameter(n).abs()[pm.get_parameter(n) != 0].min()) for n in names)
    assert cut <= kept_min                                        # the smallest magnitudes went
    assert torch.equal(pm.conv1.bias, m.conv1.bias)               # biases are not pruned
    per = prune_unstructured(m, 0.5, scope="layer", input_size="3x8x8").model
    for n, size in zip(names, sizes):
        assert int((per.get_parameter(n) == 0).sum()) == round(0.5 * size)
    with pytest.raises(CnnscopeError, match="strictly between"):
        prune_unstructured(m, 1.2, input_size="3x8x8")


def test_auxiliary_heads_are_coupled_too():
    from torchvision.models import googlenet

    m = googlenet(aux_logits=True, init_weights=False).eval()   # aux heads only run in train mode
    r = prune_channels(m, "3x64x64", ratio=0.5)
    assert r.notes == []
    a = r.model.inception4a           # aux1 reads inception4a's output: the concat of its 4 branches
    widths = [a.branch1.conv.out_channels, a.branch2[1].conv.out_channels, a.branch3[1].conv.out_channels,
              a.branch4[1].conv.out_channels]
    assert r.model.aux1.conv.conv.in_channels == sum(widths) == 512 // 2
    with torch.no_grad():
        outs = r.model.train()(torch.randn(2, 3, 96, 96))
    assert [tuple(o.shape) for o in outs] == [(2, 1000)] * 3


class LessCommon(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.gn = nn.GroupNorm(2, 8)
        self.act = nn.PReLU(8)
        self.up = nn.ConvTranspose2d(8, 6, 2, stride=2)
        self.ln = nn.LayerNorm(6)                               # over channels, channels-last
        self.up2 = nn.ConvTranspose2d(6, 6, 3, padding=1, groups=6)
        self.c2 = nn.Conv2d(6, 4, 1)

    def forward(self, x):
        y = self.up(self.act(self.gn(self.c1(x))))
        y = self.ln(y.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.c2(self.up2(y))


def test_groupnorm_prelu_transposed_and_layernorm():
    m = prune_channels(LessCommon().eval(), "3x8x8", ratio=0.5).model
    # GroupNorm keeps its 2 groups (2 channels each); the transposed conv's weight is (in, out, k, k)
    assert (m.c1.out_channels, m.gn.num_groups, m.gn.num_channels, m.act.num_parameters) == (4, 2, 4, 4)
    assert tuple(m.up.weight.shape) == (4, 3, 2, 2) and (m.up.in_channels, m.up.out_channels) == (4, 3)
    assert m.ln.normalized_shape == (3,) and (m.up2.groups, m.up2.in_channels, m.c2.in_channels) == (3, 3, 3)
    with torch.no_grad():
        assert tuple(m(torch.randn(2, 3, 8, 8)).shape) == (2, 4, 16, 16)


ZOO = ["resnet18", "resnet50", "vgg16_bn", "alexnet", "densenet121", "googlenet", "inception_v3", "mobilenet_v2",
       "mobilenet_v3_large", "efficientnet_b0", "regnet_y_400mf", "resnext50_32x4d", "shufflenet_v2_x1_0",
       "squeezenet1_1", "mnasnet1_0", "convnext_tiny"]


def _zoo_model(name):
    from cnnscope.loading.artifact import SOURCE_ATTR
    from cnnscope.loading.source import resolve
    from cnnscope.loading.torchvision_models import build

    weights = "DEFAULT" if name == "googlenet" else None     # googlenet as its weights configure it
    src = resolve(name, weights)
    model = build(name, weights).eval()
    object.__setattr__(model, SOURCE_ATTR, src)
    return src, model


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")          # torchvision's inception_v3 init notice
@pytest.mark.parametrize("name", ZOO)
def test_zoo_half_ratio(name, tmp_path):
    from cnnscope.analysis.engine import analyze
    from cnnscope.transforms.common import finish_transform

    torch.manual_seed(0)
    size = 96 if name == "inception_v3" else 64
    src, model = _zoo_model(name)
    before = analyze(model, input_size=size)
    t = time.perf_counter()
    r = prune_channels(model, ratio=0.5, analysis=before)
    assert time.perf_counter() - t < 30
    path = tmp_path / f"{name}.pt"
    after = finish_transform(src, before, r, str(path))       # runs, keeps the output shape, replays
    assert after.totals.macs < 0.5 * before.graph.totals["macs"]
    assert after.totals.params < model_params(model)
    again = cnnscope.load_model(str(path))
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        y = r.model.eval()(x)
        assert torch.equal(again(x), y)
        assert tuple(y.shape) == (2, 1000)
        with FlopCounterMode(display=False) as counter:     # an independent count, on real tensors
            r.model(x[:1])
    assert counter.get_total_flops() == 2 * after.totals.macs


def model_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.slow
def test_resnet50_half_ratio_leaves_at_most_30_percent_macs():
    torch.manual_seed(0)
    m = cnnscope.load_model("resnet50")
    r = prune_channels(m, ratio=0.5)
    s = summary(r.model, input_size=224)
    assert s.totals.macs <= 0.30 * 4_089_184_256      # torchvision's published 4.089 GMACs
    assert r.model.fc.out_features == 1000


def test_bn_criterion_says_when_every_gamma_is_equal():
    """A fresh init sets every BatchNorm γ to 1: ranking by |γ| is then arbitrary, and the notes say so;
    with distinct γ's (as training leaves them) there is no such note."""
    import torch
    from torchvision.models import resnet18

    from cnnscope.transforms.prune import prune_channels

    fresh = resnet18()
    notes = prune_channels(fresh, (3, 64, 64), ratio=0.3, criterion="bn").notes
    assert any("every |γ| is equal" in n for n in notes), notes
    trained = resnet18()
    gen = torch.Generator().manual_seed(0)
    for m in trained.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data = torch.rand(m.weight.shape, generator=gen) + 0.1
    notes = prune_channels(trained, (3, 64, 64), ratio=0.3, criterion="bn").notes
    assert not any("every |γ| is equal" in n for n in notes), notes
