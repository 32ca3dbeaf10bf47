"""Nothing counts zero MACs by accident (issue 14): an op with no formula is either registered as zero
on purpose or reported as uncounted, in the summary, its table and `check --fail-on-uncounted`."""
import json

import pytest
import torch
from torch import nn

from tests.conftest import run_inprocess

FFT = '''
import torch
from torch import nn

class Spectral(nn.Module):
    def forward(self, x):
        return torch.fft.fft2(x).abs()

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.spectral = Spectral()

    def forward(self, x):
        return self.spectral(self.conv(x))

def build():
    return Net()
'''


@pytest.fixture
def fft_dir(tmp_path):
    (tmp_path / "fftnet.py").write_text(FFT)
    return tmp_path


def test_an_op_without_formula_is_reported(fft_dir):
    code, out, err = run_inprocess("summary", "fftnet.py:build", "-i", "3x16x16", "-f", "json", cwd=fft_dir)
    assert code == 0, err
    d = json.loads(out)
    [u] = d["uncounted_ops"]
    assert u["op"].startswith("aten._fft") and u["count"] == 1 and u["modules"] == ["spectral"]
    # the conv is still counted, by hand: 4 filters · 3·3·3 weights · 14·14 positions
    assert d["totals"]["macs"] == 4 * 27 * 14 * 14
    code, out, err = run_inprocess("summary", "fftnet.py:build", "-i", "3x16x16", cwd=fft_dir)
    line = next(l for l in out.splitlines() if l.startswith("Uncounted:"))
    assert "(in spectral)" in line and u["op"] in line


def test_check_can_fail_on_uncounted(fft_dir):
    code, out, err = run_inprocess("check", "fftnet.py:build", "-i", "3x16x16", "--fail-on-uncounted", cwd=fft_dir)
    assert code == 1 and "uncounted-ops" in err
    code, out, err = run_inprocess("check", "lenet5", "--fail-on-uncounted")
    assert code == 0, err


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "efficientnet_b0", "inception_v3",
                                  "shufflenet_v2_x0_5", "densenet121", "vit_b_16", "convnext_tiny", "swin_t"])
def test_every_op_of_the_torchvision_families_is_registered(name):
    """One model per family: every op that ran has a formula or is zero on purpose."""
    import cnnscope

    size = (3, 299, 299) if name == "inception_v3" else (3, 224, 224)
    assert cnnscope.summary(name, input_size=size).uncounted_ops == []


def test_addmv_and_addbmm_have_formulas():
    """By hand: addmv (m × k)·(k) = m·k; addbmm Σ_b (m × k)·(k × n) = b·m·k·n."""
    import cnnscope

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = nn.Parameter(torch.zeros(5, 12))
            self.a = nn.Parameter(torch.zeros(3, 4, 6))
            self.b = nn.Parameter(torch.zeros(3, 6, 7))

        def forward(self, x):                              # x: 1×3×2×2, 12 values
            v = torch.addmv(x.new_zeros(5), self.m, x.reshape(12))
            return v.sum() + torch.addbmm(x.new_zeros(4, 7), self.a, self.b).sum()

    s = cnnscope.summary(Net(), input_size=(3, 2, 2))
    assert s.uncounted_ops == []
    assert s.totals.macs == 5 * 12 + 3 * 4 * 6 * 7


def test_onnx_node_without_formula_is_reported(tmp_path):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "conv.weight")
    nodes = [helper.make_node("Conv", ["x", "conv.weight"], ["c"], name="/conv/Conv", kernel_shape=[3, 3]),
             helper.make_node("Mul", ["c", "c"], ["m"], name="/Mul"),
             helper.make_node("Det", ["m"], ["y"], name="/head/Det")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    path = tmp_path / "det.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    code, out, err = run_inprocess("summary", path, "-f", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["uncounted_ops"] == [{"op": "Det", "count": 1, "modules": ["head"]}]    # Mul is zero on purpose
    assert d["totals"]["macs"] == 4 * 27 * 6 * 6                                      # the conv, by hand
