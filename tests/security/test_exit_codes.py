"""Class 7: bad input is exit 2 with one line naming the problem — never 3, never 1."""
import json
import os

import pytest
import torch

from tests.conftest import assert_one_line_error

from .conftest import write_artifact

CASES = [
    (["summary", "lenet5", "--batch-size", "1e20"], "batch-size"),
    (["summary", "lenet5", "--batch-size", "100000000000000000000"], "batch-size"),
    (["prune", "lenet5", "--ratio", "0.5", "--seed", "1e23", "--dry-run"], "seed"),
    (["prune", "lenet5", "--ratio", "0.5", "--seed", str(10 ** 30), "--dry-run"], "seed"),
    (["prune", "lenet5", "--ratio", "nan", "--dry-run"], "ratio"),
    (["prune", "lenet5", "--ratio", "inf", "--dry-run"], "ratio"),
    (["check", "lenet5", "--baseline", "{base}", "--max-growth", "nan"], "max-growth"),
    (["check", "lenet5", "--baseline", "{base}", "--max-growth", "inf%"], "max-growth"),
    (["export", "lenet5", "-o", "{tmp}/x.onnx", "--rtol", "nan"], "rtol"),
    (["export", "lenet5", "-o", "{tmp}/x.onnx", "--atol", "inf"], "atol"),
    (["check", "lenet5", "--max-params", "inf"], "max-params"),
    (["check", "lenet5", "--max-params", "nan"], "max-params"),
    (["check", "lenet5", "--max-macs", "1e400"], "max-macs"),
    (["check", "lenet5", "--max-size-mb", "1e400"], "max-size-mb"),
    (["check", "lenet5", "--min-rf", "nan"], "min-rf"),
    (["summary", "lenet5", "-i", "1x99999999999x28"], "input size"),
    (["prune", "lenet5", "--ratio", "0.5", "--lr", "inf", "--data", "{tmp}", "--dry-run"], None),
]


@pytest.mark.parametrize("args, names", CASES)
def test_huge_and_non_finite_numbers(args, names, tmp_path, inproc):
    base = tmp_path / "b.json"
    base.write_text(json.dumps({"schema": "cnnscope.baseline/1", "models": {}}))
    args = [a.replace("{base}", str(base)).replace("{tmp}", str(tmp_path)) for a in args]
    code, out, err = inproc(*args)
    line = assert_one_line_error(code, out, err)
    if names:
        assert names in line, line


@pytest.mark.parametrize("content", [
    {"schema": "cnnscope.baseline/1", "models": {"lenet5": {"params": "many"}}},
    {"schema": "cnnscope.baseline/1", "models": {"lenet5": {"input_shape": 5}}},
    {"schema": "cnnscope.baseline/1", "models": {"lenet5": {"input_shape": ["a"]}}},
    {"schema": "cnnscope.baseline/1", "models": {"lenet5": {"params": -1}}},
    {"schema": "cnnscope.baseline/1", "models": {"lenet5": {"params": True}}},
    {"schema": "cnnscope.baseline/1", "models": {"lenet5": []}},
    {"schema": "cnnscope.baseline/1", "models": []},
    {"schema": "cnnscope.check/1", "models": [{"name": None}]},
    {"schema": "cnnscope.check/1", "models": [{"name": "lenet5", "input_shape": {"x": 1}}]},
    [1, 2, 3],
])
def test_baselines_of_the_wrong_shape(content, tmp_path, inproc):
    path = tmp_path / "b.json"
    path.write_text(json.dumps(content))
    code, out, err = inproc("check", "lenet5", "--baseline", path)
    assert_one_line_error(code, out, err, contains="baseline")


def test_deeply_nested_baseline_json(tmp_path, inproc):
    path = tmp_path / "b.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    code, out, err = inproc("check", "lenet5", "--baseline", path)
    assert_one_line_error(code, out, err)


@pytest.mark.parametrize("content", [b"\xff\xfe not utf-8 \x80", b"[tool.cnnscope.check\n", b"\x00" * 10])
def test_bad_config_files(content, tmp_path, inproc):
    path = tmp_path / "c.toml"
    path.write_bytes(content)
    code, out, err = inproc("check", "--config", path)
    assert_one_line_error(code, out, err, contains="c.toml")


def test_unreadable_config(tmp_path, inproc):
    path = tmp_path / "c.toml"
    path.write_text("[tool.cnnscope.check]\n")
    os.chmod(path, 0)
    if os.access(path, os.R_OK):
        pytest.skip("root reads any file")
    code, out, err = inproc("check", "--config", path)
    assert_one_line_error(code, out, err, contains="c.toml")


@pytest.mark.parametrize("base, says", [
    ("not a dict", "mapping"),
    ({"source": "nope"}, "unknown model source"),
    ({"source": "torchvision", "name": 5}, "name"),
    ({"source": "torchvision", "name": "resnet999"}, "resnet999"),
    ({"source": "builtin", "name": "lenet5", "extra": 1}, "unexpected"),
    ({"source": "code", "ref": 5}, "malformed"),
    ({"source": "code", "ref": "nocolon"}, "malformed"),
    ({"source": "code", "ref": "x.py:not an identifier"}, "malformed"),
    ({"source": "builtin", "name": "lenet5", "input_size": [0, -1]}, "input_size"),
])
def test_malformed_bases(base, says, tmp_path, inproc):
    art = write_artifact(tmp_path / "a.pt", base)
    code, out, err = inproc("summary", art)
    assert_one_line_error(code, out, err, contains=says)


@pytest.mark.parametrize("plan", [
    "not a list", [5], [{"kind": "prune"}], [{"kind": "prune", "tensors": 5}],
    [{"kind": "prune", "tensors": [["nope", 0, 1, 0]]}], [{"kind": "reduce"}], [{"kind": "factorize", "sites": "x"}],
    [{"kind": "stride", "sites": [{"conv": 1}]}], [{"kind": "from-the-future"}],
])
def test_malformed_plan_steps(plan, tmp_path, inproc):
    path = tmp_path / "a.pt"
    torch.save({"format": "cnnscope/1", "base": {"source": "builtin", "name": "lenet5", "kwargs": {}},
                "plan": plan, "state_dict": {}}, path)
    code, out, err = inproc("summary", path)
    assert_one_line_error(code, out, err)


def test_state_dict_that_is_not_tensors(tmp_path, inproc):
    art = write_artifact(tmp_path / "a.pt", {"source": "builtin", "name": "lenet5", "kwargs": {}},
                         state_dict={"0.weight": [1, 2, 3]})
    code, out, err = inproc("summary", art)
    assert_one_line_error(code, out, err, contains="tensors")


def test_non_utf8_file_names_in_every_output_format(tmp_path, inproc):
    name = os.fsdecode(b"caf\xe9_net.py")
    (tmp_path / name).write_text("from torch import nn\n\ndef build():\n    return nn.Sequential(nn.Conv2d(3, 4, 3))\n")
    spec = f"{tmp_path / name}:build"
    for fmt in ("table", "json", "csv", "markdown"):
        code, out, err = inproc("summary", spec, "-i", "16", "-f", fmt)
        assert code == 0, (fmt, err)
    for fmt in ("text", "json", "junit", "github"):
        code, out, err = inproc("check", spec, "-i", "16", "--max-params", "1M", "-f", fmt, "-o",
                                tmp_path / f"r.{fmt}")
        assert code == 0, (fmt, err)


DEEP = '''
from torch import nn

def build():
    m = nn.Conv2d(3, 3, 1)
    for _ in range(2000):
        m = nn.Sequential(m)
    return m
'''


def test_model_nested_2000_deep(tmp_path, inproc):
    (tmp_path / "deep.py").write_text(DEEP)
    code, out, err = inproc("summary", f"{tmp_path / 'deep.py'}:build", "-i", "8")
    assert code in (0, 2), err
    if code == 2:
        assert_one_line_error(code, out, err, contains="deep")


def test_a_non_regular_file_is_not_called_missing(tmp_path, inproc):
    (tmp_path / "dir.pt").mkdir()
    code, out, err = inproc("summary", tmp_path / "dir.pt")
    line = assert_one_line_error(code, out, err, contains="folder")
    assert "does not exist" not in line
