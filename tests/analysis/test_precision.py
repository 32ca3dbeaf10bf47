"""Precision what-if (issue 18): bytes as they would be in float16/bfloat16/int8, by hand.

The model: conv 3→8 (3×3, bias), BatchNorm(8), ReLU, flatten, linear 288→10, on a 3×8×8 input.
Params: conv 216 + 8, BN γ/β 16, linear 2,880 + 10 = 3,130 elements; buffers: BN mean/var 16 floats
and one int64 ``num_batches_tracked``. Activations written: conv, BN and ReLU outputs 288 elements
each, the linear's 10: 874 elements. Peak, while BN runs: input 192 + its input 288 + its output 288
+ the per-channel mean and inverse std it also returns (2·8, alive during the op; a real CPU batch
norm allocates them too) = 784 elements.
"""
import pytest
from torch import nn

import cnnscope


def _net():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(288, 10))


@pytest.mark.parametrize("dtype, size", [(None, 4), ("float32", 4), ("float16", 2), ("bfloat16", 2)])
def test_floating_dtypes_scale_every_float_tensor(dtype, size):
    t = cnnscope.summary(_net(), input_size=(3, 8, 8), dtype=dtype).totals
    assert t.param_bytes == 3130 * size
    assert t.buffer_bytes == 16 * size + 8              # num_batches_tracked stays int64
    assert t.activation_bytes == 874 * size
    assert t.peak_activation_bytes == 784 * size
    assert t.input_bytes == 192 * size
    assert (t.params, t.macs) == (3130, 288 * 27 + 2880)  # counts do not depend on the dtype


def test_int8_weights_carry_their_per_channel_scales():
    """conv weight 216 + 5·8 (a float32 scale and an int8 zero point per output channel), its bias
    int32 8·4; BN γ/β stay float32 16·4; linear weight 2,880 + 5·10, bias 10·4: 3,322 B."""
    t = cnnscope.summary(_net(), input_size=(3, 8, 8), dtype="int8").totals
    assert t.param_bytes == (216 + 40) + 32 + 64 + (2880 + 50) + 40 == 3322
    assert t.buffer_bytes == 16 * 4 + 8
    assert (t.activation_bytes, t.peak_activation_bytes) == (874, 784)


def test_int8_finds_matmul_weights_through_views():
    """nn.MultiheadAttention's in_proj_weight is no Linear module, but the graph reads it as the
    weight of a matrix product: it is quantized (3·16 output channels), its bias int32."""
    mha = nn.MultiheadAttention(16, 2, batch_first=True)

    class Attend(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):                          # 16 channels × 2×2 → 4 tokens of 16
            x = x.flatten(2).transpose(1, 2)
            return self.mha(x, x, x, need_weights=False)[0]

    t = cnnscope.summary(Attend(), input_size=(16, 2, 2), dtype="int8").totals
    in_w, out_w = 48 * 16 + 5 * 48, 16 * 16 + 5 * 16
    assert t.param_bytes == in_w + 48 * 4 + out_w + 16 * 4


def test_cli_and_onnx(cli, tmp_path):
    code, out, err = cli("summary", "lenet5", "--dtype", "float16", "-d", "0")
    assert code == 0 and "bytes as float16" in out, err
    code, out, err = cli("summary", "lenet5", "--dtype", "int4")
    assert code == 2 and "int4" in err
    onnx = tmp_path / "l.onnx"
    cnnscope.export_onnx("lenet5", str(onnx), verify=False)
    with pytest.raises(cnnscope.CnnscopeError, match="own dtypes"):
        cnnscope.summary(str(onnx), dtype="int8")
