"""The documents' formulas, checked against numbers worked out by hand."""
from cnnscope.analysis.arithmetic import conv_macs, conv_weight_count, output_size, same_padding


def test_documents_conv_example():
    # 32×32×3 input, 100 filters of 5×5: 5·5·3·100 = 7500 weights; output (32 − 5)/1 + 1 = 28
    assert conv_weight_count(5, 5, 3, 100) == 7500
    assert output_size(32, 5).size == 28
    # without weight sharing every output position would have its own 5·5·3 weights
    assert conv_weight_count(5, 5, 3, 100) * 28 * 28 == 5 * 5 * 3 * 28 * 28 * 100
    assert conv_macs(28 * 28, 5, 5, 3, 100) == 7500 * 784


def test_output_size_floor_and_exactness():
    # AlexNet stem: (224 + 2·2 − 11)/4 + 1 = 55.25 → 55, not exact
    o = output_size(224, 11, 4, 2)
    assert o.size == 55 and not o.exact
    # ResNet stem: (224 + 2·3 − 7)/2 + 1 = 112.5 → 112
    assert output_size(224, 7, 2, 3).size == 112
    assert output_size(56, 3, 1, 1).exact


def test_ceil_mode_pooling():
    # GoogLeNet's maxpool 3/2 ceil on 112: ⌈(112 − 3)/2⌉ + 1 = 56 (floor gives 55)
    assert output_size(112, 3, 2, 0, ceil=True).size == 56
    assert output_size(112, 3, 2, 0, ceil=False).size == 55


def test_same_padding_for_odd_kernels():
    assert [same_padding(k) for k in (3, 5, 7)] == [1, 2, 3]


def test_dilation():
    # effective kernel 2·(3−1)+1 = 5: (10 − 5)/1 + 1 = 6
    assert output_size(10, 3, 1, 0, 2).size == 6


def test_output_size_equals_pytorch_on_every_small_case():
    """A second method: the formula against real pooling, for every h ≤ 9, k ≤ 4, s ≤ 3, p ≤ k/2,
    d ≤ 2, floor and ceil — including windows larger than the input, which ceil mode still
    allows (AvgPool1d(4, ceil_mode=True) on 3 samples gives 1 output)."""
    import torch

    for h in range(1, 10):
        for k in range(1, 5):
            for s in range(1, 4):
                for p in range(0, k // 2 + 1):
                    for d in (1, 2):
                        for ceil in (False, True):
                            try:
                                real = torch.nn.functional.max_pool1d(torch.zeros(1, 1, h), k, s, p, d,
                                                                      ceil_mode=ceil).shape[-1]
                            except RuntimeError:            # PyTorch refuses an empty output
                                real = 0
                            assert max(output_size(h, k, s, p, d, ceil).size, 0) == real, (h, k, s, p, d, ceil)
