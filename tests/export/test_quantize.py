"""`cnnscope quantize` (issue 19): int8 ONNX verified against the float model, measured, written atomically.

The numbers these tests hold the command to come from outside it: top-1 of the float model from a
PyTorch evaluation of the same images, top-1 of the int8 file from our own onnxruntime run of the
written file, parameter counts and bytes by hand from the architecture.
"""
import json
import os
import sys

import numpy as np
import pytest
import torch
from torch import nn

import cnnscope
from tests.conftest import ROOT, assert_one_line_error, run_inprocess

# mnist_cnn by hand: conv5×5 1→32, conv5×5 32→64, fc 3136→1024, fc 1024→10
WEIGHTS = 5 * 5 * 1 * 32 + 5 * 5 * 32 * 64 + 3136 * 1024 + 1024 * 10        # 3,273,504
BIASES = 32 + 64 + 1024 + 10                                                  # 1,130
MNIST_MACS = 28 * 28 * 32 * 25 + 14 * 14 * 64 * 25 * 32 + 3136 * 1024 + 1024 * 10


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """scikit-learn's digits as an ImageFolder tree and an mnist_cnn trained on it (seeded, one thread)."""
    from cnnscope.data import data_loaders
    from cnnscope.transforms.finetune import evaluate, fine_tune

    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        from digits_prune import write_digits_imagefolder
    finally:
        sys.path.pop(0)
    root = tmp_path_factory.mktemp("digits")
    write_digits_imagefolder(str(root / "digits"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = cnnscope.load_model("mnist_cnn")
        splits = data_loaders(str(root / "digits"), (1, 28, 28), None, batch_size=32, seed=0)
        fine_tune(model, splits.train, epochs=4, lr=0.02)
        top1 = evaluate(model, splits.val).top1
    finally:
        torch.set_num_threads(threads)
    cnnscope.save_model(model, root / "mnist.pt")
    return root, top1


def _quantize(*args, cwd=None):
    code, out, err = run_inprocess("quantize", *args, "-f", "json", "--latency-runs", "3", cwd=cwd)
    assert code == 0, err
    return json.loads(out)


def _ort_top1(path, data_dir) -> float:
    """Top-1 of an ONNX file on val/, run here with onnxruntime on images read by torchvision's ImageFolder."""
    import onnxruntime as ort
    from torchvision import transforms as T
    from torchvision.datasets import ImageFolder

    val = ImageFolder(os.path.join(data_dir, "val"), transform=T.Compose([T.Grayscale(), T.Resize((28, 28)),
                                                                          T.ToTensor()]))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    hits = sum(int(sess.run(None, {name: x[None].numpy()})[0].argmax(1)[0] == y) for x, y in val)
    return hits / len(val)


def test_digits_int8_keeps_top1_and_is_a_quarter_of_the_file(digits, tmp_path):
    root, torch_top1 = digits
    out = tmp_path / "mnist.int8.onnx"
    r = _quantize(root / "mnist.pt", "--data", root / "digits", "-o", out)
    a = r["agreement"]
    assert a["images"] == 360 and a["inputs"] == "val images"
    # float top-1 through the exported file equals PyTorch's on the same 360 images (to one image)
    assert abs(a["top1_float"] - torch_top1) <= 1 / 360 + 1e-9
    # int8 within 1 point of float, and the written file really scores what the report says
    assert abs(a["top1_int8"] - a["top1_float"]) <= 0.01
    assert abs(_ort_top1(out, root / "digits") - a["top1_int8"]) <= 1 / 360 + 1e-9
    assert a["top1_agreement"] >= 0.97
    # file ≤ 30% of the float file: int8 weights are 1 byte of 4; compare with an export of our own
    float_file = tmp_path / "float.onnx"
    assert run_inprocess("export", root / "mnist.pt", "-o", float_file)[0] == 0
    assert r["float_file_bytes"] == os.path.getsize(float_file)
    assert os.path.getsize(out) == r["int8_file_bytes"] <= 0.30 * os.path.getsize(float_file)
    # every conv and linear layer runs in int8 (ReLUs are folded into their output ranges)
    assert r["int8_macs"] == r["macs"] == MNIST_MACS
    assert all(n["int8"] for n in r["nodes"])
    assert r["calibration"] == {"source": "data", "images": 100, "method": "minmax"}


def test_summary_reads_the_int8_file_params_by_hand(digits, tmp_path):
    root, _ = digits
    out = tmp_path / "q.onnx"
    _quantize(root / "mnist.pt", "--data", root / "digits", "-o", out, "--eval-images", "20")
    t = cnnscope.summary(str(out)).totals
    assert t.params == WEIGHTS + BIASES == 3_274_634          # the same parameters, now int8
    assert t.param_bytes == WEIGHTS * 1 + BIASES * 4          # int8 weights, int32 biases
    assert t.macs == MNIST_MACS                               # MACs do not change with precision
    assert t.buffer_bytes < 20_000                            # scales and zero points only
    # RF by hand: conv5 → 5, pool2 → 6, conv5 at jump 2 → 6 + 4·2 = 14, pool2 → 14 + 2 = 16, jump 4
    assert t.receptive_field["size"] == [16, 16] and t.receptive_field["stride"] == [4, 4]
    dynamic = tmp_path / "d.onnx"
    _quantize(root / "mnist.pt", "--dynamic", "-o", dynamic)
    t = cnnscope.summary(str(dynamic)).totals
    assert t.params == WEIGHTS + BIASES
    assert t.param_bytes == WEIGHTS + 4 * BIASES              # dynamic keeps float biases: 4 bytes each too
    assert t.macs == MNIST_MACS
    assert t.receptive_field["size"] == [16, 16]              # ConvInteger read as the conv it replaces
    # check reads the file's size (a budget on the int8 file)
    code, out_text, err = run_inprocess("check", str(out), "--max-file-mb", "3.2")
    assert code == 1 and "file" in out_text.lower()
    assert run_inprocess("check", str(out), "--max-file-mb", "3.4")[0] == 0


def test_pipeline_history_prune_then_quantize(digits, tmp_path):
    root, _ = digits
    pruned = tmp_path / "pruned.pt"
    assert run_inprocess("prune", root / "mnist.pt", "--ratio", "0.5", "-o", pruned)[0] == 0
    out = tmp_path / "p.int8.onnx"
    r = _quantize(pruned, "--data", root / "digits", "-o", out, "--eval-images", "50")
    assert [h.split(":")[0] for h in r["history"]] == ["base", "prune", "quantize"]
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(out), load_external_data=False).metadata_props}
    assert json.loads(meta["cnnscope.history"]) == r["history"]
    assert json.loads(meta["cnnscope.quantization"])["mode"] == "static"
    assert cnnscope.summary(str(out)).history == r["history"]        # summary shows how the file was made
    assert "History:     base: mnist_cnn → prune" in run_inprocess("summary", out)[1]
    # the pruned model's params (by the PyTorch summary) are what the int8 file holds
    assert cnnscope.summary(str(out)).totals.params == cnnscope.summary(str(pruned)).totals.params


class WithSin(nn.Module):
    """conv → sin → conv → pool → fc: onnxruntime's quantizer has no int8 Sin."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = torch.sin(self.conv1(x))
        return self.fc(torch.relu(self.conv2(x)).mean((2, 3)))


def test_a_layer_that_cannot_be_quantized_stays_float_and_says_why(tmp_path):
    torch.manual_seed(0)
    out = tmp_path / "s.onnx"
    r = cnnscope.quantize(WithSin(), out, calibration="random", input_size="1x16x16", latency_runs=0,
                          keep_float=["conv2"])
    by_op = {n["op"]: n for n in r.to_dict()["nodes"]}
    assert not by_op["Sin"]["int8"] and "no int8 Sin" in by_op["Sin"]["reason"]
    conv2 = next(n for n in r.nodes if n.module == "conv2")
    assert not conv2.int8 and "--keep-float" in conv2.reason
    conv1 = next(n for n in r.nodes if n.module == "conv1")
    assert conv1.int8
    # the MAC share by hand: conv1 16·16·8·9 runs int8; conv2 16·16·8·72 and fc 8·4 do not (fc's input is float)
    int8 = sum(n.macs for n in r.nodes if n.int8)
    assert int8 >= 16 * 16 * 8 * 9 and int8 < 16 * 16 * 8 * 9 + 16 * 16 * 8 * 72
    assert os.path.exists(out)


class NearTie(nn.Module):
    """Two logits 1e-4 apart: int8 noise decides the arg-max, so agreement is near chance."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        with torch.no_grad():
            self.conv.weight[:] = torch.tensor([1.0, 1.0001]).view(2, 1, 1, 1)
            self.conv.bias.zero_()

    def forward(self, x):
        return self.conv(x).mean((2, 3))


def test_agreement_below_the_budget_exits_1_and_writes_nothing(tmp_path):
    path = tmp_path / "tie.py"
    import inspect

    path.write_text("import torch\nfrom torch import nn\n\n" + inspect.getsource(NearTie) +
                    "\n\ndef build():\n    return NearTie()\n")
    out = tmp_path / "tie.onnx"
    code, stdout, err = run_inprocess("quantize", f"{path}:build", "-i", "1x4x4", "--calibration", "random",
                                      "--min-agreement", "0.99", "-o", out, "--latency-runs", "0")
    assert code == 1, err
    assert "below --min-agreement 99.00%" in err and "nothing was written" in err
    assert set(os.listdir(tmp_path)) <= {"tie.py", "__pycache__"}


@pytest.mark.parametrize("args,contains", [
    (["mnist_cnn", "-o", "x.onnx"], "--data"),                                       # no calibration images
    (["mnist_cnn", "-o", "x.pt", "--calibration", "random"], "must end in .onnx"),
    (["mnist_cnn", "-o", "missing/x.onnx", "--calibration", "random"], "missing"),
    (["mnist_cnn", "-o", "x.onnx", "--data", "nowhere"], "nowhere"),
    (["mnist_cnn", "-o", "x.onnx", "--calibration", "random", "--min-agreement", "2"], "--min-agreement"),
    (["mnist_cnn", "-o", "x.onnx", "--calibration", "random", "--keep-float", "nosuchlayer"], "nosuchlayer"),
    (["mnist_cnn", "-o", "x.onnx", "--dynamic", "--calibration", "random"], "--dynamic"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, args, contains):
    code, out, err = run_inprocess("quantize", *args, cwd=tmp_path)
    assert_one_line_error(code, out, err, contains=contains)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".onnx") or p.endswith(".tmp")]


def test_onnx_input_is_never_overwritten_and_takes_no_input_size(tmp_path):
    src = tmp_path / "m.onnx"
    assert run_inprocess("export", "lenet5", "-o", src)[0] == 0
    before = src.read_bytes()
    assert_one_line_error(*run_inprocess("quantize", src, "--dynamic", "-o", src), contains="m.onnx")
    assert_one_line_error(*run_inprocess("quantize", src, "--dynamic", "-i", "1x28x28", "-o", tmp_path / "q.onnx"),
                          contains="--input-size")
    assert src.read_bytes() == before
    r = _quantize(src, "--dynamic", "-o", tmp_path / "q.onnx")    # a float .onnx is a MODEL like any other
    assert r["mode"] == "dynamic" and r["agreement"]["inputs"] == "random N(0,1) inputs"
    assert cnnscope.summary(str(tmp_path / "q.onnx")).totals.params == 61_706      # LeNet-5, by hand elsewhere


def test_a_model_that_does_not_export_exits_2(tmp_path):
    path = tmp_path / "fft.py"
    path.write_text("import torch\nclass M(torch.nn.Module):\n    def forward(self, x):\n"
                    "        return torch.fft.fft2(x).abs()\n\ndef build():\n    return M()\n")
    code, out, err = run_inprocess("quantize", f"{path}:build", "-i", "1x8x8", "--dynamic", "-o", tmp_path / "q.onnx")
    assert_one_line_error(code, out, err, contains="does not export")
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob(".*tmp"))


def test_library_matches_cli(tmp_path):
    torch.manual_seed(0)       # a name builds random weights: the same ones for both
    cli = _quantize("lenet5", "--dynamic", "-o", tmp_path / "a.onnx")
    torch.manual_seed(0)
    lib = cnnscope.quantize("lenet5", tmp_path / "b.onnx", dynamic=True, latency_runs=3).to_dict()
    timing = {"float_latency", "int8_latency", "speedup", "seconds", "path"}
    assert {k: v for k, v in cli.items() if k not in timing} == \
        json.loads(json.dumps({k: v for k, v in lib.items() if k not in timing}))
    assert np.isclose(cli["agreement"]["relative_error"], lib["agreement"]["relative_error"])


def test_hostile_onnx_files_exit_2(tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not a protobuf" * 10)
    assert_one_line_error(*run_inprocess("quantize", garbage, "--dynamic", "-o", tmp_path / "q.onnx"),
                          contains="not a readable ONNX file")
    ids = tmp_path / "ids.onnx"          # an integer input: not an image model

    class OneHot(nn.Module):
        def forward(self, x):
            return nn.functional.one_hot(x, 10).float().sum(1)

    torch.onnx.export(OneHot(), (torch.zeros(1, 5, dtype=torch.long),), str(ids), dynamo=False)
    assert_one_line_error(*run_inprocess("quantize", ids, "--dynamic", "-o", tmp_path / "q.onnx"),
                          contains="one float image input")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.onnx", "ids.onnx"]
