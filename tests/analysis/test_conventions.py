"""Every peer's convention from the one graph (issue 18): the op-class breakdown by hand, and each
installed peer's own number reproduced within 0.1% on resnet50, mobilenet_v2 and vit_b_16 (the peers
are the `bench` extra; .ci/run installs them, a developer without them skips those tests)."""
import contextlib
import importlib.util
import io
import warnings

import pytest
import torch
from torch import nn

import cnnscope
from cnnscope.analysis.conventions import convention_counts
from cnnscope.analysis.engine import analyze


def _net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 10))


def test_breakdown_and_rules_by_hand():
    """3×8×8 input. conv 27·8·64 = 13,824 MACs (+ 512 bias additions), BN on 512 elements (affine),
    adaptive pooling reads 512, linear 80 MACs (+ 10 bias additions).
    fvcore: 13,824 + 80 + 2·512 (BN) + 512 (pool) = 15,440. thop: conv 512·27 (no bias), linear 8·10, BN
    module 4·512, pool module (64 + 1)·8 = 16,472. torchinfo: conv (216 + 8)·64, BN 16·1, linear 90·1
    = 14,442. ptflops (aten): 13,904 + 522 = 14,426. FlopCounterMode: 2 · 13,904."""
    c = convention_counts(analyze(_net(), input_size=(3, 8, 8)))
    b, v = c["breakdown"], {k: x["value"] for k, x in c["conventions"].items()}
    assert (b["conv_macs"], b["matmul_macs"], b["bias_elements"], b["batch_norm_affine_elements"],
            b["adaptive_pool_input_elements"]) == (13_824, 80, 522, 512, 512)
    assert v == {"torchvision": 13_904, "2xmac": 27_808, "flopcountermode": 27_808, "fvcore": 15_440,
                 "thop": 16_472, "ptflops-aten": 14_426, "torchinfo": 14_442}


def test_thop_module_rules_by_hand():
    """4×8×8 input. AvgPool2d(2) → 64 outputs: 64; nearest ×2 upsampling → 1,024 outputs: 1,024;
    bilinear: 11 · 1,024; GroupNorm: no rule, 0; LayerNorm(8) with affine: 4 · 256 (thop's own values
    for these modules, measured with thop 0.1.1)."""
    cases = [(nn.AvgPool2d(2), 64), (nn.Upsample(scale_factor=2), 1024),
             (nn.Upsample(scale_factor=2, mode="bilinear"), 11 * 1024), (nn.GroupNorm(2, 4), 0),
             (nn.LayerNorm(8), 4 * 256)]
    for module, expected in cases:
        c = convention_counts(analyze(nn.Sequential(module), input_size=(4, 8, 8)))
        assert c["conventions"]["thop"]["value"] == expected, module


def test_attention_written_out_is_found():
    """A softmax between two products is attention: FlopCounterMode does not count CPU attention, the
    others here count what their rules say (torchvision and cnnscope count it)."""
    class Attend(nn.Module):
        def forward(self, x):                     # 4 channels × 2×2 → 4 tokens of 4
            t = x.flatten(2).transpose(1, 2)
            return torch.softmax(t @ t.transpose(1, 2), -1) @ t

    c = convention_counts(analyze(Attend(), input_size=(4, 2, 2)))
    assert c["breakdown"]["attention_macs"] == 2 * 4 * 4 * 4
    assert c["conventions"]["flopcountermode"]["value"] == 0


def test_flop_counter_mode_on_a_real_forward():
    """The one peer every install has: FlopCounterMode on a real vit_b_16 forward (attention not counted
    on CPU) and mobilenet_v2's. With grad enabled, as users call it: under no_grad, nn.MultiheadAttention
    takes its fused fast path, which FlopCounterMode does not count at all (22.5 G instead of 33.7 G)."""
    import torchvision
    from torch.utils.flop_counter import FlopCounterMode

    for name in ("mobilenet_v2", "vit_b_16"):
        ours = convention_counts(analyze(name))["conventions"]["flopcountermode"]["value"]
        with FlopCounterMode(display=False) as counter:
            getattr(torchvision.models, name)().eval()(torch.randn(1, 3, 224, 224))
        assert ours == counter.get_total_flops(), name


def _peer_count(peer: str, name: str) -> float:
    import torchvision

    model = getattr(torchvision.models, name)().eval()
    x = torch.randn(1, 3, 224, 224)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        if peer == "fvcore":
            from fvcore.nn import FlopCountAnalysis

            f = FlopCountAnalysis(model, x)
            f.unsupported_ops_warnings(False)
            f.uncalled_modules_warnings(False)
            return f.total()
        if peer == "thop":
            import thop

            return thop.profile(model, inputs=(x,), verbose=False)[0]
        if peer == "ptflops-aten":
            from ptflops import get_model_complexity_info

            return get_model_complexity_info(model, (3, 224, 224), as_strings=False, print_per_layer_stat=False,
                                             verbose=False, backend="aten")[0]
        if peer == "torchinfo":
            import torchinfo

            return torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0).total_mult_adds
    raise AssertionError(peer)


_MODULES = {"fvcore": "fvcore", "thop": "thop", "ptflops-aten": "ptflops", "torchinfo": "torchinfo"}


@pytest.mark.slow
@pytest.mark.parametrize("peer", list(_MODULES))
@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v2", "vit_b_16"])
def test_reproduces_the_installed_peer(peer, name):
    if importlib.util.find_spec(_MODULES[peer]) is None:
        pytest.skip(f"{_MODULES[peer]} is not installed (pip install -e '.[bench]')")
    ours = cnnscope.summary(name, conventions=True).conventions["conventions"][peer]["value"]
    theirs = _peer_count(peer, name)
    assert abs(ours - theirs) <= 0.001 * theirs, (ours, theirs)
