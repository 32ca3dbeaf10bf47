"""Budgets of issue 18: inference peak memory and MACs at another input size, by hand."""
import json

import pytest

from tests.conftest import assert_one_line_error, run_inprocess

#: resnet18's weights: 11,689,512 params × 4 B + buffers 38,560 B (BN running stats) + 20 × 8 B counters
R18_WEIGHT_BYTES = 46_796_608
#: its peak, while bn1 runs: the input 3·224·224·4 = 602,112 B, conv1's output and bn1's (64·112·112·4 =
#: 3,211,264 B each) and bn1's per-channel mean and inverse std (2 × 64 × 4 = 512 B)
R18_PEAK = 602_112 + 2 * 3_211_264 + 512


def _check(*args):
    return run_inprocess("check", *args)


def test_peak_memory_budget():
    code, out, err = _check("resnet18", "--max-peak-memory-mb", "53.8", "-f", "json")
    assert code == 1, err
    data = json.loads(out)
    assert data["models"][0]["metrics"]["peak_memory_bytes"] == R18_WEIGHT_BYTES + R18_PEAK == 53_821_760
    assert _check("resnet18", "--max-peak-memory-mb", "53.9")[0] == 0


def test_macs_at_another_size():
    """At 448 every conv does 4× its 224 work; the classifier (512·1000 MACs) does not change."""
    r18_macs = 1_814_073_344                       # torchvision's published _ops: 1.814 G
    at_448 = 4 * (r18_macs - 512_000) + 512_000
    code, out, err = _check("resnet18", "--max-macs-at", "448=7.25G", "-f", "json")
    assert code == 1, err
    m = json.loads(out)["models"][0]
    assert m["metrics"]["macs_at"] == at_448 == 7_254_757_376
    assert m["metrics"]["macs"] == r18_macs and m["input_shape"] == [1, 3, 224, 224]
    code, out, err = _check("resnet18", "--max-macs-at", "448=7.3G")
    assert code == 0 and "≤ 7.3G at 448" in out, err


def test_macs_at_in_the_config(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.cnnscope.check]\n\n[[tool.cnnscope.check.models]]\n'
                                             'model = "resnet18"\nmax-macs-at = "448=7G"\n')
    code, out, err = run_inprocess("check", cwd=tmp_path)
    assert code == 1 and "macs-at" in err


@pytest.mark.parametrize("value, words", [("448", "expected SIZE=LIMIT"), ("=7G", "expected SIZE=LIMIT"),
                                          ("4x4x4x4x4=7G", "malformed input size"), ("448=lots", "malformed")])
def test_malformed_macs_at(value, words):
    code, out, err = _check("resnet18", "--max-macs-at", value)
    assert_one_line_error(code, out, err, contains=words)


#: what a lenet5 training step keeps for the backward (bytes, by hand): conv1's input 3,136; conv1's
#: output, which ReLU(inplace) and the max-pool save (one storage) 18,816; the pool's int64 indices
#: 9,408; conv2's input 4,704; its ReLU'd output 6,400 and the second pool's indices 3,200; fc1's input
#: (a view of the pooled 1,600); the fc ReLUs' outputs 480 and 336
LENET_SAVED = 3_136 + 18_816 + 9_408 + 4_704 + 6_400 + 3_200 + 1_600 + 480 + 336


def test_train_memory_budget():
    """SGD with momentum: params + grads + one momentum buffer = 3 × 61,706 × 4 B, plus what is saved."""
    expected = 3 * 61_706 * 4 + LENET_SAVED
    code, out, err = _check("lenet5", "--max-train-memory-mb", f"{expected - 1}B", "-f", "json")
    assert code == 1, err
    assert json.loads(out)["models"][0]["metrics"]["train_memory_bytes"] == expected == 788_552
    assert _check("lenet5", "--max-train-memory-mb", f"{expected}B")[0] == 0
