"""Params and MACs on small models, against hand arithmetic and a second method."""
import torch
from torch import nn

import cnnscope


def test_lenet5_by_hand():
    s = cnnscope.summary("lenet5")
    # conv 5·5·1·6+6, conv 5·5·6·16+16, fc 400·120+120, 120·84+84, 84·10+10
    assert s.totals.params == 156 + 2416 + 48120 + 10164 + 850
    # MACs: 150·28·28 + 2400·10·10 + 400·120 + 120·84 + 84·10
    assert s.totals.macs == 150 * 784 + 2400 * 100 + 48000 + 10080 + 840
    assert s.totals.flops == 2 * s.totals.macs
    assert s.input_shape == [1, 1, 28, 28]


def test_mnist_cnn_by_hand():
    s = cnnscope.summary("mnist_cnn")
    assert s.totals.params == (25 * 32 + 32) + (25 * 32 * 64 + 64) + (7 * 7 * 64 * 1024 + 1024) + (1024 * 10 + 10)
    assert s.layer("features.3").output_shape == [1, 64, 14, 14]
    assert s.layer("classifier.1").output_shape == [1, 1024]


def test_functional_ops_shared_module_and_batch():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
            self.proj = nn.Linear(8, 8, bias=False)

        def forward(self, x):
            y = self.conv(x)
            y = self.conv(y) + x                       # same module twice + a functional add
            z = torch.cat([y, x], dim=1)               # functional cat
            t = z.flatten(2)                           # N × 8 × 64
            t = torch.matmul(t.transpose(1, 2), t)     # N × 64 × 64, functional matmul
            return self.proj(z.mean((2, 3))), {"attn": t}

    net = Net()
    s = cnnscope.summary(net, input_size="4x8x8", batch_size=2)
    conv_macs = 2 * (3 * 3 * 4 * 4 * 8 * 8) * 2       # batch 2, called twice
    matmul_macs = 2 * 64 * 8 * 64
    linear_macs = 2 * 8 * 8
    assert s.layer("conv").macs == conv_macs
    assert s.layer("conv").params == 3 * 3 * 4 * 4   # counted once
    assert s.totals.macs == conv_macs + matmul_macs + linear_macs
    assert s.totals.params == sum(p.numel() for p in net.parameters())


def test_user_model_is_not_moved_or_mutated():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    ptrs = [p.data_ptr() for p in net.parameters()]
    cnnscope.summary(net, input_size=32)
    assert net.training
    assert [p.data_ptr() for p in net.parameters()] == ptrs
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.device.type == "cpu" for p in net.parameters())


def test_output_shapes_match_a_real_forward():
    import torchvision

    model = torchvision.models.resnet18().eval()
    s = cnnscope.summary("resnet18")
    shapes = {}
    def record(name):
        def hook(module, inputs, output):
            shapes.setdefault(name, list(output.shape))
        return hook

    hooks = [m.register_forward_hook(record(n)) for n, m in model.named_modules() if n]
    with torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    for row in s.layers:
        assert row.output_shape == shapes[row.name], row.name


def test_macs_match_torch_flop_counter():
    # a second method: torch's FlopCounterMode counts FLOPs = 2 × MACs on conv/mm
    import torchvision
    from torch.utils.flop_counter import FlopCounterMode

    model = torchvision.models.mobilenet_v2().eval()
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    assert cnnscope.summary("mobilenet_v2").totals.flops == fc.get_total_flops()


def test_json_schema():
    d = cnnscope.summary("lenet5").to_dict()
    assert d["schema"] == "cnnscope.summary/1"
    assert set(d["totals"]) >= {"params", "trainable_params", "param_bytes", "buffer_bytes", "macs", "flops",
                                "activation_bytes"}
    assert set(d["layers"][0]) >= {"name", "type", "depth", "output_shape", "params", "macs"}
    assert d["totals"]["param_bytes"] == 4 * d["totals"]["params"]


def test_non_trainable_params_are_counted():
    """Frozen parameters (requires_grad=False) are reported apart: by hand, conv1 of lenet5 holds
    1·6·5·5 + 6 = 156 parameters."""
    import cnnscope
    from cnnscope.loading.builtin_models import lenet5

    net = lenet5()
    for p in net[0].parameters():
        p.requires_grad_(False)
    s = cnnscope.summary(net, input_size=(1, 28, 28))
    t = s.totals
    assert (t.params, t.trainable_params, t.non_trainable_params) == (61_706, 61_706 - 156, 156)
    assert "non-trainable 156" in str(s)
