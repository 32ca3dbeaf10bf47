"""Class 3: no file a command reads is ever overwritten; replacing an output keeps its mode."""
import os
import stat

import pytest
import torch

from tests.conftest import assert_one_line_error

NET = "from torch import nn\n\ndef build():\n    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3))\n"


@pytest.fixture
def work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text(NET)
    from cnnscope import load_model

    torch.save(load_model("lenet5").state_dict(), tmp_path / "w.pt")
    return tmp_path


def _unchanged(path, before):
    return path.read_bytes() == before


@pytest.mark.parametrize("command, victim", [
    (["prune", "lenet5", "--weights", "w.pt", "--ratio", "0.5", "-o", "w.pt"], "w.pt"),
    (["prune", "net.py:build", "-i", "16", "--ratio", "0.5", "-o", "net.py"], "net.py"),
    (["reduce", "net.py:build", "-i", "16", "-o", "net.py"], "net.py"),
    (["export", "net.py:build", "-i", "16", "-o", "net.py"], "net.py"),
    (["summary", "lenet5", "--weights", "w.pt", "-o", "w.pt"], "w.pt"),
    (["summary", "net.py:build", "-i", "16", "-o", "net.py"], "net.py"),
    (["check", "lenet5", "--max-params", "1M", "-o", "pyproject.toml"], "pyproject.toml"),
    (["check", "net.py:build", "-i", "16", "--max-params", "1M", "--junit-xml", "net.py"], "net.py"),
    (["compare", "lenet5", "net.py:build", "-o", "net.py"], "net.py"),
])
def test_inputs_are_never_overwritten(work, inproc, command, victim):
    (work / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    before = (work / victim).read_bytes()
    code, out, err = inproc(*command)
    assert_one_line_error(code, out, err, contains="input")
    assert _unchanged(work / victim, before)
    assert not [p for p in os.listdir(work) if p.endswith(".tmp")]


def test_config_and_baseline_are_inputs(work, inproc):
    (work / "cnn.toml").write_text('[tool.cnnscope.check]\n[[tool.cnnscope.check.models]]\nmodel = "lenet5"\n'
                                   'max-params = "1M"\n')
    before = (work / "cnn.toml").read_bytes()
    code, out, err = inproc("check", "--config", "cnn.toml", "-o", "cnn.toml")
    assert_one_line_error(code, out, err, contains="input")
    assert _unchanged(work / "cnn.toml", before)
    code, out, err = inproc("check", "lenet5", "--baseline", "b.json", "--update-baseline")
    assert code == 0, err
    before = (work / "b.json").read_bytes()
    code, out, err = inproc("check", "lenet5", "--baseline", "b.json", "-f", "json", "-o", "b.json")
    assert_one_line_error(code, out, err, contains="input")
    assert _unchanged(work / "b.json", before)


def test_code_file_named_by_an_artifact_is_an_input(work, inproc):
    from cnnscope import load_model, save_model

    save_model(load_model("net.py:build"), "n.pt")
    before = (work / "net.py").read_bytes()
    code, out, err = inproc("prune", "n.pt", "-i", "16", "--ratio", "0.5", "--trust-code", "-o", "net.py")
    assert_one_line_error(code, out, err, contains="input")
    assert _unchanged(work / "net.py", before)


def test_output_inside_the_data_folder_is_refused(work, inproc):
    from PIL import Image

    for split in ("train", "val"):
        for c in ("a", "b"):
            (work / "d" / split / c).mkdir(parents=True)
            Image.new("L", (28, 28)).save(work / "d" / split / c / "0.png")
    code, out, err = inproc("prune", "lenet5", "--ratio", "0.5", "--data", "d", "--epochs", "0",
                            "-o", "d/train/a/x.pt")
    assert_one_line_error(code, out, err, contains="reads")
    assert not (work / "d" / "train" / "a" / "x.pt").exists()


def test_replacing_an_output_keeps_its_mode_and_refuses_write_protected(work, inproc):
    target = work / "s.txt"
    target.write_text("old")
    os.chmod(target, 0o640)
    code, out, err = inproc("summary", "lenet5", "-o", target)
    assert code == 0, err
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert "lenet5" in target.read_text() or "Conv2d" in target.read_text()
    os.chmod(target, 0o444)
    code, out, err = inproc("summary", "lenet5", "-o", target)
    assert_one_line_error(code, out, err, contains="write-protected")
