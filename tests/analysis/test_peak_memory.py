"""Peak activation memory from tensor liveness (issue 18), on hand-drawn graphs with the peaks worked
out by hand (float32: 4 bytes an element; the model's input is held by the caller throughout), and
against a second method: the allocations PyTorch's profiler records on a real CPU forward."""
import pytest
import torch
from torch import nn

import cnnscope


def _peak(model, size):
    s = cnnscope.summary(model, input_size=size)
    return s.totals.peak_activation_bytes, s.totals.peak_at, s


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.b(self.a(x)) + x


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(4, 1, 1)

    def forward(self, x):
        return self.c3(torch.cat([self.c1(x), self.c2(x)], 1))


class ReluSum(nn.Module):
    def __init__(self, inplace):
        super().__init__()
        self.conv, self.inplace = nn.Conv2d(1, 4, 3, padding=1), inplace

    def forward(self, x):
        y = self.conv(x)
        y = y.relu_() if self.inplace else y.relu()
        return y.sum()


def test_chain():
    """x 1×1×8×8 = 256 B; conv1 → 4 ch (1,024 B), conv2 → 8 ch (2,048 B), conv3 → 2 ch (512 B).
    While conv2 runs: x + conv1's output + its own = 256 + 1,024 + 2,048 = 3,328 B."""
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 8, 3, padding=1), nn.Conv2d(8, 2, 3, padding=1))
    peak, at, s = _peak(net, (1, 8, 8))
    assert peak == 3328 and at["module"] == "1" and at["op"] == "aten.convolution"
    assert s.layer("2").live_bytes == 256 + 2048 + 512          # conv1's output is gone by then
    assert s.totals.peak_memory_bytes == s.totals.param_bytes + s.totals.buffer_bytes + 3328


def test_residual_keeps_the_identity():
    """x (1,024 B) lives to the add; while b runs: x + a's output + b's = 3 × 1,024; at the add a's
    output is dead: x + b's + the sum = 3 × 1,024 again; the first peak is b."""
    peak, at, _ = _peak(Residual(), (4, 8, 8))
    assert peak == 3 * 1024 and at["module"] == "b"


def test_concat_holds_both_branches_and_the_result():
    """x 256 B; branches 512 B each; the concatenation 1,024 B: 256 + 512 + 512 + 1,024 = 2,304 B."""
    peak, at, _ = _peak(Concat(), (1, 8, 8))
    assert peak == 2304 and at["op"] == "aten.cat"


def test_in_place_allocates_nothing():
    """relu_ writes into the conv's output: x 256 + y 1,024 + the 4-byte sum = 1,284 B. An out-of-place
    relu needs its own 1,024 B while y is alive: 256 + 1,024 + 1,024 = 2,304 B."""
    assert _peak(ReluSum(inplace=True), (1, 8, 8))[0] == 1284
    assert _peak(ReluSum(inplace=False), (1, 8, 8))[0] == 2304


def test_views_share_their_storage():
    """flatten is a view of the conv's output: it adds nothing; the linear's output (40 B) does."""
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(128, 10))
    assert _peak(net, (1, 8, 8))[0] == 256 + 512 + 40


def test_batch_scales_it():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 8, 3, padding=1), nn.Conv2d(8, 2, 3, padding=1))
    assert _peak(net, (4, 1, 8, 8))[0] == 4 * 3328


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
def test_prediction_equals_the_profiled_allocations(name):
    """resnet18 at 112 and mobilenet_v3_small at 96 (small inputs keep it quick): the liveness peak
    equals the profiled peak (without backend workspace) within 1%; benchmarks/bench_memory.py runs
    resnet50, mobilenet_v2 and vit_b_16 at 224."""
    import torchvision

    size = {"resnet18": 112, "mobilenet_v3_small": 96}[name]
    predicted = cnnscope.summary(name, input_size=size).totals.peak_activation_bytes
    from cnnscope.analysis.memory import profiled_peak

    model = getattr(torchvision.models, name)().eval()
    measured = profiled_peak(model, (torch.randn(1, 3, size, size),))["tensors"]
    assert abs(predicted - measured) <= 0.01 * measured, (predicted, measured)
