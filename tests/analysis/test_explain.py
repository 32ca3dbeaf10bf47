"""`cnnscope explain`: every number of the walk-through against hand arithmetic."""
import json

from torch import nn

import cnnscope
from cnnscope.analysis.explain import explain
from tests.conftest import assert_one_line_error


def test_resnet50_conv_walkthrough_by_hand():
    d = explain(cnnscope.analyze("resnet50"), "layer1.0.conv2")
    assert d["kind"] == "conv" and d["type"] == "Conv2d"
    assert d["layer_input_shapes"] == [[1, 64, 56, 56]] and d["layer_output_shapes"] == [[1, 64, 56, 56]]
    # ⌊(56 + 2·1 − 3)/1⌋ + 1 = 56, exact
    h = d["output_size"]["axes"][0]
    assert (h["numerator"], h["out"], h["exact"]) == (55, 56, True) and not d["warnings"]
    # 3·3·(64/1)·64 = 36,864 weights, no bias
    p = d["params"]
    assert (p["weights"], p["bias"], p["total"]) == (36_864, 0, 36_864)
    assert p["expr"] == "3·3·(64/1)·64 + 0 = 36,864"
    assert p["without_weight_sharing"]["weights"] == 36_864 * 56 * 56
    # MACs = 36,864 × 56 × 56
    assert d["macs"]["total"] == d["macs"]["computed"] == 115_605_504 and d["macs"]["matches_registry"]
    assert d["macs"]["flops"] == 2 * 115_605_504
    # RF: stem 7/2/3 → r 7, j 2, P 3; maxpool 3/2/1 → 7 + 2·2 = 11, j 4, P 3 + 1·2 = 5; 1×1 conv keeps it;
    # this 3×3: r = 11 + (3 − 1)·1·4 = 19, j = 4·1 = 4, P = 5 + 1·4 = 9
    rf = d["receptive_field"]
    assert rf["input"] == {"size": [11, 11], "stride": [4, 4], "padding": [5, 5]}
    step = rf["steps"][0]["axes"][0]
    assert (step["r_in"], step["j_in"], step["r_out"], step["j_out"], step["P_out"]) == (11, 4, 19, 4, 9)
    assert step["r_expr"] == "11 + (3 − 1)·1·4 = 19"
    assert rf["output"] == {"size": [19, 19], "stride": [4, 4], "padding": [9, 9]}


def test_vgg16_first_conv_by_hand():
    d = explain(cnnscope.analyze("vgg16"), "features.0")
    # 3·3·3·64 = 1,728 weights + 64 biases = 1,792
    assert (d["params"]["weights"], d["params"]["bias"], d["params"]["total"]) == (1_728, 64, 1_792)
    # without weight sharing: (5·5·3)·(28·28)·100 in the documents; here (3·3·3)·(224·224)·64
    nws = d["params"]["without_weight_sharing"]
    assert nws["weights"] == 3 * 3 * 3 * 224 * 224 * 64 == 86_704_128 and nws["biases"] == 64 * 224 * 224
    assert d["macs"]["total"] == 1_728 * 224 * 224 == 86_704_128
    assert d["output_size"]["axes"][0]["out"] == 224 and d["output_size"]["axes"][0]["exact"]
    rf = d["receptive_field"]
    assert rf["input_from"] == "the input image"
    assert rf["output"] == {"size": [3, 3], "stride": [1, 1], "padding": [1, 1]}


def test_inexact_division_warns_and_counts_dropped_pixels():
    # ResNet stem: (224 + 2·3 − 7)/2 = 223/2, remainder 1 — the dropped row is padding
    d = explain(cnnscope.analyze("resnet50"), "conv1")
    h = d["output_size"]["axes"][0]
    assert (h["out"], h["exact"], h["remainder"], h["dropped_pixels"]) == (112, False, 1, 0)
    assert any("only padding" in w for w in d["warnings"])
    # no padding: (9 − 3)/2 = 3 exact; (8 − 3)/2 = 2.5 → the last image row is dropped
    net = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2))
    d = explain(cnnscope.analyze(net, input_size="1x8x8"), "0")
    h = d["output_size"]["axes"][0]
    assert (h["out"], h["remainder"], h["dropped_pixels"]) == (3, 1, 1)
    assert any("1 of them image pixel(s), silently dropped" in w for w in d["warnings"])
    assert explain(cnnscope.analyze(net, input_size="1x9x9"), "0")["warnings"] == []


def test_linear_layer():
    d = explain(cnnscope.analyze("resnet50"), "fc")
    assert d["kind"] == "linear"
    assert (d["params"]["computed"], d["params"]["total"]) == (2048 * 1000 + 1000,) * 2
    assert d["macs"]["total"] == d["macs"]["computed"] == 2048 * 1000
    assert d["receptive_field"]["output"] == "global"
    # AlexNet's first FC reads the flattened 6×6 map (r 195) and mixes its positions: global
    d = explain(cnnscope.analyze("alexnet"), "classifier.1")
    assert d["receptive_field"]["input"]["size"] == [195, 195] and d["receptive_field"]["output"] == "global"
    assert d["macs"]["total"] == 256 * 6 * 6 * 4096


def test_block_names_the_path_that_determines_the_rf():
    d = explain(cnnscope.analyze("resnet50"), "layer1.0")
    assert d["kind"] == "block" and d["params"]["total"] == 75_008
    rf = d["receptive_field"]
    merge, = rf["merges"]
    by_source = {i["from"]: i for i in merge["inputs"]}
    # main path 1×1 → 3×3 → 1×1: 11 + 2·4 = 19; the 1×1 downsample shortcut keeps 11
    assert by_source["layer1.0.bn3"]["receptive_field"]["size"] == [19, 19] and by_source["layer1.0.bn3"]["determines"]
    assert by_source["layer1.0.downsample.1"]["receptive_field"]["size"] == [11, 11]
    assert not by_source["layer1.0.downsample.1"]["determines"]
    assert [s["module"] for s in rf["steps"]] == ["layer1.0.conv1", "layer1.0.conv2", "layer1.0.conv3"]
    assert "layer1.0.conv2" in rf["path"] and "layer1.0.downsample.0" not in rf["path"]
    assert rf["output"] == {"size": [19, 19], "stride": [4, 4], "padding": [9, 9]}


def test_cli_text_and_json(cli):
    code, out, err = cli("explain", "resnet50", "layer1.0.conv2")
    assert code == 0, err
    for text in ("⌊(56 + 2·1 − 3)/1⌋ + 1 = ⌊55/1⌋ + 1 = 56", "3·3·(64/1)·64 + 0 = 36,864",
                 "36,864 × 56 × 56 = 115,605,504 MACs", "r = 11 + (3 − 1)·1·4 = 19", "j = 4·1 = 4",
                 "without weight sharing", "[4·i − 9, 4·i + 9]"):
        assert text in out, (text, out)
    code, out, err = cli("explain", "vgg16", "features.0", "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["schema"] == "cnnscope.explain/1" and d["params"]["total"] == 1792
    code, out, err = cli("explain", "resnet50", "layer1.0")
    assert code == 0 and "← determines the RF" in out and "from layer1.0.downsample.1: r = 11" in out


def test_cli_unknown_layer_suggests_closest(cli):
    line = assert_one_line_error(*cli("explain", "resnet50", "layer1.0.conv"))
    assert "unknown layer 'layer1.0.conv'" in line and "layer1.0.conv1" in line
