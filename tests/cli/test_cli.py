"""The command line as a user runs it."""
import json
import os
import subprocess
import sys

from tests.conftest import ROOT, assert_one_line_error


def test_help_does_not_import_torch():
    code = ("import sys; from cnnscope.cli import main; rc = main(['--help']); "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok', rc)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ROOT})
    assert out.returncode == 0 and "ok 0" in out.stdout, out.stderr
    assert "1 MAC = one multiply-accumulate" in out.stdout


def test_summary_table_and_json(cli):
    code, out, err = cli("summary", "resnet50", "--depth", "1")
    assert code == 0, err
    assert "25,557,032" in out and "FLOPs = 2 × MACs" in out and "layer4" in out and "layer4.0" not in out
    code, out, err = cli("summary", "lenet5", "-f", "json")
    d = json.loads(out)
    assert d["totals"]["params"] == 61706


def test_csv_markdown_and_output_file(cli, tmp_path):
    code, out, _ = cli("summary", "lenet5", "-f", "csv")
    assert code == 0 and out.splitlines()[0].startswith("name,type,depth,output_shape,params,macs")
    code, out, _ = cli("summary", "lenet5", "-f", "markdown")
    assert code == 0 and "| `0`" in out
    target = tmp_path / "s.json"
    code, out, err = cli("summary", "lenet5", "-f", "json", "-o", target)
    assert code == 0 and json.loads(target.read_text())["model"] == "lenet5"


def test_unknown_model_suggests(cli):
    line = assert_one_line_error(*cli("summary", "resnet5O"))
    assert "resnet50" in line


def test_malformed_input_size(cli):
    assert_one_line_error(*cli("summary", "resnet18", "--input-size", "3x224xfoo"), contains="input size")


def test_input_too_small_names_layer_and_arithmetic(cli):
    # 6×6: the stem itself has no output, ⌊(6 + 4 − 11)/4⌋ + 1 = 0
    assert_one_line_error(*cli("summary", "alexnet", "--input-size", "6"),
                          contains=["features.0", "(6 + 2·2 − 11)/4 + 1 < 1"])
    # 8×8: the stem gives ⌊(8 + 4 − 11)/4⌋ + 1 = 1 pixel, and the 3×3 pool after it has none
    assert_one_line_error(*cli("summary", "alexnet", "--input-size", "8"),
                          contains=["features.2", "(1 + 2·0 − 3)/2 + 1 < 1"])


def test_missing_and_corrupt_files(cli, tmp_path):
    assert_one_line_error(*cli("summary", tmp_path / "nope.pt"), contains="does not exist")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x02not really a torch file")
    assert_one_line_error(*cli("summary", bad))


def test_list(cli):
    code, out, err = cli("list", "--filter", "resnet5*")
    assert code == 0 and "resnet50" in out and "25.6M" in out
    code, out, err = cli("list", "--filter", "lenet5", "-f", "json")
    assert json.loads(out)[0]["params"] == 61706
