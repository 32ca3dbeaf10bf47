"""Class 6: hostile files and sizes end in exit 2 within bounded time and memory, before allocating."""
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
import torch

from tests.conftest import ROOT, assert_one_line_error

from .conftest import write_artifact

BOMB_BYTES = 6 << 30    # what the bomb declares: 6 GiB of zeros, deflated into ~6 MB


def _zip_bomb(path):
    """A real artifact plus one deflated entry that inflates to 6 GiB."""
    write_artifact(path, {"source": "builtin", "name": "lenet5", "kwargs": {}})
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as z:
        prefix = z.namelist()[0].split("/")[0]
        with z.open(f"{prefix}/data/bomb", "w", force_zip64=True) as f:
            block = bytes(1 << 24)
            for _ in range(BOMB_BYTES // len(block)):
                f.write(block)
    return path


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit (util-linux)")
def test_zip_bomb_is_refused_under_a_memory_cap(tmp_path):
    bomb = _zip_bomb(tmp_path / "bomb.pt")
    assert os.path.getsize(bomb) < 16 << 20
    cap = 5 << 30   # torch needs ~4 GB of address space to import; inflating the bomb needs 6 GiB more
    proc = subprocess.run(["prlimit", f"--as={cap}", sys.executable, "-m", "cnnscope.cli", "summary", str(bomb)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": ROOT, "OPENBLAS_NUM_THREADS": "1"})
    assert_one_line_error(proc.returncode, proc.stdout, proc.stderr, contains="zip bomb")


def test_legacy_pickle_files_are_refused_before_reading(tmp_path, inproc):
    path = tmp_path / "legacy.pt"
    torch.save({"a": torch.zeros(3)}, path, _use_new_zipfile_serialization=False)
    code, out, err = inproc("summary", "lenet5", "--weights", path)
    assert_one_line_error(code, out, err, contains="legacy")


def test_onnx_summary_never_loads_external_data(tmp_path, inproc):
    """An ONNX file whose weights live in an external file that does not exist still summarises:
    the data is never read (a 2 GB+ model stays cheap, a hostile location is never opened)."""
    import onnx
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], vals=[0.0] * 108)
    w.data_location = TensorProto.EXTERNAL
    w.ClearField("float_data")
    for k, v in (("location", "/nonexistent/weights.bin"), ("offset", "0"), ("length", "432")):
        entry = w.external_data.add()
        entry.key, entry.value = k, v
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])], [w])
    path = tmp_path / "ext.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    code, out, err = inproc("summary", path, "-f", "json")
    assert code == 0, err
    import json

    totals = json.loads(out)["totals"]
    assert totals["params"] == 4 * 3 * 3 * 3
    assert totals["macs"] == 4 * 6 * 6 * 3 * 3 * 3      # C_out × H_out × W_out × C_in × K × K


def _need_bytes(shape):
    n = 1
    for d in shape:
        n *= d
    return 4 * n


def test_export_refuses_an_input_larger_than_memory_before_allocating(tmp_path, inproc):
    code, out, err = inproc("export", "lenet5", "-i", "1x200000x200000", "-o", tmp_path / "x.onnx")
    line = assert_one_line_error(code, out, err, contains=["needs at least", "available"])
    assert f"{_need_bytes((1, 1, 200000, 200000)):,} bytes" in line        # the input alone, 160 GB
    assert os.listdir(tmp_path) == []


def test_transform_verification_refuses_a_batch_larger_than_memory(inproc):
    code, out, err = inproc("prune", "lenet5", "--ratio", "0.5", "--dry-run", "-b", "100000000")
    assert_one_line_error(code, out, err, contains="needs at least")


def test_fine_tuning_refuses_a_batch_larger_than_memory(tmp_path, inproc):
    from PIL import Image

    for split in ("train", "val"):
        for c in range(10):
            (tmp_path / split / str(c)).mkdir(parents=True)
            Image.new("L", (28, 28)).save(tmp_path / split / str(c) / "0.png")
    code, out, err = inproc("prune", "lenet5", "--ratio", "0.5", "--dry-run", "--data", tmp_path,
                            "--train-batch", "2000000000")
    assert_one_line_error(code, out, err, contains=["needs at least", "--train-batch"])


def test_memory_bound_is_a_lower_bound_of_a_real_forward():
    """forward_bytes() ≤ what the real forward allocates: input + conv1 output, by hand for lenet5."""
    import cnnscope
    from cnnscope.limits import forward_bytes

    a = cnnscope.analyze("lenet5")
    need = forward_bytes(a)
    input_bytes = 1 * 1 * 28 * 28 * 4
    assert need >= input_bytes + 6 * 28 * 28 * 4       # conv1 (6 channels, padded 5×5) is the largest activation
    assert need <= input_bytes + 2 * 6 * 28 * 28 * 4
