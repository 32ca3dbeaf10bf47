"""Smaller outputs of issue 13, each against a value worked out independently (by hand, or by a second
method such as onnxruntime's graph or the weights themselves)."""
import json

import pytest
import torch

from tests.conftest import assert_one_line_error, run_inprocess


def _json(*args, cwd=None):
    code, out, err = run_inprocess(*args, "-f", "json", cwd=cwd)
    assert code == 0, err
    return json.loads(out)


def test_rewrite_skip_reasons_are_grouped(tmp_path):
    """resnet18 has three 1×1 downsample convs (layer2-4) and one stem: two lines, not four."""
    code, out, err = run_inprocess("reduce", "resnet18", "--ratio", "0.5", "--dry-run", "-i", "3x64x64")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("skipped")]
    assert lines[0].startswith("skipped 3 × 1×1 kernel") and lines[0].endswith(
        "layer2.0.downsample.0, layer3.0.downsample.0, layer4.0.downsample.0")
    assert lines[1].startswith("skipped 1 × stem conv") and lines[1].endswith(": conv1")
    assert len(lines) == 2


def test_advise_prune_row_follows_layers_and_no_zero_saving_rows():
    report = _json("advise", "resnet18", "-i", "3x64x64", "--layers", "layer4*")
    prune = next(m for m in report["methods"] if m["method"].startswith("prune"))
    assert "layer4*" in prune["method"]
    # only layer4's channels may go: layers 1-3 keep every parameter, so at most layer4's share is saved
    d = _json("summary", "resnet18", "-i", "3x64x64")
    layer4 = next(r["params"] for r in d["layers"] if r["name"] == "layer4")
    assert prune["params"][0] - layer4 <= prune["params"][1] < prune["params"][0]
    # resnet18 already pools globally: FC → global pooling would save nothing, so it is not advised
    report = _json("advise", "resnet18", "-i", "3x64x64")
    assert not any(m["method"].startswith("FC") for m in report["methods"])
    assert all(m["macs"][1] < m["macs"][0] or m["params"][1] < m["params"][0] for m in report["methods"])


def test_artifact_remembers_its_input_size(tmp_path):
    out = tmp_path / "p.pt"
    code, _, err = run_inprocess("prune", "resnet18", "--ratio", "0.5", "-i", "3x64x64", "-o", out)
    assert code == 0, err
    # resnet18 is 224×224 by default; the artifact was made at 64×64 and its summary and export use that
    assert _json("summary", out)["input_shape"] == [1, 3, 64, 64]
    code, text, err = run_inprocess("export", out, "-o", tmp_path / "p.onnx")
    assert code == 0, err
    assert "input 1×3×64×64" in text


def test_unstructured_sparsity_is_visible_and_budgeted(tmp_path):
    out = tmp_path / "u.pt"
    code, _, err = run_inprocess("prune", "lenet5", "--unstructured", "--sparsity", "0.5", "-o", out)
    assert code == 0, err
    sd = torch.load(out, weights_only=True)["state_dict"]
    by_hand = sum(int(torch.count_nonzero(v)) for k, v in sd.items() if k.endswith(("weight", "bias")))
    d = _json("summary", out)
    assert d["totals"]["params"] == 61706 and d["totals"]["nonzero_params"] == by_hand < 61706
    code, text, err = run_inprocess("summary", out, "--depth", "0")
    assert f"Non-zero:    {by_hand:>16,}" in text
    code, _, err = run_inprocess("check", out, "--max-nonzero-params", str(by_hand))
    assert code == 0, err
    code, _, err = run_inprocess("check", out, "--max-nonzero-params", str(by_hand - 1))
    assert code == 1
    # the ONNX export holds the same zeros
    onnx_path = tmp_path / "u.onnx"
    assert run_inprocess("export", out, "-o", onnx_path)[0] == 0
    assert _json("summary", onnx_path)["totals"]["nonzero_params"] == by_hand
    # a fresh init has no weights in a file: its zeros are unknown, so the budget is bad input
    assert_one_line_error(*run_inprocess("check", "lenet5", "--max-nonzero-params", "1M"),
                          contains="max-nonzero-params")


def test_activation_bytes_agree_between_pytorch_and_onnx(tmp_path):
    """One rule on both sides (tensors written that something reads), checked on the ONNX side by a second
    method: onnxruntime's own shapes of every node output, summed here."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    path = tmp_path / "r.onnx"
    assert run_inprocess("export", "resnet18", "-i", "3x64x64", "-o", path)[0] == 0
    m = onnx.load(str(path))
    read = {i for n in m.graph.node for i in n.input} | {o.name for o in m.graph.output}
    outs = [o for n in m.graph.node if n.op_type not in ("Flatten", "Reshape", "Constant") for o in n.output
            if o in read]
    m.graph.output.extend([onnx.ValueInfoProto(name=o) for o in outs if o not in {x.name for x in m.graph.output}])
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: np.zeros((1, 3, 64, 64), np.float32)})
    names = [o.name for o in sess.get_outputs()]
    by_ort = sum(a.nbytes for n, a in zip(names, got) if n in outs)
    assert _json("summary", path)["totals"]["activation_bytes"] == by_ort
    assert _json("summary", "resnet18", "-i", "3x64x64")["totals"]["activation_bytes"] == by_ort


def test_list_json_does_not_pass_rounded_macs_off_as_exact():
    rows = _json("list", "--filter", "resnet18")
    assert rows[0]["macs"] is None and rows[0]["gmacs"] == 1.814        # torchvision's published _ops
    rows = _json("list", "--filter", "resnet18", "--exact")
    # exact, and within the published rounding: 1.814 G ± 0.0005 G
    assert rows[0]["macs"] == 1_814_073_344 and abs(rows[0]["macs"] / 1e9 - 1.814) < 5e-4


def test_python_errors_name_python_arguments():
    """The same error reads in the caller's terms: input_size in Python, --input-size on the CLI."""
    import cnnscope
    from cnnscope.errors import InputTooSmallError

    with pytest.raises(InputTooSmallError) as e:
        cnnscope.summary("lenet5", input_size=(1, 4, 4))     # by hand: (4 − 5)/1 + 1 = 0 < 1
    assert "use a larger input_size" in str(e.value) and "--" not in str(e.value)
    line = assert_one_line_error(*run_inprocess("summary", "lenet5", "-i", "1x4x4"))
    assert "use a larger --input-size" in line


def test_compare_across_formats_reports_only_real_differences(tmp_path):
    path = tmp_path / "r.onnx"
    assert run_inprocess("export", "resnet18", "-i", "3x64x64", "-o", path)[0] == 0
    d = _json("compare", "resnet18", path, "-i", "3x64x64")
    assert d["cross_format"] is True
    assert [lay["name"] for lay in d["layers"] if lay["changed"]] == []
    # ONNX lists the residual Add and the block's second relu call as nodes: 8 blocks × 2, plus Flatten
    assert len(d["only_in_b"]) == 17
    # a real difference still shows: the pruned model's convs have fewer params than resnet18's
    pruned = tmp_path / "p.pt"
    assert run_inprocess("prune", "resnet18", "--ratio", "0.5", "-i", "3x64x64", "-o", pruned)[0] == 0
    ponnx = tmp_path / "p.onnx"
    assert run_inprocess("export", pruned, "-o", ponnx)[0] == 0
    d = _json("compare", "resnet18", ponnx, "-i", "3x64x64")
    changed = {lay["name"] for lay in d["layers"] if lay["changed"]}
    assert "layer1.0.conv1" in changed and not any(n.endswith((".Add", "relu_1")) for n in changed)


UPNET = '''
import torch
import torch.nn.functional as F
from torch import nn

class UpCat(nn.Module):
    """Stride-2 conv, a pool with ceil mode, nearest ×2 upsampling, a concat with a skip: every RF rule
    that an ONNX file spells differently from PyTorch."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.pool = nn.AvgPool2d(3, stride=2, ceil_mode=True)
        self.body = nn.Conv2d(8, 8, 5, padding=2, dilation=1)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        s = torch.relu(self.stem(x))
        y = self.body(self.pool(s))
        y = F.interpolate(y, size=s.shape[-2:], mode="nearest")
        return self.head(torch.cat([s, y], 1))

def build():
    return UpCat()
'''


@pytest.mark.parametrize("model", ["resnet18", "mobilenet_v2", "upcat.py:build"])
def test_onnx_summary_has_the_pytorch_receptive_fields(tmp_path, model):
    """The ONNX file's RF per layer, by its own graph, equals the PyTorch summary's (a second recording)."""
    (tmp_path / "upcat.py").write_text(UPNET)
    size = "3x64x64" if model != "upcat.py:build" else "3x33x33"
    path = tmp_path / "m.onnx"
    code, _, err = run_inprocess("export", model, "-i", size, "-o", path, cwd=tmp_path)
    assert code == 0, err
    torch_rows = {r["name"]: r["receptive_field"] for r in _json("summary", model, "-i", size, cwd=tmp_path)["layers"]}
    d = _json("summary", path, cwd=tmp_path)
    onnx_rows = {r["name"]: r["receptive_field"] for r in d["layers"]}
    common = [n for n in torch_rows if n in onnx_rows and torch_rows[n] is not None]
    assert len(common) >= 4
    assert {n: onnx_rows[n] for n in common} == {n: torch_rows[n] for n in common}
    t = _json("summary", model, "-i", size, cwd=tmp_path)
    assert d["totals"]["receptive_field"] == t["totals"]["receptive_field"]
    # the torchinfo columns read from the file agree with the PyTorch model's too
    by_name = {r["name"]: r for r in t["layers"]}
    convs = [r for r in d["layers"] if r["type"] == "Conv" and r["name"] in by_name]
    assert convs
    for r in convs:
        mine = by_name[r["name"]]
        assert (r["input_shape"], r["kernel_shape"]) == (mine["input_shape"], mine["kernel_shape"]), r["name"]
        assert r["params_percent"] == pytest.approx(mine["params_percent"])
