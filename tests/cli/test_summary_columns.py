"""The torchinfo-style columns of `cnnscope summary` (issue 13): input and kernel shapes, param %,
trainable flags, a row per call of a shared module, and the memory estimate. Every expected value is
worked out by hand in the comment beside it."""
import csv
import io
import json

import pytest

from tests.conftest import assert_one_line_error, run_inprocess

SHARED = '''
from torch import nn

class Twice(nn.Module):
    """One 3×3 conv (3 → 3 channels, padding 1) applied twice, then a frozen 3 → 2 linear head."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(3, 2)
        self.head.bias.requires_grad_(False)

    def forward(self, x):
        x = self.pool(self.conv(self.conv(x)))
        return self.head(x.mean((2, 3)))

def build():
    return Twice()
'''


@pytest.fixture
def shared(tmp_path):
    (tmp_path / "twice.py").write_text(SHARED)
    return tmp_path


def _json(cwd, *args):
    code, out, err = run_inprocess("summary", "twice.py:build", "-i", "3x8x8", "-f", "json", *args, cwd=cwd)
    assert code == 0, err
    return json.loads(out)


def test_json_carries_every_column_worked_by_hand(shared):
    d = _json(shared)
    conv, pool, head = (next(r for r in d["layers"] if r["name"] == n) for n in ("conv", "pool", "head"))
    # conv: 3·3·3·3 + 3 = 84 params of 84 + 3·2 + 2 = 92; kernel 3×3; two calls of 81·8·8 = 5,184 MACs
    assert (conv["params"], conv["kernel_shape"], conv["calls"]) == (84, [3, 3], 2)
    assert conv["params_percent"] == pytest.approx(100 * 84 / 92)
    assert [c["macs"] for c in conv["per_call"]] == [5184, 5184] and conv["macs"] == 10368
    # the second call reads the first's output: RF 3, then 3 + 2 = 5
    assert [c["receptive_field"]["size"] for c in conv["per_call"]] == [[3, 3], [5, 5]]
    assert conv["input_shape"] == [1, 3, 8, 8] and conv["trainable"] is True
    # MaxPool2d(2) is a 2×2 window; no params, so no trainable flag
    assert (pool["kernel_shape"], pool["trainable"], pool["input_shape"]) == ([2, 2], None, [1, 3, 8, 8])
    # head: weight 6 trainable, bias 2 frozen
    assert (head["params"], head["trainable"], head["per_call"]) == (8, "partial", [])
    t = d["totals"]
    assert (t["trainable_params"], t["non_trainable_params"]) == (90, 2)
    # memory, float32: input 3·8·8·4 = 768 B; params 92·4 = 368 B; activations: two conv outputs
    # 192·4 each, the pool 48·4, the mean 3·4, the linear 2·4 = 1,536 + 192 + 12 + 8 = 1,748 B (the
    # pool's int64 argmax indices are written only for a backward: nothing reads them, so they do not count)
    assert (t["input_bytes"], t["param_bytes"], t["activation_bytes"]) == (768, 368, 1748)
    assert t["estimated_total_bytes"] == 768 + 368 + 1748


def test_table_has_a_row_per_call_and_chosen_columns(shared):
    code, out, err = run_inprocess("summary", "twice.py:build", "-i", "3x8x8", "-c", "input,kernel,params,params%,"
                                   "trainable,macs", cwd=shared)
    assert code == 0, err
    header = next(line for line in out.splitlines() if line.startswith("Layer"))
    assert header.split() == ["Layer", "Type", "Input", "shape", "Kernel", "Params", "Params", "%", "Trainable",
                              "MACs"]
    rows = {line.split("  ")[0].strip(): line.split() for line in out.splitlines()
            if line.startswith(("conv", "head", "pool"))}
    assert rows["conv (call 1 of 2)"][-6:] == ["1×3×8×8", "3×3", "84", "91.30%", "yes", "5.18K"]
    assert rows["conv (call 2 of 2)"][-6:] == ["1×3×8×8", "3×3", "(shared)", "-", "yes", "5.18K"]
    assert rows["head"][-6:] == ["1×3", "-", "8", "8.70%", "partial", "6"]
    assert "ran M times" in out and "Est. total:" in out and "2.9 KB" in out   # 2,884 B


def test_markdown_and_csv_follow_the_calls(shared):
    code, md, err = run_inprocess("summary", "twice.py:build", "-i", "3x8x8", "-f", "markdown", cwd=shared)
    row = next(line for line in md.splitlines() if "`conv` (call 2 of 2)" in line)
    assert [c.strip() for c in row.split("|")[2:-1]] == ["Conv2d", "1×3×8×8", "(shared)", "5,184", "5 /1"]
    code, out, err = run_inprocess("summary", "twice.py:build", "-i", "3x8x8", "-f", "csv", cwd=shared)
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(out))}
    assert (rows["conv"]["calls"], rows["conv"]["kernel_shape"], rows["head"]["trainable"]) == ("2", "3x3", "partial")


def test_unknown_column_is_one_line(shared):
    assert_one_line_error(*run_inprocess("summary", "lenet5", "-c", "output,flops"),
                          contains=["unknown column 'flops'", "macs"])


def test_lenet5_all_columns():
    """lenet5 (by hand): conv1 5×5, 1 → 6 channels: 156 params = 0.25% of 61,706; while it runs its
    input (1·28·28·4 = 3,136 B) and output (6·28·28·4 = 18,816 B) are alive: 21,952 B."""
    code, out, err = run_inprocess("summary", "lenet5", "-c", "all")
    assert code == 0, err
    conv = next(line.split() for line in out.splitlines() if line.lstrip("│├└─ ").startswith("0 ")
                and "Conv2d" in line)
    # the last column, backward MACs, is "-" without --training
    assert conv[2:] == ["1×1×28×28", "1×6×28×28", "5×5", "156", "0.25%", "yes", "118K", "5", "/1", "22.0", "KB", "-"]


def test_explain_shared_module_keeps_one_call_and_all_calls_apart(shared):
    code, out, err = run_inprocess("explain", "twice.py:build", "conv", "-i", "3x8x8", cwd=shared)
    assert code == 0, err
    assert "one call: 81 × 8 × 8 = 5,184 MACs" in out
    assert "all 2 calls: 2 calls × 5,184 = 10,368 MACs   (FLOPs = 2 × MACs = 20,736)" in out
