"""Class 5: SIGTERM and SIGHUP clean up exactly as SIGINT does: nothing partial is left anywhere."""
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from tests.conftest import ROOT

#: run the CLI with one function slowed down, so the signal lands while the output is being written
SLOW = r'''
import sys, time
import torch
import cnnscope.export.onnx_export as ox
from cnnscope import cli

original_save = torch.save
def slow_save(obj, f, *a, **k):
    original_save(obj, f, *a, **k)
    print("WRITING", flush=True)
    time.sleep(60)
torch.save = slow_save

original_verify = ox.verify_onnx
def slow_verify(*a, **k):
    print("WRITING", flush=True)
    time.sleep(60)
ox.verify_onnx = slow_verify
sys.exit(cli.main(sys.argv[1:]))
'''


def _run_until_writing(args, cwd, tmpdir):
    env = {**os.environ, "PYTHONPATH": ROOT, "TMPDIR": str(tmpdir)}
    proc = subprocess.Popen([sys.executable, "-c", SLOW, *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    line = ""
    while time.time() < deadline:
        line = proc.stdout.readline()
        if "WRITING" in line or proc.poll() is not None:
            break
    assert "WRITING" in line, proc.communicate(timeout=30)
    return proc


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
@pytest.mark.parametrize("command", [["prune", "lenet5", "--ratio", "0.5", "-o", "out.pt"],
                                     ["export", "lenet5", "-o", "out.onnx"]])
def test_signal_mid_write_leaves_nothing(tmp_path, sig, command):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    proc = _run_until_writing(command, work, scratch)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, (proc.returncode, err)
    assert f"Interrupted ({signal.Signals(sig).name})" in err
    assert "Traceback" not in err
    assert os.listdir(work) == []              # no output, no .tmp file or folder
    assert os.listdir(scratch) == []           # no temporary copy elsewhere
