"""The bad-input catalogue: one test per way a user can hand the CLI something wrong.

Every error path must end with exit code 2 (1 only when a check or budget failed, 130 on Ctrl-C),
one line on stderr naming the problem and the fix, no traceback, and no output file left behind
(the output folder is listed after each failure). Most cases run the real entry point
(``cnnscope.cli.main``) in this process with file-descriptor capture, so native and ``warnings``
output is seen as a user would see it; the cases where the process itself matters (a real exit
code, a real SIGINT, code that must never run) use a subprocess.
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import cnnscope
from cnnscope.errors import CnnscopeError
from tests.conftest import ROOT, assert_one_line_error


# ------------------------------------------------------------------------------------ fixtures

@pytest.fixture
def invoke(capfd):
    """Run ``cnnscope ARGS`` in process: (exit code, stdout, stderr), with Python's default warning
    filters (as in a fresh ``cnnscope`` process) so a leaked warning shows on stderr."""
    from cnnscope.cli import main

    def run(*args):
        capfd.readouterr()
        with warnings.catch_warnings():
            warnings.resetwarnings()
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", category)
            warnings.showwarning = warnings._showwarning_orig
            code = main([str(a) for a in args])
        out, err = capfd.readouterr()
        return code, out, err

    return run


@pytest.fixture
def out_dir(tmp_path):
    """An empty folder for outputs; every failure must leave it empty."""
    d = tmp_path / "out"
    d.mkdir()
    return d


def assert_empty(folder: Path, keep: tuple[str, ...] = ()) -> None:
    left = sorted(set(os.listdir(folder)) - set(keep))
    assert left == [], f"files left behind in {folder}: {left}"


def assert_usage_error(code, out, err, contains=None):
    """click's own usage errors (bad option values, unknown options) print a usage hint before the
    error; still exit 2, no traceback, and exactly one ``Error:`` line."""
    assert code == 2, (code, out, err)
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, err
    if contains:
        assert contains in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Real inputs built once: a lenet5 artifact, its truncations, state dicts, an ONNX file."""
    d = tmp_path_factory.mktemp("inputs")
    lenet = cnnscope.load_model("lenet5")
    cnnscope.save_model(lenet, d / "lenet5.pt")
    data = (d / "lenet5.pt").read_bytes()
    (d / "half.pt").write_bytes(data[: len(data) // 2])
    (d / "head.pt").write_bytes(data[:10])
    (d / "empty.pt").write_bytes(b"")
    (d / "garbage.pt").write_bytes(b"\x80\x02not really a torch file")
    (d / "notes.pt").write_text("just some text, not a model\n")
    torch.save(lenet.state_dict(), d / "lenet5_sd.pt")
    torch.save(cnnscope.load_model("mnist_cnn").state_dict(), d / "mnist_sd.pt")
    sd = (d / "lenet5_sd.pt").read_bytes()
    (d / "lenet5_sd_half.pt").write_bytes(sd[: len(sd) // 2])
    raw = torch.load(d / "lenet5.pt", weights_only=True)
    torch.save({k: v for k, v in raw.items() if k != "plan"}, d / "no_plan.pt")
    torch.save({**raw, "plan": [{"kind": "teleport"}]}, d / "future_plan.pt")
    from cnnscope.export.onnx_export import export_onnx

    export_onnx(lenet, d / "lenet5.onnx", input_size="1x28x28")
    onnx_bytes = (d / "lenet5.onnx").read_bytes()
    (d / "half.onnx").write_bytes(onnx_bytes[: len(onnx_bytes) // 2])
    (d / "garbage.onnx").write_bytes(b"not an onnx file at all")
    (d / "a_folder.pt").mkdir()
    return d


NETS = '''\
import torch
from torch import nn


def lenet(width=6):
    return nn.Sequential(nn.Conv2d(1, width, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(width * 12 * 12, 10))


def audio():
    # 1-D: 2 channels × L samples
    return nn.Sequential(nn.Conv1d(2, 8, 5, stride=2, padding=2), nn.BatchNorm1d(8), nn.ReLU(), nn.MaxPool1d(2),
                         nn.Conv1d(8, 8, 3, dilation=2), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 4))


def video():
    # 3-D: 3 channels × D frames × H × W
    return nn.Sequential(nn.Conv3d(3, 8, 3, padding=1), nn.BatchNorm3d(8), nn.ReLU(), nn.MaxPool3d(2),
                         nn.Conv3d(8, 4, (1, 3, 3)), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 2))


def not_a_module():
    return 42


def broken():
    raise ValueError("the constructor failed")


class Crashes(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom in forward")


def crashes():
    return Crashes()
'''


@pytest.fixture
def nets(tmp_path):
    path = tmp_path / "in" / "nets.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(NETS)
    return path


class Evil:
    """Unpickling this runs ``touch MARKER`` — it must never happen."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def evil(tmp_path):
    """(marker, {name: path}) — files whose unpickling would create the marker."""
    d = tmp_path / "in"
    d.mkdir(exist_ok=True)
    marker = tmp_path / "PWNED"
    paths = {}
    with open(d / "plain_pickle.pt", "wb") as f:      # a plain pickle (not torch's zip format)
        pickle.dump({"format": "cnnscope/1", "x": Evil(marker)}, f)
    paths["plain_pickle"] = d / "plain_pickle.pt"
    torch.save({"format": "cnnscope/1", "base": {"source": "builtin", "name": "lenet5", "kwargs": {}}, "plan": [],
                "state_dict": Evil(marker)}, d / "artifact.pt")
    paths["artifact"] = d / "artifact.pt"
    torch.save({"conv.weight": Evil(marker)}, d / "state_dict.pth")
    paths["state_dict"] = d / "state_dict.pth"
    return marker, paths


# ------------------------------------------------------------------------------------ unknown names

@pytest.mark.parametrize("args", [
    ["summary", "resnet5O"],
    ["explain", "resnet5O", "conv1"],
    ["export", "resnet5O", "-o", "{out}/m.onnx"],
    ["compare", "resnet5O", "resnet18"],
    ["check", "resnet5O", "--max-params", "30M", "-o", "{out}/report.txt"],
], ids=lambda a: a[0])
def test_unknown_model_name_suggests_closest(invoke, out_dir, args):
    line = assert_one_line_error(*invoke(*[a.format(out=out_dir) for a in args]), contains="unknown model")
    assert "closest: resnet50" in line
    if args[0] == "check":   # a CI gate still writes its report, with the model as an error (issue 12)
        report = (out_dir / "report.txt").read_text()
        assert "resnet5O  ERROR" in report and "closest: resnet50" in report
        (out_dir / "report.txt").unlink()
    assert_empty(out_dir)


def test_unknown_model_name_in_a_real_process(cli, out_dir):
    line = assert_one_line_error(*cli("export", "vgg61", "-o", out_dir / "m.onnx"), contains="unknown model 'vgg61'")
    assert "vgg16" in line
    assert_empty(out_dir)


def test_unknown_weights_name_suggests_closest(invoke):
    assert_one_line_error(*invoke("summary", "resnet18", "--weights", "IMAGENET1K_V9"),
                          contains=["unknown weights", "IMAGENET1K_V1"])


def test_named_weights_for_a_model_without_any(invoke):
    assert_one_line_error(*invoke("summary", "lenet5", "--weights", "IMAGENET1K_V1"), contains="state_dict file")


def test_unknown_layer_suggests_closest(invoke, out_dir):
    assert_one_line_error(*invoke("explain", "resnet18", "layer1.0.conv3", "-o", out_dir / "e.txt"),
                          contains=["unknown layer 'layer1.0.conv3'", "layer1.0.conv1"])
    assert_empty(out_dir)


def test_unknown_callable_in_user_file_suggests_closest(invoke, nets):
    assert_one_line_error(*invoke("summary", f"{nets}:lenett"), contains=["lenett", "lenet"])


def test_unknown_command_and_option(invoke):
    assert_usage_error(*invoke("sumary", "lenet5"), contains="sumary")
    assert_usage_error(*invoke("summary", "lenet5", "--frobnicate"), contains="--frobnicate")


# ------------------------------------------------------------------------------------ sizes and units

@pytest.mark.parametrize("size", ["3xfoo", "0", "3x0x28", "1x2x3x4", "-5", "28.5", "x", ""])
def test_malformed_input_size(invoke, size):
    assert_one_line_error(*invoke("summary", "lenet5", f"--input-size={size}"), contains="input size")


def test_malformed_input_size_for_export_writes_nothing(invoke, out_dir):
    assert_one_line_error(*invoke("export", "lenet5", "--input-size", "1x28xfoo", "-o", out_dir / "m.onnx"),
                          contains="input size")
    assert_empty(out_dir)


@pytest.mark.parametrize("option,value", [
    ("--max-params", "ten"), ("--max-macs", "4.2Q"), ("--max-flops", "-1"), ("--max-size-mb", "lots"),
    ("--max-activation-mb", "5 parsecs"), ("--min-rf", "big"),
])
def test_malformed_budget_units(invoke, out_dir, option, value):
    assert_one_line_error(*invoke("check", "lenet5", option, value, "-o", out_dir / "r.txt"), contains=option)
    assert_empty(out_dir)


def test_batch_size_zero_is_a_usage_error(invoke):
    assert_usage_error(*invoke("summary", "lenet5", "--batch-size", "0"), contains="--batch-size")


def test_unknown_opset(invoke, out_dir):
    assert_one_line_error(*invoke("export", "lenet5", "--opset", "99", "-o", out_dir / "m.onnx"),
                          contains="unknown opset 99")
    assert_empty(out_dir)


# ------------------------------------------------------------------------------------ input too small

def test_input_too_small_names_the_layer_and_arithmetic(invoke, out_dir):
    # 8×8: alexnet's stem gives ⌊(8 + 2·2 − 11)/4⌋ + 1 = 1 pixel; the 3×3/2 pool after it has none
    for args in (["summary", "alexnet"], ["explain", "alexnet", "features.0"],
                 ["export", "alexnet", "-o", out_dir / "a.onnx"], ["check", "alexnet", "--max-params", "1G"]):
        assert_one_line_error(*invoke(*args, "--input-size", "8"), contains=["features.2", "(1 + 2·0 − 3)/2 + 1 < 1"])
    assert_empty(out_dir)


def test_input_too_small_for_user_model(invoke, nets):
    # lenet(): conv 5×5 on 4×4: (4 + 2·0 − 5)/1 + 1 < 1
    assert_one_line_error(*invoke("summary", f"{nets}:lenet", "-i", "1x4x4"), contains="(4 + 2·0 − 5)/1 + 1 < 1")


# ------------------------------------------------------------------------------------ non-image models

def test_conv1d_model_is_analysed_with_a_signal_size(invoke, nets):
    code, out, err = invoke("summary", f"{nets}:audio", "-i", "2x64", "-f", "json")
    assert code == 0, err
    d = json.loads(out)
    # Conv1d(2, 8, 5, stride 2, pad 2) on L=64: ⌊(64 + 4 − 5)/2⌋ + 1 = 32 outputs; MaxPool1d(2): 16;
    # Conv1d(8, 8, 3, dilation 2): 16 − 2·2 = 12
    rows = {r["name"]: r for r in d["layers"]}
    assert rows["0"]["output_shape"] == [1, 8, 32] and rows["3"]["output_shape"] == [1, 8, 16]
    assert rows["4"]["output_shape"] == [1, 8, 12]
    assert d["totals"]["params"] == (2 * 5 * 8 + 8) + 2 * 8 + (8 * 3 * 8 + 8) + (8 * 4 + 4)
    assert d["totals"]["macs"] == 32 * 8 * 2 * 5 + 12 * 8 * 8 * 3 + 8 * 4
    # RF: 5 (conv, jump 2) → pool 2: 5 + 1·2 = 7, jump 4 → conv 3 dilated 2: 7 + 2·2·4 = 23
    assert d["totals"]["receptive_field"]["size"] == [23]
    # and the shapes equal a real forward
    model = cnnscope.load_model(f"{nets}:audio")
    assert list(model[:5](torch.randn(1, 2, 64)).shape) == rows["4"]["output_shape"]


def test_conv3d_model_is_analysed_with_a_volume_size(invoke, nets):
    code, out, err = invoke("summary", f"{nets}:video", "-i", "3x8x32x32", "-f", "json")
    assert code == 0, err
    d = json.loads(out)
    rows = {r["name"]: r for r in d["layers"]}
    assert rows["0"]["output_shape"] == [1, 8, 8, 32, 32] and rows["4"]["output_shape"] == [1, 4, 4, 14, 14]
    assert d["totals"]["params"] == (3 * 27 * 8 + 8) + 16 + (8 * 9 * 4 + 4) + (4 * 2 + 2)
    assert d["totals"]["macs"] == 8 * 8 * 32 * 32 * 3 * 27 + 4 * 4 * 14 * 14 * 8 * 9 + 4 * 2


@pytest.mark.parametrize("model,size,message", [
    ("audio", None, "--input-size CxL"),
    ("audio", "2x64x64", "expected CxL"),
    ("video", None, "--input-size CxDxHxW"),
    ("video", "3x8x32x32x1", "expected CxDxHxW"),
])
def test_non_image_model_without_a_fitting_size_is_refused_clearly(invoke, nets, model, size, message):
    args = ["summary", f"{nets}:{model}"] + (["--input-size", size] if size else [])
    assert_one_line_error(*invoke(*args), contains=message)


def test_export_of_a_conv1d_model_needs_a_signal_size(invoke, nets, out_dir):
    assert_one_line_error(*invoke("export", f"{nets}:audio", "-o", out_dir / "a.onnx"), contains="--input-size CxL")
    assert_one_line_error(*invoke("export", f"{nets}:audio", "-i", "2x64x64", "-o", out_dir / "a.onnx"),
                          contains="expected CxL")
    assert_empty(out_dir)


def test_conv1d_model_exports_and_its_onnx_summary_agrees(invoke, nets, out_dir):
    """The same sizes as summary: verified by onnxruntime, and the file's totals equal the formulas above."""
    code, out, err = invoke("export", f"{nets}:audio", "-i", "2x64", "-o", out_dir / "a.onnx")
    assert code == 0, err
    code, out, err = invoke("summary", str(out_dir / "a.onnx"), "-f", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["input_shape"] == [1, 2, 64]
    assert d["totals"]["macs"] == 32 * 8 * 2 * 5 + 12 * 8 * 8 * 3 + 8 * 4
    code, out, err = invoke("summary", f"{nets}:audio", "-i", "2x64")
    assert "input: 1×2×64 (N×C×L)" in out.splitlines()[0]


# ------------------------------------------------------------------------------------ user code

@pytest.mark.parametrize("fn,message", [
    ("not_a_module", "returned int, not a torch.nn.Module"),
    ("broken", "the constructor failed"),
    ("crashes", "boom in forward"),
])
def test_user_code_failures(invoke, nets, out_dir, fn, message):
    assert_one_line_error(*invoke("summary", f"{nets}:{fn}", "-i", "1x28x28", "-o", out_dir / "s.txt"),
                          contains=message)
    assert_one_line_error(*invoke("export", f"{nets}:{fn}", "-i", "1x28x28", "-o", out_dir / "m.onnx"),
                          contains=message)
    assert_empty(out_dir)


def test_user_file_that_fails_to_import_in_a_real_process(cli, tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nraise ImportError('no such thing')\n")
    assert_one_line_error(*cli("summary", f"{bad}:model"), contains="no such thing")


# ------------------------------------------------------------------------------------ missing / corrupt files

@pytest.mark.parametrize("args", [
    ["summary", "{f}"],
    ["export", "{f}", "-o", "{out}/m.onnx"],
    ["compare", "{f}", "lenet5"],
    ["check", "{f}", "--max-params", "1M"],
    ["explain", "{f}", "0"],
    ["summary", "lenet5", "--weights", "{f}"],
    ["export", "lenet5", "--weights", "{f}", "-o", "{out}/m.onnx"],
], ids=lambda a: "-".join(a[:3]).replace("{f}", "F").replace("{out}/", ""))
@pytest.mark.parametrize("name,message", [
    ("missing.pt", "does not exist"),
    ("half.pt", "corrupt or truncated"),
    ("head.pt", "corrupt or truncated"),
    ("empty.pt", "corrupt or truncated"),
    ("garbage.pt", ""),
    ("notes.pt", ""),
    ("a_folder.pt", ""),
])
def test_missing_corrupt_and_truncated_files(invoke, files, out_dir, args, name, message):
    path = files / name
    if args[1] == "lenet5" and name == "a_folder.pt":
        message = "is a folder, not a file"   # --weights wants a file: the message names what it is
    line = assert_one_line_error(*invoke(*[a.format(f=path, out=out_dir) for a in args]), contains=message or None)
    assert name in line
    assert_empty(out_dir)


@pytest.mark.parametrize("name", ["half.pt", "head.pt", "empty.pt", "garbage.pt", "missing.pt", "a_folder.pt"])
def test_library_load_of_a_bad_file_raises_one_error_type(files, name):
    with pytest.raises(CnnscopeError):
        cnnscope.load_model(str(files / name))
    with pytest.raises(CnnscopeError):
        cnnscope.summary(str(files / name))


def test_truncated_state_dict(invoke, files, out_dir):
    assert_one_line_error(*invoke("export", "lenet5", "--weights", files / "lenet5_sd_half.pt", "-o", out_dir / "m.onnx"),
                          contains="corrupt or truncated")
    assert_empty(out_dir)


@pytest.mark.parametrize("name,message", [
    ("no_plan.pt", "'plan' entry is missing"),
    ("future_plan.pt", "unknown kind 'teleport'"),
    ("lenet5_sd.pt", "plain state_dict"),
])
def test_damaged_or_foreign_artifacts(invoke, files, out_dir, name, message):
    assert_one_line_error(*invoke("summary", files / name), contains=message)
    assert_one_line_error(*invoke("export", files / name, "-o", out_dir / "m.onnx"), contains=message)
    assert_empty(out_dir)


@pytest.mark.parametrize("name", ["half.onnx", "garbage.onnx", "missing.onnx"])
def test_corrupt_onnx_files(invoke, files, out_dir, name):
    for args in (["summary", files / name, "-o", out_dir / "s.txt"], ["check", files / name, "--max-params", "1M"]):
        line = assert_one_line_error(*invoke(*args))
        assert name in line
    assert_empty(out_dir)


def test_a_folder_or_other_file_as_model(invoke, tmp_path, nets):
    assert_one_line_error(*invoke("summary", tmp_path), contains="is a folder but not a model source")
    assert_one_line_error(*invoke("summary", nets), contains="is a file but not a model source")


def test_export_refuses_an_onnx_input(invoke, files, out_dir):
    assert_one_line_error(*invoke("export", files / "lenet5.onnx", "-o", out_dir / "again.onnx"),
                          contains="already an ONNX file")
    assert_empty(out_dir)


# ------------------------------------------------------------------------------------ foreign state dicts

def test_state_dict_for_another_architecture(invoke, files, out_dir):
    for args in (["summary", "lenet5"], ["export", "lenet5", "-o", out_dir / "m.onnx"],
                 ["check", "lenet5", "--max-params", "1M"], ["compare", "lenet5", "lenet5"]):
        assert_one_line_error(*invoke(*args, "--weights" if args[0] != "compare" else "--weights-a",
                                      files / "mnist_sd.pt"), contains=["do not fit", "missing", "unexpected"])
    assert_empty(out_dir)


def test_state_dict_with_wrong_shapes(invoke, nets, tmp_path, out_dir):
    sd = tmp_path / "in" / "wide.pt"
    torch.save(cnnscope.load_model(f"{nets}:lenet").state_dict(), sd)   # width 6
    (nets.parent / "narrow.py").write_text(NETS.replace("def lenet(width=6)", "def lenet(width=4)"))
    assert_one_line_error(*invoke("export", f"{nets.parent / 'narrow.py'}:lenet", "--weights", sd,
                                  "-i", "1x28x28", "-o", out_dir / "m.onnx"), contains="wrong shape")
    assert_empty(out_dir)


def test_weights_given_to_an_artifact(invoke, files):
    assert_one_line_error(*invoke("summary", files / "lenet5.pt", "--weights", files / "lenet5_sd.pt"),
                          contains="carries its own weights")


# ------------------------------------------------------------------------------------ code in pickles

@pytest.mark.parametrize("kind", ["plain_pickle", "artifact", "state_dict"])
@pytest.mark.parametrize("args", [
    ["summary", "{f}"],
    ["summary", "lenet5", "--weights", "{f}"],
    ["export", "{f}", "-o", "{out}/m.onnx"],
    ["export", "lenet5", "--weights", "{f}", "-o", "{out}/m.onnx"],
    ["compare", "{f}", "lenet5"],
    ["check", "{f}", "--max-params", "1M"],
], ids=lambda a: "-".join(a[:3]).replace("{f}", "F").replace("{out}/", ""))
def test_pickled_code_never_runs(invoke, evil, out_dir, kind, args):
    marker, paths = evil
    assert_one_line_error(*invoke(*[a.format(f=paths[kind], out=out_dir) for a in args]))
    assert not marker.exists(), "unpickling ran code"
    assert_empty(out_dir)


def test_pickled_code_never_runs_through_the_library(evil):
    marker, paths = evil
    for path in paths.values():
        with pytest.raises(CnnscopeError):
            cnnscope.load_model(str(path))
        with pytest.raises(CnnscopeError):
            cnnscope.summary(str(path))
        with pytest.raises(CnnscopeError):
            cnnscope.load_model("lenet5", weights=str(path))
    assert not marker.exists()


def test_pickled_code_never_runs_in_a_real_process(cli, evil, out_dir):
    marker, paths = evil
    for path in paths.values():
        assert_one_line_error(*cli("export", path, "-o", out_dir / "m.onnx"))
    assert not marker.exists()
    assert_empty(out_dir)


# ------------------------------------------------------------------------------------ output paths

@pytest.fixture
def own_copy(files, tmp_path):
    """A private copy of the lenet5 artifact (tests below may try to overwrite it)."""
    path = tmp_path / "in" / "model.pt"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes((files / "lenet5.pt").read_bytes())
    return path


@pytest.mark.parametrize("command", [
    ["summary"],
    ["explain", "{f}", "0"],
    ["check", "--max-params", "1G"],
    ["compare", "lenet5"],
], ids=lambda c: c[0])
def test_output_equal_to_the_input_is_refused(invoke, own_copy, command):
    before = own_copy.read_bytes()
    args = [command[0], own_copy] + [a.format(f=own_copy) for a in command[1:] if a != "{f}"]
    code, out, err = invoke(*args, "-o", own_copy)
    assert own_copy.read_bytes() == before, "the input file was overwritten"
    assert_one_line_error(code, out, err, contains="is the input file")


def test_output_equal_to_the_user_code_file_is_refused(invoke, nets):
    before = nets.read_text()
    code, out, err = invoke("summary", f"{nets}:lenet", "-i", "1x28x28", "-o", nets)
    assert nets.read_text() == before, "the user's code was overwritten"
    assert_one_line_error(code, out, err, contains="is the input file")


def test_save_model_never_overwrites_its_source(own_copy):
    before = own_copy.read_bytes()
    with pytest.raises(CnnscopeError, match="is the input file"):
        cnnscope.save_model(cnnscope.load_model(str(own_copy)), own_copy)
    assert own_copy.read_bytes() == before


@pytest.mark.parametrize("args", [
    ["summary", "lenet5"], ["explain", "lenet5", "0"], ["export", "lenet5"],
    ["check", "lenet5", "--max-params", "1G"], ["compare", "lenet5", "mnist_cnn"],
], ids=lambda a: a[0])
def test_output_folder_that_does_not_exist(invoke, tmp_path, args):
    target = tmp_path / "no" / "such" / ("m.onnx" if args[0] == "export" else "r.txt")
    assert_one_line_error(*invoke(*args, "-o", target), contains="does not exist")
    assert not (tmp_path / "no").exists()


def test_output_below_a_file(invoke, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert_one_line_error(*invoke("summary", "lenet5", "-o", blocker / "s.txt"), contains="does not exist")
    assert_one_line_error(*invoke("export", "lenet5", "-o", blocker / "m.onnx"), contains="does not exist")
    assert blocker.read_text() == "x"


def test_output_that_is_a_folder(invoke, out_dir):
    assert_usage_error(*invoke("summary", "lenet5", "-o", out_dir), contains="directory")
    assert_usage_error(*invoke("export", "lenet5", "-o", out_dir), contains="directory")
    assert_empty(out_dir)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write into a read-only folder")
@pytest.mark.parametrize("args", [["summary", "lenet5"], ["export", "lenet5"], ["check", "lenet5", "--max-params", "1G"]],
                         ids=lambda a: a[0])
def test_read_only_output_folder(invoke, out_dir, args):
    out_dir.chmod(0o555)
    try:
        target = out_dir / ("m.onnx" if args[0] == "export" else "r.txt")
        assert_one_line_error(*invoke(*args, "-o", target), contains="not writable")
        assert_empty(out_dir)
    finally:
        out_dir.chmod(0o755)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
@pytest.mark.parametrize("args", [
    ["summary", "lenet5", "-o", "/proc/cnnscope-test.txt"],
    ["export", "lenet5", "-o", "/proc/cnnscope-test.onnx"],
], ids=lambda a: a[0])
def test_unwritable_output_folder(invoke, args):
    assert_one_line_error(*invoke(*args), contains="cannot write")


# ------------------------------------------------------------------------------------ Ctrl-C during a write

@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, OSError])
def test_atomic_write_leaves_no_partial_file(tmp_path, interrupt):
    from cnnscope.fileio import atomic_write

    target = tmp_path / "model.pt"

    def half_then_stop(tmp):
        tmp.write_bytes(b"partial")
        raise interrupt()

    with pytest.raises(interrupt):
        atomic_write(target, half_then_stop)
    assert os.listdir(tmp_path) == []
    # an existing file is kept as it was, never half-replaced
    target.write_bytes(b"the old, complete file")
    with pytest.raises(interrupt):
        atomic_write(target, half_then_stop)
    assert os.listdir(tmp_path) == ["model.pt"] and target.read_bytes() == b"the old, complete file"


def test_interrupted_save_model_leaves_no_file(tmp_path, monkeypatch):
    real_save = torch.save

    def save_half_then_ctrl_c(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        with open(f, "r+b") as fh:
            fh.truncate(100)
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", save_half_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        cnnscope.save_model(cnnscope.load_model("lenet5"), tmp_path / "lenet5.pt")
    assert os.listdir(tmp_path) == []


def assert_interrupted(code, out, err):
    """Ctrl-C: exit 130 (128 + SIGINT) and one line saying nothing was written."""
    assert_one_line_error(code, out, err, expected_code=130, contains="no output file was written")


SELF_INTERRUPTING = '''\
import os, signal
from torch import nn

CALLS = [0]


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)

    def forward(self, x):
        CALLS[0] += 1
        if CALLS[0] == 2:          # the reference forward ran; now the exporter is tracing into its temp folder
            os.kill(os.getpid(), signal.SIGINT)
        return self.conv(x).mean((2, 3))


def model():
    return Net()
'''


def test_ctrl_c_during_export_leaves_nothing(cli, tmp_path, out_dir):
    src = tmp_path / "in" / "interrupting.py"
    src.parent.mkdir()
    src.write_text(SELF_INTERRUPTING)
    code, out, err = cli("export", f"{src}:model", "-i", "1x16x16", "-o", out_dir / "m.onnx")
    assert_interrupted(code, out, err)
    assert_empty(out_dir)


def test_ctrl_c_in_a_real_process_writing_a_report(tmp_path, out_dir):
    """SIGINT while `cnnscope summary -o` is writing (the writer is slowed down so the signal lands in it)."""
    driver = tmp_path / "driver.py"
    driver.write_text(
        "import os, signal, sys, time\n"
        "import cnnscope.fileio as fio\n"
        "real = fio.atomic_path\n"
        "import contextlib\n"
        "@contextlib.contextmanager\n"
        "def slow(out):\n"
        "    with real(out) as tmp:\n"
        "        yield tmp\n"
        "        tmp.write_text('partial')\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        time.sleep(5)\n"
        "fio.atomic_path = slow\n"
        "from cnnscope.cli import run\n"
        "sys.argv = ['cnnscope'] + sys.argv[1:]\n"
        "run()\n")
    proc = subprocess.run([sys.executable, str(driver), "summary", "lenet5", "-o", str(out_dir / "s.txt")],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": ROOT})
    assert_interrupted(proc.returncode, proc.stdout, proc.stderr)
    assert_empty(out_dir)


# ------------------------------------------------------------------------------------ budgets: exit 1

def test_budget_exceeded_is_exit_1_with_one_line(invoke, out_dir):
    code, out, err = invoke("check", "lenet5", "--max-params", "10K")
    assert_one_line_error(code, out, err, expected_code=1, contains="1 of 1 checks failed: lenet5 params")
    assert "EXCEEDED" in out
    code, out, err = invoke("check", "lenet5", "--max-params", "10K", "-o", out_dir / "report.txt")
    assert code == 1 and "EXCEEDED" in (out_dir / "report.txt").read_text()   # the report is written on failure too


def test_budget_held_is_exit_0(invoke):
    code, out, err = invoke("check", "lenet5", "--max-params", "62K")
    assert code == 0, err


# ------------------------------------------------------------------------------------ transforms

TRANSFORMS = {
    "prune": ["--ratio", "0.5"],
    "reduce": [],
    "stride": [],
    "factorize": [],
}


@pytest.mark.parametrize("command", list(TRANSFORMS))
def test_transform_bad_inputs_write_nothing(invoke, files, evil, out_dir, own_copy, command):
    extra = TRANSFORMS[command]
    marker, paths = evil
    out = out_dir / "t.pt"
    cases = [
        (["resnet5O"], "closest: resnet50"),
        ([files / "half.pt"], "corrupt or truncated"),
        ([files / "missing.pt"], "does not exist"),
        ([paths["artifact"]], None),
        ([paths["plain_pickle"]], None),
        (["lenet5", "--weights", paths["state_dict"]], None),
        (["lenet5", "--weights", files / "mnist_sd.pt"], "do not fit"),
        (["lenet5", "--input-size", "3xfoo"], "input size"),
        (["alexnet", "--input-size", "8"], "features.2"),
    ]
    for args, message in cases:
        assert_one_line_error(*invoke(command, *args, *extra, "-o", out), contains=message)
        assert_empty(out_dir)
    assert not marker.exists()
    # never over the input
    before = own_copy.read_bytes()
    assert_one_line_error(*invoke(command, own_copy, *extra, "-o", own_copy), contains="input file")
    assert own_copy.read_bytes() == before
    # a folder that does not exist
    assert_one_line_error(*invoke(command, "lenet5", *extra, "-o", out_dir / "no" / "t.pt"), contains="does not exist")
    assert_empty(out_dir)


@pytest.mark.parametrize("args,message", [
    (["--ratio", "1.5"], "ratio"),
    (["--ratio", "0"], "ratio"),
    (["--ratio", "half"], "ratio"),
    (["--ratio", "0.5", "--criterion", "l3"], "closest"),
    (["--ratio", "0.5", "--ignore", "no_such_layer*"], "no_such_layer"),
    (["--target-macs", "1"], None),
])
def test_prune_bad_options(invoke, out_dir, args, message):
    assert_one_line_error(*invoke("prune", "lenet5", *args, "-o", out_dir / "p.pt"), contains=message)
    assert_empty(out_dir)


def test_factorize_unknown_method(invoke, out_dir):
    assert_usage_error(*invoke("factorize", "lenet5", "--method", "magic", "-o", out_dir / "f.pt"))
    assert_empty(out_dir)


def test_stride_without_an_applicable_site(invoke, nets, out_dir):
    # audio is 1-D; this model has no conv followed by a pool at all
    (nets.parent / "flat.py").write_text("from torch import nn\n\ndef model():\n"
                                         "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), "
                                         "nn.Linear(4 * 30 * 30, 2))\n")
    assert_one_line_error(*invoke("stride", f"{nets.parent / 'flat.py'}:model", "-i", "3x32x32",
                                  "-o", out_dir / "s.pt"))
    assert_empty(out_dir)
