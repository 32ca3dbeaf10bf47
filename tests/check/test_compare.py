"""`cnnscope compare A B`: the per-layer diff, its ratios and its three formats.

Two small models that differ the way a factorize + channel-reduction rewrite would (input 3×32×32):

  before: 0 conv5×5 3→16 pad 2 │ 1 ReLU │ 2 maxpool2 │ 3 conv3×3 16→32 pad 1 │ 4 GAP │ 5 flatten
          │ 6 fc 32→10
  after:  0 Sequential(0.0 conv3×3 3→16, 0.1 conv3×3 16→16, both pad 1) │ … │ 3 conv3×3 16→16 │ …
          │ 6 fc 16→10

By hand (params = K·K·Cin·Cout + Cout; MACs = K·K·Cin·Cout · OH·OW):
  before 0   5·5·3·16 + 16 = 1,216        MACs 1,200 · 32·32 = 1,228,800
  after 0.0  3·3·3·16 + 16 = 448          MACs   432 · 32·32 =   442,368
  after 0.1  3·3·16·16 + 16 = 2,320       MACs 2,304 · 32·32 = 2,359,296
             → layer 0 after: 2,768 params, 2,801,664 MACs
  before 3   3·3·16·32 + 32 = 4,640       MACs 4,608 · 16·16 = 1,179,648
  after 3    3·3·16·16 + 16 = 2,320       MACs 2,304 · 16·16 =   589,824   → ratio exactly 1/2
  fc         32·10 + 10 = 330 (MACs 320)  vs 16·10 + 10 = 170 (MACs 160)
  totals     params 6,186 vs 5,258;  MACs 2,408,768 vs 3,391,648
  RF         before: conv5 → 5, pool2 → 6 (jump 2), conv3 → 6 + 2·2 = 10
             after:  conv3 → 3, conv3 → 5 (the same 5×5 field), pool2 → 6, conv3 → 10
"""
import json

import pytest

from cnnscope.analysis.diff import diff_summaries
from cnnscope.report.compare import render_diff_table
from cnnscope.cli import main
from tests.conftest import assert_one_line_error

TWO_PY = """
from torch import nn

def before():
    return nn.Sequential(nn.Conv2d(3, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))

def after():
    return nn.Sequential(nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1)),
                         nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 16, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
"""

A_PARAMS = (5 * 5 * 3 * 16 + 16) + (3 * 3 * 16 * 32 + 32) + (32 * 10 + 10)
B_PARAMS = (3 * 3 * 3 * 16 + 16) + (3 * 3 * 16 * 16 + 16) + (3 * 3 * 16 * 16 + 16) + (16 * 10 + 10)
A_MACS = 5 * 5 * 3 * 16 * 32 * 32 + 3 * 3 * 16 * 32 * 16 * 16 + 32 * 10
B_MACS = 3 * 3 * 3 * 16 * 32 * 32 + 3 * 3 * 16 * 16 * 32 * 32 + 3 * 3 * 16 * 16 * 16 * 16 + 16 * 10


@pytest.fixture
def two(tmp_path):
    (tmp_path / "two.py").write_text(TWO_PY)
    return tmp_path / "two.py"


@pytest.fixture
def compare_here(capsys):
    def run(*args):
        capsys.readouterr()
        code = main(["compare", *map(str, args)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_hand_numbers():
    assert (A_PARAMS, B_PARAMS, A_MACS, B_MACS) == (6_186, 5_258, 2_408_768, 3_391_648)


def test_json_diff_matches_the_hand_arithmetic(compare_here, two):
    code, out, err = compare_here(f"{two}:before", f"{two}:after", "-i", "32", "-f", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["schema"] == "cnnscope.compare/1" and d["input_shapes"] == {"a": [1, 3, 32, 32], "b": [1, 3, 32, 32]}
    t = d["totals"]
    assert (t["params"]["a"], t["params"]["b"], t["macs"]["a"], t["macs"]["b"]) == (A_PARAMS, B_PARAMS, A_MACS, B_MACS)
    assert t["params"]["ratio"] == pytest.approx(5_258 / 6_186) and t["flops"]["b"] == 2 * B_MACS
    assert d["only_in_a"] == [] and d["only_in_b"] == ["0.0", "0.1"]
    layers = {lay["name"]: lay for lay in d["layers"]}
    assert [lay["name"] for lay in d["layers"]] == ["0", "0.0", "0.1", "1", "2", "3", "4", "5", "6"]  # B's new
    zero = layers["0"]                                                                   # children under "0"
    assert (zero["a"]["type"], zero["b"]["type"]) == ("Conv2d", "Sequential")
    assert (zero["a"]["params"], zero["b"]["params"]) == (1_216, 448 + 2_320)
    assert (zero["a"]["macs"], zero["b"]["macs"]) == (1_228_800, 442_368 + 2_359_296)
    assert layers["0.1"]["only_in"] == "b" and layers["0.1"]["a"] is None and layers["0.1"]["b"]["params"] == 2_320
    three = layers["3"]
    assert three["ratio"] == {"params": 2_320 / 4_640, "macs": 0.5}
    assert (three["a"]["output_shape"], three["b"]["output_shape"]) == ([1, 32, 16, 16], [1, 16, 16, 16])
    assert not layers["1"]["changed"] and layers["6"]["changed"]
    if three["a"]["receptive_field"] is not None:                         # RF analysis present
        assert three["a"]["receptive_field"]["size"] == [10, 10] == three["b"]["receptive_field"]["size"]
        assert layers["0.1"]["b"]["receptive_field"]["size"] == [5, 5] == zero["a"]["receptive_field"]["size"]


def test_table_and_markdown(compare_here, two, tmp_path):
    code, out, err = compare_here(f"{two}:before", f"{two}:after", "-i", "32")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].endswith(":before  (input 1×3×32×32)")
    params_total = next(line for line in lines if line.startswith("params "))
    assert params_total.split()[1:] == ["6,186", "5,258", "85.0%"]                     # 5,258 / 6,186 = 0.8500
    row3 = next(line for line in lines if line.startswith("3 "))
    assert row3.split()[:8] == ["3", "Conv2d", "4.64K", "2.32K", "50.0%", "1.18M", "590K", "50.0%"]
    assert "0.0 (only B)" in out and "Only in B (2): 0.0, 0.1" in out and "9 layers, 7 changed." in out

    md = tmp_path / "comment.md"
    code, out, err = compare_here(f"{two}:before", f"{two}:after", "-i", "32", "-f", "markdown", "--changed-only",
                                  "-o", md)
    assert code == 0 and out == "", err
    text = md.read_text()
    assert text.startswith("### cnnscope compare:") and "**params 85.0%, MACs 140.8%** of A" in text
    assert "| params                     |     6,186 |     5,258 |  85.0% |" in text
    assert "<details><summary>Per-layer diff: 7 layers shown, 7 changed</summary>" in text
    table = [line for line in text.splitlines() if line.startswith("| `")]
    assert [line.split("|")[1].strip() for line in table] == [
        "`0`", "`0.0` (only B)", "`0.1` (only B)", "`3`", "`4`", "`5`", "`6`"]            # unchanged 1, 2 left out
    assert "| `3`" in text and "| 1,179,648 | 589,824" in text.replace("  ", " ").replace("  ", " ")
    assert "Only in B (2): `0.0`, `0.1`" in text


def test_artifact_against_code_and_depth(compare_here, two, tmp_path):
    from cnnscope import load_model, save_model

    art = tmp_path / "before.pt"
    save_model(load_model(f"{two}:before"), art)
    code, out, err = compare_here(art, f"{two}:after", "-i", "32", "--depth", "1", "-f", "json", "--trust-code")
    assert code == 0, err
    d = json.loads(out)
    assert [lay["name"] for lay in d["layers"]] == ["0", "1", "2", "3", "4", "5", "6"]   # 0.0/0.1 folded into 0
    assert d["only_in_b"] == ["0.0", "0.1"] and d["totals"]["params"]["a"] == A_PARAMS


def test_identical_models_have_no_changes(compare_here):
    code, out, err = compare_here("lenet5", "lenet5", "-f", "json")
    d = json.loads(out)
    assert code == 0 and not any(lay["changed"] for lay in d["layers"]) and d["totals"]["macs"]["ratio"] == 1.0
    assert d["totals"]["params"]["a"] == 61_706


def test_render_diff_table_still_works_on_the_extended_diff():
    a = {"model": "a", "input_shape": [1, 3, 8, 8], "layers": [
        {"name": "c", "type": "Conv2d", "depth": 1, "output_shape": [1, 4, 8, 8], "params": 112, "macs": 6912}],
         "totals": {"params": 112, "macs": 6912, "flops": 13824, "param_bytes": 448, "activation_bytes": 1}}
    b = json.loads(json.dumps(a))
    b["layers"][0].update(params=56, macs=3456)
    b["totals"].update(params=56, macs=3456, flops=6912)
    d = diff_summaries(a, b)
    assert d["layers"][0]["ratio"] == {"params": 0.5, "macs": 0.5} and d["only_in_a"] == d["only_in_b"] == []
    assert "50.0%" in render_diff_table(d)


def test_missing_model_is_one_line(cli, tmp_path):
    assert_one_line_error(*cli("compare", "lenet5", tmp_path / "nope.pt"), contains="does not exist")


@pytest.mark.slow
def test_onnx_side(compare_here, tmp_path):
    import cnnscope.export.onnx_summary  # noqa: F401  (part of the package: never skipped)
    import torch

    from cnnscope import load_model

    path = tmp_path / "lenet5.onnx"
    torch.onnx.export(load_model("lenet5"), (torch.zeros(1, 1, 28, 28),), str(path), dynamo=False)
    code, out, err = compare_here("lenet5", path, "-f", "json")
    assert code == 0, err
    t = json.loads(out)["totals"]
    assert t["params"]["a"] == t["params"]["b"] == 61_706 and t["macs"]["a"] == t["macs"]["b"] == 416_520
