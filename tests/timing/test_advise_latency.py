"""`advise --by latency`: the documents' methods applied to the real model and timed against it."""
import json

import pytest
import torch
from torch import nn

import cnnscope
from cnnscope.timing.advise_latency import ERROR_FLOOR_PCT, _output_error, advise_by_latency


def test_output_error_by_hand():
    a = nn.Identity()

    class Scaled(nn.Module):
        def forward(self, x):
            return 1.1 * x

    x = torch.randn(4, 10)
    assert _output_error(a, Scaled(), x) == pytest.approx(10.0, rel=1e-5)     # ‖0.1x‖ / ‖x‖ = 10%
    assert _output_error(a, a, x) == 0.0


def test_methods_timed_and_ranked():
    from cnnscope.transforms.prune import prune_channels

    d = advise_by_latency("lenet5", runtime="torch", runs=5)
    names = [m["method"] for m in d["methods"]]
    assert "prune (ratio 0.5, l1)" in names and "stride" in names and "factorize stack" in names
    scores = [m["ms_per_error_point"] for m in d["methods"]]
    assert scores == sorted(scores, reverse=True)
    for m in d["methods"]:
        assert m["ms_per_error_point"] == pytest.approx(m["saved_ms"] / max(m["output_error_pct"], ERROR_FLOOR_PCT))
        assert m["saved_ms"] == pytest.approx(d["original"]["median_ms"] - m["latency"]["median_ms"])
    prune = next(m for m in d["methods"] if m["method"].startswith("prune"))
    pruned = prune_channels(cnnscope.load_model("lenet5"), ratio=0.5).model
    assert prune["macs"] == [cnnscope.summary("lenet5").totals.macs, cnnscope.summary(pruned).totals.macs]


def test_cli_by_latency(cli):
    code, out, err = cli("advise", "lenet5", "--by", "latency", "--runtime", "torch", "--latency-runs", "3",
                         "-f", "json")
    assert code == 0, err
    assert json.loads(out)["schema"] == "cnnscope.advise-latency/1"
    code, out, err = cli("advise", "lenet5", "--by", "latency", "--latency-runs", "3")
    assert code == 0 and "ms saved / error pt" in out and "on ort" in out
