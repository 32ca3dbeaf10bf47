"""Class 4: outputs are regular files (or stdout with -o -); inputs that are not regular files are
refused instead of hanging."""
import os
import socket
import stat

import pytest

from tests.conftest import assert_one_line_error, run_cli


def _special(tmp_path, kind):
    path = tmp_path / f"special-{kind}"
    if kind == "chardev":
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))     # what /dev/null is, in a temp dir
    elif kind == "blockdev":
        os.mknod(path, 0o666 | stat.S_IFBLK, os.makedev(7, 0))
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        s.close()
    return path


def _can_mknod(tmp_path):
    try:
        _special(tmp_path, "chardev")
        os.remove(tmp_path / "special-chardev")
        return True
    except PermissionError:
        return False


@pytest.mark.parametrize("kind", ["chardev", "blockdev", "fifo", "socket"])
@pytest.mark.parametrize("command", [["summary", "lenet5"], ["prune", "lenet5", "--ratio", "0.5"],
                                     ["check", "lenet5", "--max-params", "1M"]])
def test_output_onto_a_special_file_is_refused(tmp_path, inproc, kind, command):
    if kind.endswith("dev") and not _can_mknod(tmp_path):
        pytest.skip("mknod needs root")
    path = _special(tmp_path, kind)
    mode = os.lstat(path).st_mode
    code, out, err = inproc(*command, "-o", path)
    assert_one_line_error(code, out, err, contains="not a regular file")
    assert os.lstat(path).st_mode == mode          # still the device / FIFO / socket it was
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_dash_is_stdout_for_text_and_refused_for_artifacts(inproc):
    code, out, err = inproc("summary", "lenet5", "-f", "json", "-o", "-")
    assert code == 0 and out.lstrip().startswith("{")
    code, out, err = inproc("prune", "lenet5", "--ratio", "0.5", "-o", "-")
    assert_one_line_error(code, out, err, contains="text reports")


@pytest.mark.parametrize("args", [["summary", "{fifo}.pt"], ["summary", "{fifo}.onnx"],
                                  ["summary", "lenet5", "--weights", "{fifo}.pt"],
                                  ["check", "lenet5", "--baseline", "{fifo}.json"],
                                  ["check", "--config", "{fifo}.toml"],
                                  ["summary", "{fifo}.py:build"]])
def test_fifo_inputs_are_refused_not_read(tmp_path, args):
    """In a subprocess with a timeout: opening a FIFO for reading would block forever."""
    filled = []
    for a in args:
        if "{fifo}" in a:
            a = str(tmp_path / "pipe") + a.replace("{fifo}", "")
            os.mkfifo(a.replace(":build", ""))
        filled.append(a)
    code, out, err = run_cli(*filled, timeout=60)
    line = assert_one_line_error(code, out, err, contains="FIFO")
    assert "does not exist" not in line
