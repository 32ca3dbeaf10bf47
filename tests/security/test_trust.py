"""Class 1: a file may describe a model but never choose code to run."""
import os
import warnings

import pytest
import torch

from cnnscope.errors import CnnscopeError
from tests.conftest import assert_one_line_error

from .conftest import write_artifact

DENIED = ["os:system", "subprocess:run", "runpy:run_path", "torch.hub:load", "builtins:eval", "pickle:loads",
          "importlib:import_module", "shutil:rmtree", "torch.serialization:load"]


@pytest.mark.parametrize("ref", DENIED)
def test_denied_references_never_run_from_an_artifact(ref, tmp_path, inproc):
    marker = tmp_path / "PWNED"
    art = write_artifact(tmp_path / "evil.pt", {"source": "code", "ref": ref,
                                                 "kwargs": {"command": f"touch {marker}", "args": ["touch", str(marker)]}})
    for command in (["summary", art], ["check", art, "--max-params", "1G"], ["explain", art, "0"],
                    ["advise", art], ["export", art, "-o", tmp_path / "x.onnx"], ["summary", art, "--trust-code"],
                    ["summary", art, "--trust", ref.split(":")[0]]):
        code, out, err = inproc(*command)
        assert code == 2, (command, code, err)
        assert "never calls" in err or "wants to" in err, err
    assert not marker.exists()
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("ref", DENIED)
def test_denied_references_are_refused_even_when_the_user_names_them(ref, tmp_path):
    from cnnscope import load_model

    with pytest.raises(CnnscopeError, match="never calls"):
        load_model(ref)


def test_library_refuses_artifact_code_unless_trusted(code_dir):
    from cnnscope import load_model, save_model

    save_model(load_model(f"{code_dir / 'nets.py'}:build"), code_dir / "m.pt")
    os.remove(code_dir / "MARKER")
    with pytest.raises(CnnscopeError, match=r"trust_code=True"):
        load_model(str(code_dir / "m.pt"))
    assert not (code_dir / "MARKER").exists()          # refused before the file was imported
    model = load_model(str(code_dir / "m.pt"), trust_code=True)
    assert isinstance(model[0], torch.nn.Conv2d)
    assert (code_dir / "MARKER").exists()


def test_code_file_beside_the_artifact_is_refused_then_allowed(code_dir, inproc):
    from cnnscope import load_model, save_model

    save_model(load_model(f"{code_dir / 'nets.py'}:build"), code_dir / "m.pt")
    os.remove(code_dir / "MARKER")
    code, out, err = inproc("summary", code_dir / "m.pt", "-i", "16")
    line = assert_one_line_error(code, out, err, contains=["nets.py", "--trust-code"])
    assert "build" in line
    assert not (code_dir / "MARKER").exists()
    for allow in (["--trust-code"], ["--trust", code_dir / "nets.py"]):
        code, out, err = inproc("summary", code_dir / "m.pt", "-i", "16", *allow)
        assert code == 0, err
    assert (code_dir / "MARKER").exists()


def test_artifact_stores_its_code_relative_with_a_hash_and_travels(code_dir, tmp_path_factory):
    import shutil

    from cnnscope import load_model, save_model

    save_model(load_model(f"{code_dir / 'nets.py'}:build"), code_dir / "m.pt")
    data = torch.load(code_dir / "m.pt", weights_only=True)
    assert data["base"]["ref"] == "nets.py:build"
    import hashlib

    assert data["base"]["sha256"] == hashlib.sha256((code_dir / "nets.py").read_bytes()).hexdigest()
    moved = tmp_path_factory.mktemp("moved")
    shutil.copy(code_dir / "nets.py", moved)
    shutil.copy(code_dir / "m.pt", moved)
    assert isinstance(load_model(str(moved / "m.pt"), trust_code=True)[0], torch.nn.Conv2d)


def test_changed_code_file_is_reported(code_dir, inproc):
    from cnnscope import load_model, save_model
    from cnnscope.loading.trust import CodeChangedWarning

    save_model(load_model(f"{code_dir / 'nets.py'}:build"), code_dir / "m.pt")
    with open(code_dir / "nets.py", "a") as f:
        f.write("\n# edited after the artifact was written\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_model(str(code_dir / "m.pt"), trust_code=True)
    assert any(issubclass(w.category, CodeChangedWarning) for w in caught)
    code, out, err = inproc("summary", code_dir / "m.pt", "-i", "16", "--trust-code")
    assert code == 0
    assert "warning:" in err and "changed since" in err


def test_absolute_code_path_in_an_artifact_needs_naming(code_dir, inproc):
    art = write_artifact(code_dir / "abs.pt", {"source": "code", "ref": f"{code_dir / 'nets.py'}:build", "kwargs": {}})
    code, out, err = inproc("summary", art, "-i", "16", "--trust-code")
    assert_one_line_error(code, out, err, contains="--trust")
    assert not (code_dir / "MARKER").exists()


def test_module_base_needs_the_module_named(tmp_path, inproc, monkeypatch):
    (tmp_path / "mynets_pkg").mkdir()
    (tmp_path / "mynets_pkg" / "__init__.py").write_text(
        "from torch import nn\ndef build():\n    return nn.Sequential(nn.Conv2d(3, 4, 3))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    art = write_artifact(tmp_path / "mod.pt", {"source": "code", "ref": "mynets_pkg:build", "kwargs": {}},
                         state_dict={"0.weight": torch.zeros(4, 3, 3, 3), "0.bias": torch.zeros(4)})
    code, out, err = inproc("summary", art, "-i", "16", "--trust-code")
    assert_one_line_error(code, out, err, contains="--trust mynets_pkg")
    code, out, err = inproc("summary", art, "-i", "16", "--trust", "mynets_pkg")
    assert code == 0, err


def test_project_trust_list_in_pyproject(code_dir, inproc):
    from cnnscope import load_model, save_model

    save_model(load_model(f"{code_dir / 'nets.py'}:build"), code_dir / "m.pt")
    (code_dir / "pyproject.toml").write_text('[tool.cnnscope]\ntrust = ["nets.py"]\n')
    code, out, err = inproc("summary", "m.pt", "-i", "16", cwd=code_dir)
    assert code == 0, err


@pytest.mark.parametrize("kwargs, why", [
    ({"x": torch.zeros(2)}, "plain"),
    ({"x": float("nan")}, "finite"),
    ({"__class__": 1}, None),
    ({"x": "a" * 20_000}, "characters"),
    ({"x": [[[[[[[[[[1]]]]]]]]]]}, "deeper"),
])
def test_kwargs_from_a_file_are_plain_bounded_data(kwargs, why, tmp_path, inproc):
    art = write_artifact(tmp_path / "k.pt", {"source": "builtin", "name": "lenet5", "kwargs": kwargs})
    code, out, err = inproc("summary", art)
    line = assert_one_line_error(code, out, err)
    if why:
        assert why in line


def test_torchvision_kwargs_cannot_choose_weights(tmp_path, inproc):
    art = write_artifact(tmp_path / "w.pt", {"source": "torchvision", "name": "resnet18", "weights": None,
                                             "kwargs": {"weights": "DEFAULT"}})
    code, out, err = inproc("summary", art)
    assert_one_line_error(code, out, err, contains="never downloaded")


def test_stdlib_file_is_never_run(tmp_path, inproc):
    import os as os_module

    stdlib_os = os_module.__file__
    code, out, err = inproc("summary", f"{stdlib_os}:system")
    assert_one_line_error(code, out, err, contains="never calls")


def test_a_broken_pyproject_without_cnnscope_settings_does_not_break_commands(tmp_path, inproc):
    (tmp_path / "pyproject.toml").write_text("this is [[[ not toml")
    code, out, err = inproc("summary", "lenet5", cwd=tmp_path)
    assert code == 0, err
    (tmp_path / "pyproject.toml").write_text('[tool.cnnscope]\ntrust = 5\n')
    code, out, err = inproc("summary", "lenet5", cwd=tmp_path)
    assert_one_line_error(code, out, err, contains="trust")
