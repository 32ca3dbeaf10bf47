"""The command line as a user runs it."""
import json
import os
import subprocess
import sys

import pytest

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


def _table_names(out: str) -> list[str]:
    """The first column of the summary table (rows between the dashes and the first blank line)."""
    lines = out.splitlines()
    dash = next(i for i, line in enumerate(lines) if line.startswith("---"))
    width = len(lines[dash].split("  ")[0])
    rows = []
    for line in lines[dash + 1:]:
        if not line.strip() or line.startswith("("):
            break
        rows.append(line[:width].rstrip())
    return rows


@pytest.mark.parametrize("model", ["resnet18", "vit_b_16"])
def test_summary_table_keeps_the_tree(cli, model):
    """Every row's qualified name can be read back from the table (issue 13: nesting was lost)."""
    import json

    from cnnscope.report.render import names_from_tree

    code, out, err = cli("summary", model, "--depth", "9", "--no-rf")
    assert code == 0, err
    code, js, err = cli("summary", model, "-f", "json", "--no-rf")
    layers = json.loads(js)["layers"]
    expected = [r["name"] for r in layers]
    # a module the forward runs M times (resnet's BasicBlock.relu: twice) has M rows, one per call
    with_calls = [r["name"] for r in layers for _ in range(max(1, r["calls"]))]
    assert names_from_tree(_table_names(out)) == with_calls
    code, out, err = cli("summary", model)                # the default table folds below depth 2
    shown = names_from_tree(_table_names(out))
    assert shown == [n for r, n in zip(layers, expected) if n.count(".") < 2 for _ in range(max(1, r["calls"]))]
    assert f"({len(expected) - len(set(shown))} deeper rows folded" in out


def test_summary_depth_zero_prints_totals_only(cli):
    code, out, err = cli("summary", "lenet5", "--depth", "0")
    assert code == 0 and "totals only" in out and "Params:" in out


def test_print_summary_shows_the_table():
    import cnnscope

    s = cnnscope.summary("lenet5")
    assert str(s).startswith("Model: lenet5") and "Conv2d" in str(s)
    # by hand: params 156 + 2,416 + 48,120 + 10,164 + 850; MACs 117,600 + 240,000 + 48,000 + 10,080 + 840
    assert repr(s) == "<Summary lenet5: input 1×1×28×28, 61,706 params, 416,520 MACs, 12 layers>"


def test_csv_has_numeric_rf_columns_and_a_total_row(cli):
    import csv
    import io

    code, out, err = cli("summary", "lenet5", "-f", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    # by hand: conv 5×5 → RF 5; pool 2/2 → 5 + 1·1 = 6, jump 2; conv 5×5 → 6 + 4·2 = 14; pool → 14 + 1·2 = 16, jump 4
    assert [(r["rf_h"], r["rf_jump_h"]) for r in rows[:6]] == [("5", "1"), ("5", "1"), ("6", "2"), ("14", "2"),
                                                                ("14", "2"), ("16", "4")]
    assert rows[7]["rf_note"] == "global"
    total = rows[-1]
    assert (total["name"], total["params"], total["macs"], total["rf_h"]) == ("TOTAL", "61706", "416520", "16")


def test_input_size_may_include_the_batch(cli):
    """N×C×H×W on the CLI and in Python (issue 13); MACs scale with N: lenet5 is 416,520 per image."""
    import cnnscope

    s = cnnscope.summary("lenet5", input_size=(2, 1, 28, 28))
    assert list(s.input_shape) == [2, 1, 28, 28]
    assert s.totals.macs == 2 * 416_520
    code, out, err = cli("summary", "lenet5", "-i", "2x1x28x28", "-f", "json")
    assert code == 0, err
    assert json.loads(out)["totals"]["macs"] == 2 * 416_520
    assert_one_line_error(*cli("summary", "lenet5", "-i", "2x1x28x28", "-b", "3"), contains="--batch-size")


def test_factorize_help_names_every_registered_method(cli):
    """The --method help is written out (so --help imports no torch); it must not drift from the
    registry of rewrite methods: every registered factorization is named, with what it does."""
    from cnnscope.transforms.rewrites import METHODS

    code, out, err = cli("factorize", "--help")
    assert code == 0, err
    options = " ".join(out.split("Options:", 1)[1].split())
    listed = options.split("--method", 1)[1].split("--activation", 1)[0]
    assert [m for m in METHODS if f"{m}:" in listed] == list(METHODS)
    assert "|".join(METHODS) in listed                       # the metavar
