"""Every command example in README.md, docs/*.md and every ``--help`` runs exactly as written.

Examples run in order, in one folder prepared with the files they name (``mynets.py``, an ONNX
file, an artifact, the digits data, a ``pyproject.toml`` with a check table...), so an example that
writes ``r50-pruned.pt`` feeds the one that exports it. A documented example that fails is a failing
test. Heavy ones (whole-network rewrites of big models, fine-tuning) carry the ``slow`` mark.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, run_inprocess

from .examples import all_examples, python_blocks

EXAMPLES = all_examples()

#: examples that take more than ~20 s on 2 cores (run in the slow set: `pytest -m slow`)
HEAVY = ("prune vgg16 ", "stride vgg16 -o", "reduce resnet50", "factorize resnet50", "factorize vgg16",
         "--data", "export resnet50", "export r50-pruned.pt", "export resnet50-pruned.pt", "advise resnet50",
         "advise vgg16", "prune resnet50 --target-macs", "factorize inception_v3", "advise inception_v3",
         # these read what a heavy example wrote
         "summary r50-pruned.onnx", "summary resnet50.onnx", "compare r50-pruned.pt r50-pruned.onnx",
         "summary mnist.int8.onnx", "check mnist.int8.onnx", "summary pruned.int8.onnx")

NET = '''from torch import nn


def build():
    """The README's example model: 1×64×64 images, 10 classes."""
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(32, 10))
'''

PYPROJECT = '''[tool.cnnscope.check]
baseline = "sizes.json"

[[tool.cnnscope.check.models]]
model = "lenet5"
max-params = "100K"
'''


def _world(folder):
    """The files the examples take for granted, made without downloading anything."""
    import cnnscope
    import torch

    for name in ("mynets.py", "mymodels.py", "nets.py"):
        (folder / name).write_text(NET)
    (folder / "pyproject.toml").write_text(PYPROJECT)
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        from digits_prune import write_digits_imagefolder
    finally:
        sys.path.pop(0)
    write_digits_imagefolder(str(folder / "digits"))
    torch.manual_seed(0)       # the quantize examples judge int8/float agreement on these weights
    cnnscope.save_model(cnnscope.load_model("mnist_cnn"), folder / "digits" / "mnist_cnn-digits.pt")
    from cnnscope.transforms.prune import prune_channels

    pruned = prune_channels(cnnscope.load_model(str(folder / "digits" / "mnist_cnn-digits.pt")), ratio=0.5).model
    cnnscope.save_model(pruned, folder / "digits" / "mnist_cnn-digits-pruned.pt")
    cnnscope.save_model(cnnscope.load_model("mnist_cnn"), folder / "model.pt")
    cnnscope.save_model(cnnscope.load_model(f"{folder / 'nets.py'}:build"),
                        folder / "small.pt")
    m = cnnscope.load_model("lenet5")
    torch.onnx.export(m, (torch.zeros(1, 1, 28, 28),), str(folder / "model.onnx"), dynamo=False)
    r18 = cnnscope.load_model("resnet18")
    torch.onnx.export(r18, (torch.zeros(1, 3, 224, 224),), str(folder / "resnet18.onnx"), dynamo=False)
    cnnscope.save_model(cnnscope.load_model("vgg16"), folder / "vgg16-factorized.pt")
    subprocess.run([sys.executable, "-m", "cnnscope.cli", "prune", "resnet18", "--unstructured", "--sparsity", "0.8",
                    "-o", "r18-sparse.pt"], cwd=folder, env={**os.environ, "PYTHONPATH": ROOT}, check=True,
                   capture_output=True)
    for base in ("cnnscope-baseline.json", "sizes.json"):
        subprocess.run([sys.executable, "-m", "cnnscope.cli", "check", "--baseline", base, "--update-baseline"],
                       cwd=folder, env={**os.environ, "PYTHONPATH": ROOT}, check=True, capture_output=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("examples")
    _world(folder)
    return folder


def _params():
    for ex in EXAMPLES:
        marks = []
        if ex.mark == "skip":
            marks.append(pytest.mark.skip(reason=ex.reason or "marked skip in the file"))
        if ex.mark == "slow" or any(h in ex.command for h in HEAVY):
            marks.append(pytest.mark.slow)
        yield pytest.param(ex, id=f"{ex.source}: {ex.command}", marks=marks)


@pytest.mark.parametrize("example", list(_params()))
def test_documented_example_runs(world, example):
    """Run in this process (the CLI's own entry point, minus a 4 s torch import per example)."""
    started = time.perf_counter()
    code, out, err = run_inprocess(*example.argv, cwd=world)
    seconds = time.perf_counter() - started
    assert code == 0, f"{example.source}: `{example.command}` exited {code} after {seconds:.0f} s: {err.strip()[-600:]}"
    assert "Traceback" not in err


def _python_params():
    for block in python_blocks():
        marks = [pytest.mark.skip(reason=block.reason or "marked skip in the file")] if block.mark == "skip" else []
        if block.mark == "slow":
            marks.append(pytest.mark.slow)
        yield pytest.param(block, id=block.source, marks=marks)


@pytest.mark.parametrize("block", list(_python_params()))
def test_documented_python_runs(tmp_path, block):
    """Each ```python block of the docs runs as written, as a script in an empty folder (with the
    README's example nets beside it); the README's API block also gives the numbers it shows."""
    (tmp_path / "nets.py").write_text(NET)
    script = block.code
    if block.source.startswith("README.md"):
        script += ("\nassert (s.totals.params, s.totals.macs, s.totals.flops) == (25557032, 4089184256, 8178368512)\n"
                   "assert d['totals']['params']['a'] == 11689512 and d['totals']['params']['b'] == 3055880\n"
                   "assert c.passed\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": ROOT}, timeout=600)
    assert done.returncode == 0, f"{block.source}: {done.stderr.strip()[-1500:]}"
