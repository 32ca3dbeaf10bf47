"""Helpers for the attack tests: hostile artifacts, and the CLI run in this process (fast) or in a
subprocess (for signals and exit paths that must be seen from outside)."""
import pytest
import torch


def write_artifact(path, base, plan=(), state_dict=None, **extra):
    """A file shaped like a cnnscope artifact with whatever base/plan an attacker chooses."""
    torch.save({"format": "cnnscope/1", "base": base, "plan": list(plan), "state_dict": state_dict or {}, **extra},
               str(path))
    return str(path)


@pytest.fixture
def inproc(monkeypatch):
    """Run ``cnnscope ARGS`` in this process (see :func:`tests.conftest.run_inprocess`)."""
    from tests.conftest import run_inprocess

    def run(*args, cwd=None):
        if cwd is not None:
            monkeypatch.chdir(cwd)
        return run_inprocess(*args)

    return run


MARKER_CODE = '''
import os, sys
open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "MARKER"), "w").write("ran")
from torch import nn

def build():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())

def exits():
    sys.exit(0)

def interrupts():
    raise KeyboardInterrupt

def key_error():
    return {}["missing"]
'''


@pytest.fixture
def code_dir(tmp_path):
    """A folder with nets.py (which writes a MARKER file when imported) and an artifact of it."""
    (tmp_path / "nets.py").write_text(MARKER_CODE)
    return tmp_path
