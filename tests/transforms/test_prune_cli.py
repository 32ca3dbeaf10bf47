"""`cnnscope prune` end to end: artifacts, reports, errors, data.

The first test runs the real entry point in a subprocess; the others call the same ``main`` in
process (same parsing, error mapping and exit codes, without paying for a Python start-up each).
"""
import json
import os

import pytest
import torch

from cnnscope.cli import main
from tests.conftest import assert_one_line_error


@pytest.fixture
def run(capsys):
    """In-process CLI: (exit code, stdout, stderr)."""
    def call(*args):
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call

# resnet18 with half the channels of every coupled group (the classifier keeps its 1000 outputs):
#   conv1 3·7·7·32 + bn 2·32                                   =     4,768
#   layer1: 4 convs 32→32 3×3 (4·9216) + 4 bn (4·64)            =    37,120
#   layer2: 32→64 (18,432) + 64→64 (36,864) + 1×1 32→64 (2,048)
#           + 2 convs 64→64 (73,728) + 5 bn (640)               =   131,712
#   layer3: 73,728 + 147,456 + 8,192 + 294,912 + 1,280          =   525,568
#   layer4: 294,912 + 589,824 + 32,768 + 1,179,648 + 2,560      = 2,099,712
#   fc 256·1000 + 1000                                          =   257,000
RESNET18_HALF_PARAMS = 4_768 + 37_120 + 131_712 + 525_568 + 2_099_712 + 257_000


def test_prune_resnet18_writes_a_reloadable_artifact(cli, tmp_path):
    out = tmp_path / "r18.pt"
    code, stdout, err = cli("prune", "resnet18", "--ratio", "0.5", "-i", "64", "-o", out)
    assert code == 0, err
    assert "structured pruning, criterion l1, layer scope, ratio 0.5" in stdout
    assert "layer1.0.conv1" in stdout and "64 → 32" in stdout
    raw = torch.load(out, weights_only=True)
    assert raw["plan"][0]["kind"] == "prune"
    code, stdout, err = cli("summary", out, "-i", "64", "-f", "json")
    assert code == 0, err
    assert json.loads(stdout)["totals"]["params"] == RESNET18_HALF_PARAMS == 3_055_880


def test_json_report_and_dry_run(run, tmp_path):
    code, stdout, err = run("prune", "resnet18", "--ratio", "0.5", "-i", "64", "--dry-run", "-f", "json")
    assert code == 0, err
    report = json.loads(stdout)
    assert report["schema"] == "cnnscope.prune/1" and report["output"] is None
    assert report["diff"]["totals"]["params"]["b"] == RESNET18_HALF_PARAMS
    assert report["details"]["groups"][0]["channels"] == [64, 32]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("args, contains", [
    (["--ratio", "0.5", "--criterion", "l3"], "unknown criterion 'l3'"),
    (["--ratio", "1.5"], "strictly between 0 and 1"),
    (["--ratio", "0"], "strictly between 0 and 1"),
    (["--target-macs", "1K"], "cannot be met"),
    (["--ratio", "0.5", "--ignore", "nothing.*"], "--ignore 'nothing.*'"),
    (["--unstructured"], "needs --sparsity"),
    ([], "say how much to prune"),
])
def test_bad_input_exits_2_and_writes_nothing(run, tmp_path, args, contains):
    out = tmp_path / "x.pt"
    code, stdout, err = run("prune", "resnet18", "-i", "32", *args, "-o", out)
    assert_one_line_error(code, stdout, err, 2, contains)
    assert os.listdir(tmp_path) == []


def test_never_overwrites_its_input(run, tmp_path):
    import cnnscope

    src = tmp_path / "m.pt"
    cnnscope.save_model(cnnscope.load_model("mnist_cnn"), src)
    before = src.read_bytes()
    code, stdout, err = run("prune", src, "--ratio", "0.5", "-o", src)
    assert_one_line_error(code, stdout, err, 2, "is the input")
    assert src.read_bytes() == before


def test_unstructured(run, tmp_path):
    out = tmp_path / "sparse.pt"
    code, stdout, err = run("prune", "mnist_cnn", "--unstructured", "--sparsity", "0.75", "-o", out)
    assert code == 0, err
    assert "neither faster" in stdout
    sd = torch.load(out, weights_only=True)["state_dict"]
    weights = [sd[k] for k in ("features.0.weight", "features.3.weight", "classifier.1.weight", "classifier.4.weight")]
    n = sum(w.numel() for w in weights)     # 800 + 51,200 + 3,211,264 + 10,240 weights
    assert n == 800 + 51_200 + 3_211_264 + 10_240
    assert sum(int((w == 0).sum()) for w in weights) == round(0.75 * n)
    assert not any(k.endswith(("_orig", "_mask")) for k in sd)


def _tiny_image_folder(root, classes=10, per_class=2):
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for split, count in (("train", per_class), ("val", 1)):
        for c in range(classes):
            os.makedirs(root / split / str(c))
            for i in range(count):
                px = (torch.rand(8, 8, generator=g) * 255).to(torch.uint8).numpy()
                Image.fromarray(px, mode="L").save(root / split / str(c) / f"{i}.png")


def test_fine_tune_reports_accuracy(run, tmp_path):
    _tiny_image_folder(tmp_path / "data")
    out = tmp_path / "tuned.pt"
    code, stdout, err = run("prune", "mnist_cnn", "--ratio", "0.5", "--data", tmp_path / "data", "--epochs", "1",
                            "--device", "cpu", "-f", "json", "-o", out)
    assert code == 0, err
    acc = json.loads(stdout)["accuracy"]
    assert acc["val_images"] == 10 and acc["train_images"] == 20 and acc["epochs"] == 1
    for stage in ("before", "after", "fine_tuned"):
        assert acc[stage]["total"] == 10 and 0 <= acc[stage]["correct"] <= 10
    assert out.exists()


def test_data_errors(run, tmp_path):
    (tmp_path / "data" / "train").mkdir(parents=True)
    code, stdout, err = run("prune", "mnist_cnn", "--ratio", "0.5", "--data", tmp_path / "data", "-o",
                            tmp_path / "x.pt")
    assert_one_line_error(code, stdout, err, 2, "no 'val/' subfolder")
    _tiny_image_folder(tmp_path / "three", classes=3, per_class=1)
    code, stdout, err = run("prune", "mnist_cnn", "--ratio", "0.5", "--data", tmp_path / "three", "-o",
                            tmp_path / "x.pt")
    assert_one_line_error(code, stdout, err, 2, "3 class folders but mnist_cnn outputs 10")
    assert not (tmp_path / "x.pt").exists()


def test_fine_tuning_keeps_unstructured_zeros(run, tmp_path):
    _tiny_image_folder(tmp_path / "data")
    out = tmp_path / "sparse.pt"
    code, stdout, err = run("prune", "mnist_cnn", "--unstructured", "--sparsity", "0.5", "--data", tmp_path / "data",
                            "--epochs", "1", "--device", "cpu", "-o", out)
    assert code == 0, err
    sd = torch.load(out, weights_only=True)["state_dict"]
    w = sd["features.3.weight"]                   # 64·32·5·5 = 51,200 weights; global scope
    names = ("features.0.weight", "features.3.weight", "classifier.1.weight", "classifier.4.weight")
    n = sum(sd[k].numel() for k in names)
    assert w.numel() == 51_200
    assert sum(int((sd[k] == 0).sum()) for k in names) >= round(0.5 * n)   # training did not refill them


def test_fresh_init_is_seeded_and_said(cli, tmp_path):
    """Without --weights two runs keep the same channels (the plans are equal), another --seed keeps
    others, and the report says the weights are random (issue 13)."""
    import json

    import torch

    plans = []
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        code, out, err = cli("prune", "mnist_cnn", "--ratio", "0.5", "-f", "json", "--seed", seed,
                             "-o", tmp_path / f"{name}.pt")
        assert code == 0, err
        assert any(f"random init seeded with --seed {seed}" in n for n in json.loads(out)["notes"])
        plans.append(torch.load(tmp_path / f"{name}.pt", weights_only=True)["plan"])
    assert plans[0] == plans[1]
    assert plans[0] != plans[2]
