"""`cnnscope profile`: measured per-layer latency. Times are asserted only through invariants a wrong
implementation cannot meet (rows partition the forward, a 4× layer is slower); counts by hand."""
import csv
import io
import json

import pytest
import torch
from torch import nn

import cnnscope

from cnnscope.timing.machine import peak
from tests.conftest import assert_one_line_error



class TwoConvs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_a = nn.Conv2d(16, 16, 3, padding=1)
        self.act = nn.ReLU()
        self.conv_b = nn.Conv2d(16, 64, 3, padding=1)

    def forward(self, x):
        return self.conv_b(self.act(self.conv_a(x)))


H = W = 48
MACS_A = 16 * 16 * 9 * H * W            # Cout × Cin × k² × output positions = 5,308,416
MACS_B = 64 * 16 * 9 * H * W            # 21,233,664
ACT = 16 * H * W * 4                    # one 16-channel float32 feature map, bytes


@pytest.fixture(scope="module")
def both():
    return cnnscope.profile(TwoConvs(), "16x48x48", runtime="both", runs=15, warmup=3).to_dict()


def rows(d, runtime):
    return {r["name"]: r for r in next(rt for rt in d["runtimes"] if rt["runtime"] == runtime)["layers"]}


def test_macs_and_bytes_per_row_by_hand(both):
    t = rows(both, "torch")
    assert t["conv_a"]["macs"] == MACS_A and t["conv_b"]["macs"] == MACS_B and t["act"]["macs"] == 0
    # conv_a reads its input and weights+bias, writes its output; ReLU reads and writes one map
    assert t["conv_a"]["bytes"] == ACT + (16 * 16 * 9 + 16) * 4 + ACT
    assert t["act"]["bytes"] == 2 * ACT
    assert t["conv_b"]["flops"] == 2 * MACS_B
    o = rows(both, "ort")
    # onnxruntime fuses the ReLU into conv_a: one kernel, both modules, conv_a's MACs, no ReLU map written
    assert o["conv_a"]["modules"] == ["conv_a", "act"] and o["conv_a"]["fused"]
    assert o["conv_a"]["macs"] == MACS_A and o["conv_b"]["macs"] == MACS_B
    assert o["conv_a"]["bytes"] == ACT + (16 * 16 * 9 + 16) * 4 + ACT
    assert sum(r["macs"] for r in o.values()) == MACS_A + MACS_B


def test_rows_add_up_to_the_unprofiled_forward(both):
    for rt in both["runtimes"]:
        total, spread = rt["total"]["median_ms"], rt["total"]["iqr_ms"]
        assert rt["layers_sum_ms"] == pytest.approx(sum(r["median_ms"] for r in rt["layers"]))
        assert abs(rt["layers_sum_ms"] - total) <= 0.3 * total + 3 * spread, rt["runtime"]
        assert sum(r["share"] for r in rt["layers"]) == pytest.approx(1.0)


def test_a_layer_with_4x_the_channels_is_measured_slower(both):
    for runtime in ("torch", "ort"):
        r = rows(both, runtime)
        assert r["conv_b"]["median_ms"] > 1.5 * r["conv_a"]["median_ms"], runtime


def test_roofline_labels():
    d = cnnscope.profile(TwoConvs(), "16x48x48", runs=3, warmup=1).to_dict()
    r = rows(d, "torch")
    # a 3×3 conv on 16 channels does ~25 MACs per byte it moves, far above any CPU's ridge point
    # (peak MAC/s ÷ copy B/s, 1–10 here); a ReLU does none
    assert MACS_B / r["conv_b"]["bytes"] > 10 * d["peak"]["ridge_macs_per_byte"] or d["peak"]["ridge_macs_per_byte"] > 10
    assert r["conv_b"]["bound"] == "compute" and r["act"]["bound"] == "memory"
    assert r["conv_b"]["gmacs_per_s"] == pytest.approx(MACS_B / r["conv_b"]["median_ms"] / 1e6)


def test_the_given_model_is_left_as_it_was():
    m = TwoConvs().train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    cnnscope.profile(m, "16x48x48", runs=3, warmup=0)
    assert m.training and not m.conv_a._forward_hooks and not m.conv_a._forward_pre_hooks
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def test_depth_sums_rows_into_stages():
    d = cnnscope.profile("resnet18", "3x64x64", runs=3, warmup=1, depth=1).to_dict()
    r = rows(d, "torch")
    assert list(r) == ["", "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]
    # layer1: four 64→64 3×3 convs on 16×16 maps (64 → conv1 /2 → maxpool /2)
    assert r["layer1"]["macs"] == 4 * 64 * 64 * 9 * 16 * 16
    # layer2: 64→128 stride 2 (8×8 out), three 128→128, the 1×1 downsample
    assert r["layer2"]["macs"] == (128 * 64 * 9 + 3 * 128 * 128 * 9 + 128 * 64) * 8 * 8
    assert sum(x["macs"] for x in r.values()) == cnnscope.summary("resnet18", "3x64x64").totals.macs


def test_peak_is_measured_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSCOPE_CACHE_DIR", str(tmp_path))
    first = peak(1)
    assert not first.cached and (tmp_path / "peaks.json").is_file()
    second = peak(1)
    assert second.cached and second.macs_per_s == first.macs_per_s
    # a damaged cache is not an error: measured again, and rewritten
    (tmp_path / "peaks.json").write_text("{not json")
    assert not peak(1).cached and peak(1).cached
    (tmp_path / "peaks.json").write_text(json.dumps({"version": 1, "entries": {first.key: {"macs_per_s": -1}}}))
    assert not peak(1).cached


def test_cli_formats(cli, tmp_path):
    code, out, err = cli("profile", "lenet5", "--runtime", "both", "--runs", "3", "-f", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["schema"] == "cnnscope.profile/1" and [rt["runtime"] for rt in d["runtimes"]] == ["torch", "ort"]
    assert "random" in d["weights"]
    code, out, err = cli("profile", "lenet5", "--runs", "3", "-f", "csv", "--top", "2")
    assert code == 0, err
    table = list(csv.DictReader(io.StringIO(out)))
    assert len(table) == 2 and float(table[0]["median_ms"]) >= float(table[1]["median_ms"])
    code, out, err = cli("profile", "lenet5", "--runs", "3", "-f", "markdown")
    assert code == 0 and "| Layer" in out and "GMAC/s" in out
    onnx = tmp_path / "l.onnx"
    cnnscope.export_onnx("lenet5", onnx)
    code, out, err = cli("profile", onnx, "--runs", "3")
    assert code == 0, err
    assert "onnxruntime:" in out and "PyTorch" not in out


@pytest.mark.parametrize("args, contains", [
    (["nope"], "unknown model"),
    (["lenet5", "--runs", "2"], "--runs"),
    (["lenet5", "--device", "cuda"], None),
    (["lenet5", "-i", "1x2x2"], None),
])
def test_bad_input_is_one_line(cli, args, contains):
    code, out, err = cli("profile", *args)
    if args[-1] == "cuda" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert_one_line_error(code, out, err, contains=contains)


def test_onnx_needs_the_ort_runtime(cli, tmp_path):
    onnx = tmp_path / "l.onnx"
    cnnscope.export_onnx("lenet5", onnx)
    code, out, err = cli("profile", onnx, "--runtime", "torch")
    assert_one_line_error(code, out, err, contains="--runtime ort")


def _int_input_onnx(path):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.INT64, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def _unknown_op_onnx(path):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Mystery", ["x"], ["y"], domain="evil.ops")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("evil.ops", 1)]),
              path)


def test_hostile_and_wrong_inputs(cli, tmp_path):
    import os

    ints = tmp_path / "ints.onnx"
    _int_input_onnx(ints)
    assert_one_line_error(*cli("profile", ints), contains="float")
    weird = tmp_path / "weird.onnx"
    _unknown_op_onnx(weird)
    assert_one_line_error(*cli("profile", weird))
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    assert_one_line_error(*cli("profile", fifo))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not onnx" * 100)
    assert_one_line_error(*cli("profile", garbage), contains="ONNX")
    onnx = tmp_path / "l.onnx"
    cnnscope.export_onnx("lenet5", onnx)
    before = onnx.read_bytes()
    assert_one_line_error(*cli("profile", onnx, "--runs", "3", "-f", "json", "-o", onnx))     # never onto its input
    assert onnx.read_bytes() == before
    assert_one_line_error(*cli("profile", "resnet18", "-i", "3x60000x60000"), contains="needs at least")
    assert_one_line_error(*cli("check", ints, "--max-latency", "1s"), contains="float")
