"""Input-size sweep (issue 18): rows by hand, growth exponents of known laws, CLI == library."""
import json

import pytest
import torch
from torch import nn

import cnnscope
from cnnscope.analysis.sweep import growth_exponent
from tests.conftest import run_inprocess


class PairAll(nn.Module):
    """x (N, C, H, W) → the (H·W)×(H·W) products of every position with every other: P²·C MACs."""

    def forward(self, x):
        t = x.flatten(2)
        return t.transpose(1, 2) @ t


def test_conv_macs_follow_the_pixels():
    """A 3×3 conv 1 → 4 (no padding): 36·(H−2)² MACs; at 10, 18, 34: 2,304, 9,216, 36,864."""
    s = cnnscope.sweep(nn.Conv2d(1, 4, 3, bias=False), [(1, 10, 10), (1, 18, 18), (1, 34, 34)])
    assert [r.macs for r in s.rows] == [36 * 64, 36 * 256, 36 * 1024]
    assert [r.input_shape for r in s.rows] == [[1, 1, 10, 10], [1, 1, 18, 18], [1, 1, 34, 34]]
    assert [r.rf_coverage for r in s.rows] == [3 / 10, 3 / 18, 3 / 34]
    # (H−2)² grows faster than H² (the border loss shrinks): above 1, the fit of the hand values
    assert s.macs_exponent == pytest.approx(growth_exponent([100, 324, 1156], [2304, 9216, 36864]))
    assert s.macs_exponent > 1


def test_all_pairs_grow_with_the_square_of_the_pixels():
    s = cnnscope.sweep(PairAll(), [(2, 4, 4), (2, 8, 8), (2, 16, 16)])
    assert [r.macs for r in s.rows] == [2 * 16 ** 2, 2 * 64 ** 2, 2 * 256 ** 2]
    assert s.macs_exponent == pytest.approx(2.0)


def test_growth_exponent_by_hand():
    assert growth_exponent([1, 10, 100], [3, 30, 300]) == pytest.approx(1.0)
    assert growth_exponent([1, 4], [1, 2]) == pytest.approx(0.5)
    assert growth_exponent([5], [7]) is None and growth_exponent([5, 5], [1, 2]) is None


def test_cli_sweep_equals_the_library():
    out = run_inprocess("summary", "resnet18", "-i", "64,96", "-f", "json")
    assert out[0] == 0, out[2]
    lib = cnnscope.sweep("resnet18", ["64", "96"]).to_dict()
    assert json.loads(out[1]) == json.loads(json.dumps(lib))
    code, text, err = run_inprocess("summary", "resnet18", "-i", "64,96")
    assert code == 0 and "Growth: MACs ∝ pixels^" in text and "1×3×96×96" in text


@pytest.mark.parametrize("args, words", [
    (["-i", "3,224,224"], "one size is written 3x224x224"),
    (["-i", "224,,320"], "empty size"),
    (["-i", "224,320", "--depth", "1"], "--depth applies to one input size"),
    (["-i", "224,320", "-c", "all"], "--columns applies to one input size"),
])
def test_cli_sweep_bad_input(args, words):
    from tests.conftest import assert_one_line_error

    code, out, err = run_inprocess("summary", "resnet18", *args)
    assert_one_line_error(code, out, err, contains=words)


def test_a_single_size_refuses_commas():
    with pytest.raises(cnnscope.CnnscopeError, match="comma"):
        cnnscope.summary("resnet18", input_size="3,224,224")
