"""reduce / stride / factorize: arithmetic, exactness, artifacts, composition with prune, bad input."""
import json
import os

import pytest
import torch
from torch import nn

from tests.conftest import assert_one_line_error, run_cli

HERE = os.path.abspath(__file__)


def small_net(num_classes: int = 10) -> nn.Module:
    """A small CNN with every kind of site: 5×5 conv, conv-BN-ReLU-maxpool, conv-BN-avgpool (exact fold)."""
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 5, padding=2), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.AvgPool2d(2),
        nn.Conv2d(32, 48, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(48, num_classes))


def _randomise(model):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def base_artifact(tmp_path_factory):
    """The small net with (random) weights saved as an artifact: every command reads the same weights."""
    from cnnscope.loading.artifact import save_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("rw") / "small.pt"
    save_model(_randomise(small_net()), path, base=f"{HERE}:small_net")
    return str(path)


def _load(path):
    from cnnscope.loading.artifact import load_model

    return load_model(str(path), trust_code=True).eval()   # the artifacts here are built by this file's code


@pytest.fixture
def cli():
    """The CLI, allowed to run this file's code that the artifacts name (see the README's Security)."""
    return lambda *args, **kw: run_cli(*args, "--trust-code", **kw)


def _out(model, seed=1, size=32):
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model(x)


def _rel(a, b):
    return float((a - b).norm() / a.norm())


# ------------------------------------------------------------------------------------------ stride
@pytest.mark.slow
def test_stride_vgg16_mac_arithmetic(cli):
    """The 5 convs right before VGG-16's max-pools compute a quarter of their outputs."""
    code, out, err = cli("stride", "vgg16", "--dry-run", "--format", "json")
    assert code == 0, err
    r = json.loads(out)
    assert [s["name"] for s in r["sites"]] == ["features.2", "features.7", "features.14", "features.21", "features.28"]
    # by hand (3×3 convs, stride 1, 224×224 input): C_in·C_out·9·H·W before, ¼ of it after
    by_hand = {"features.2": 64 * 64 * 9 * 224 * 224, "features.7": 128 * 128 * 9 * 112 * 112,
               "features.14": 256 * 256 * 9 * 56 * 56, "features.21": 512 * 512 * 9 * 28 * 28,
               "features.28": 512 * 512 * 9 * 14 * 14}
    assert by_hand["features.2"] == 1_849_688_064
    for s in r["sites"]:
        assert s["macs"] == [by_hand[s["name"]], by_hand[s["name"]] // 4]
        assert s["params"][0] == s["params"][1]
    saved = sum(by_hand.values()) * 3 // 4
    t = r["diff"]["totals"]["macs"]
    assert t["a"] - t["b"] == saved
    assert t["a"] == 15_470_264_320          # torchvision vgg16 _ops 15.47 G
    assert r["diff"]["totals"]["receptive_field"]["b"] is not None
    assert r["output"] is None


def test_stride_exact_fold_and_reload(base_artifact, tmp_path, cli):
    from cnnscope.transforms.rewrites import rewrite

    out = tmp_path / "s.pt"
    code, stdout, err = cli("stride", base_artifact, "-i", "32", "-o", out, "--format", "json")
    assert code == 0, err
    r = json.loads(stdout)
    sites = {s["name"]: s for s in r["details"]["sites"]}
    assert set(sites) == {"2", "6"}
    assert sites["6"]["fold"] and sites["6"]["kernel"] == [4, 4]          # 3 + 2 − 1
    assert sites["6"]["rel_error"] < 1e-5                                   # conv+BN+avgpool fold is exact
    assert not sites["2"]["fold"]
    # layer 6: 32·32·9 MACs at 16×16 → 32·32·16 at 8×8
    row = {s["name"]: s for s in r["sites"]}["6"]
    assert row["macs"] == [32 * 32 * 9 * 16 * 16, 32 * 32 * 16 * 8 * 8]
    reloaded = _load(out)
    expected = rewrite(_load(base_artifact), "stride", input_size=(3, 32, 32)).model.eval()
    assert torch.equal(_out(reloaded), _out(expected))
    data = torch.load(out, weights_only=True)
    assert data["plan"][-1]["kind"] == "stride"


# ------------------------------------------------------------------------------------ exactness
@pytest.mark.parametrize("args", [("reduce", "--rank", "full"), ("factorize", "--method", "asym", "--rank", "full"),
                                  ("factorize", "--method", "lowrank", "--rank", "full"),
                                  ("factorize", "--method", "tucker2", "--rank", "full")])
def test_full_rank_reproduces_outputs(base_artifact, tmp_path, cli, args):
    out = tmp_path / "f.pt"
    code, stdout, err = cli(*args[:1], base_artifact, *args[1:], "-i", "32", "-o", out, "--format", "json")
    assert code == 0, err
    r = json.loads(stdout)
    assert r["details"]["output_error"] < 1e-4
    assert all(s["rel_error"] < 1e-4 for s in r["details"]["sites"])
    reloaded, original = _load(out), _load(base_artifact)
    assert _rel(_out(original), _out(reloaded)) < 1e-4


def test_error_falls_monotonically_with_rank(base_artifact):
    from cnnscope.transforms.rewrites import RankSpec, rewrite

    model = _load(base_artifact)
    ref = _out(model)
    # layer "2" (16→32, 5×5): asym saves MACs while 16·5·R + R·5·32 < 16·32·25, i.e. R ≤ 53, full rank
    # min(32·5, 16·5) = 80; reduce while 16·R + R·32·25 < 16·32·25, i.e. R ≤ 15, full rank min(32·25, 16) = 16
    for method, ranks in (("asym", (1, 4, 8, 16, 32, 48, "full")), ("reduce", (1, 4, 8, 12, "full"))):
        errs = []
        for rank in ranks:
            kind = "reduce" if method == "reduce" else "factorize"
            r = rewrite(model, kind, method=method, ranks=RankSpec.parse(rank=str(rank)), layers=["2"],
                        input_size=(3, 32, 32))
            errs.append(_rel(ref, _out(r.model)))
        assert all(a > b for a, b in zip(errs, errs[1:])), (method, errs)
        assert errs[-1] < 1e-4 and errs[0] > 1e-2


# ------------------------------------------------------------------------------------------ tucker2
def test_tucker2_structure_and_counts(base_artifact):
    """Layer "2" (16→32, 5×5, bias, 32×32 map) at ratio 0.5: ranks (8, 16), so 1×1 16→8, 5×5 8→16, 1×1 16→32."""
    from cnnscope import summary
    from cnnscope.transforms.rewrites import RankSpec, rewrite

    r = rewrite(_load(base_artifact), "factorize", method="tucker2", ranks=RankSpec.parse(ratio="0.5"),
                layers=["2"], input_size=(3, 32, 32))
    seq = r.model[2]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in seq] == [(16, 8, (1, 1)), (8, 16, (5, 5)),
                                                                           (16, 32, (1, 1))]
    # by hand: 16·8 + 8·16·25 + 16·32 + 32 (bias) params; each conv's MACs at 32×32 (padding 2 keeps the size)
    params = 16 * 8 + 8 * 16 * 25 + 16 * 32 + 32
    macs = (16 * 8 + 8 * 16 * 25 + 16 * 32) * 32 * 32
    assert sum(p.numel() for p in seq.parameters()) == params == 3872
    s = summary(r.model, input_size=(3, 32, 32))
    assert sum(s.layer(f"2.{j}").macs for j in range(3)) == macs


def test_tucker2_error_falls_with_rank(base_artifact):
    from cnnscope.transforms.rewrites import RankSpec, rewrite

    model = _load(base_artifact)
    ref = _out(model)
    errs = []
    for rank in (2, 4, 8, 12, 16, "full"):          # (min(R, 16), min(R, 32)); full = (16, 32)
        r = rewrite(model, "factorize", method="tucker2", ranks=RankSpec.parse(rank=str(rank)), layers=["2"],
                    input_size=(3, 32, 32))
        errs.append(_rel(ref, _out(r.model)))
    assert all(a > b for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 1e-4 and errs[0] > 1e-2


# ---------------------------------------------------------------------------- errors on --data inputs
def test_errors_measured_on_given_inputs(base_artifact):
    """With real inputs, the reported model error is ‖new(x) − old(x)‖ / ‖old(x)‖ on exactly those inputs."""
    from cnnscope.transforms.rewrites import RankSpec, rewrite

    model = _load(base_artifact)
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        old = model(x)
    r = rewrite(model, "factorize", method="asym", ranks=RankSpec.parse(rank="8"), input_size=(3, 32, 32), inputs=x)
    with torch.no_grad():
        new = r.model(x)
    assert r.details["output_error"] == pytest.approx(_rel(old, new), rel=1e-6)
    # the per-layer error of the first rewritten layer, on the activation that reaches it
    with torch.no_grad():
        h = model[1](model[0](x))
        site = r.details["sites"][0]
        assert site["name"] == "2"
        assert site["rel_error"] == pytest.approx(_rel(model[2](h), r.model[2](h)), rel=1e-6)


# ------------------------------------------------------------------------------------------ stack
def test_stack_sites_alexnet_and_inception():
    from cnnscope.analysis.engine import analyze
    from cnnscope.transforms.rewrites import apply_to_meta, plan_decomposition

    a = analyze("alexnet", input_size=(3, 64, 64))
    step, skipped = plan_decomposition("factorize", "stack", a, None, None)
    assert [s["name"] for s in step["sites"]] == ["features.3"]
    assert [c["kernel"] for c in step["sites"][0]["convs"]] == [[3, 3], [3, 3]]     # (5 − 1) / 2 = 2
    assert any(s["name"] == "features.0" and "stem" in s["reason"] for s in skipped)
    step, _ = plan_decomposition("factorize", "stack", a, None, None, include_stem=True)
    assert [s["name"] for s in step["sites"]] == ["features.0", "features.3"]
    assert len(step["sites"][0]["convs"]) == 5                                        # (11 − 1) / 2
    # same output shape and receptive field
    after = analyze(apply_to_meta(a.model, step), input_size=(3, 64, 64))
    assert after.graph.values[after.graph.outputs[0]].shape == a.graph.values[a.graph.outputs[0]].shape
    i3 = analyze("inception_v3", input_size=(3, 299, 299))
    step, _ = plan_decomposition("factorize", "stack", i3, None, None)
    assert sorted(s["name"] for s in step["sites"]) == ["Mixed_5b.branch5x5_2.conv", "Mixed_5c.branch5x5_2.conv",
                                                         "Mixed_5d.branch5x5_2.conv"]


def test_stack_with_activation(base_artifact, tmp_path, cli):
    out = tmp_path / "act.pt"
    code, stdout, err = cli("factorize", base_artifact, "-i", "32", "--method", "stack", "--activation", "relu",
                            "-o", out, "--format", "json")
    assert code == 0, err
    reloaded = _load(out)
    assert [type(m).__name__ for m in reloaded[2]] == ["Conv2d", "ReLU", "Conv2d"]
    assert torch.load(out, weights_only=True)["plan"][-1]["activation"] == "relu"
    # the same rewrite without the ReLU: identical weights, so the ReLU is the only difference
    linear = tmp_path / "lin.pt"
    assert cli("factorize", base_artifact, "-i", "32", "--method", "stack", "-o", linear)[0] == 0
    a, b = _load(linear), reloaded
    assert torch.equal(a[2][0].weight, b[2][0].weight) and torch.equal(a[2][1].weight, b[2][2].weight)
    assert not torch.equal(_out(a), _out(b))


def test_stack_keeps_receptive_field(base_artifact, cli):
    code, out, err = cli("factorize", base_artifact, "-i", "32", "--method", "stack", "--dry-run", "--format", "json")
    assert code == 0, err
    r = json.loads(out)
    assert [s["name"] for s in r["sites"]] == ["2"]
    assert r["diff"]["totals"]["receptive_field"]["a"] == r["diff"]["totals"]["receptive_field"]["b"]
    # 16→32 5×5 at 32×32 = 16·32·25·1024; stack 16→16 3×3 + 16→32 3×3 = (16·16·9 + 16·32·9)·1024
    assert r["sites"][0]["macs"] == [16 * 32 * 25 * 1024, (16 * 16 * 9 + 16 * 32 * 9) * 1024]


# ------------------------------------------------------------------------------------ composition
@pytest.mark.slow
def test_rewrite_and_prune_compose(base_artifact, tmp_path, cli):
    f = tmp_path / "f.pt"
    p = tmp_path / "fp.pt"
    code, _, err = cli("factorize", base_artifact, "-i", "32", "--method", "lowrank", "--rank", "8", "-o", f)
    assert code == 0, err
    code, _, err = cli("prune", f, "-i", "32", "--ratio", "0.25", "-o", p)
    assert code == 0, err
    m = _load(p)
    assert [s["kind"] for s in torch.load(p, weights_only=True)["plan"]] == ["factorize", "prune"]
    assert _out(m).shape == (2, 10)
    p2, s2 = tmp_path / "p.pt", tmp_path / "ps.pt"
    code, _, err = cli("prune", base_artifact, "-i", "32", "--ratio", "0.25", "-o", p2)
    assert code == 0, err
    code, _, err = cli("stride", p2, "-i", "32", "-o", s2)
    assert code == 0, err
    pruned, both = _load(p2), _load(s2)
    assert [s["kind"] for s in torch.load(s2, weights_only=True)["plan"]] == ["prune", "stride"]
    assert _out(both).shape == _out(pruned).shape


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("args,contains", [
    (("stride", "--layers", "nothing*"), "no site"),
    (("factorize", "--method", "asym", "--rank", "500"), "above the full rank"),
    (("factorize", "--method", "svd"), "method"),
    (("reduce", "--rank", "0"), "--rank"),
    (("factorize", "--method", "stack", "--rank", "4"), "stack"),
    (("factorize", "--method", "asym", "--activation", "relu"), "--activation applies to --method stack"),
    (("factorize", "--method", "stack", "--activation", "tanh"), "activation"),
    (("factorize", "--method", "tucker2", "--rank", "33"), "above the full ranks (16, 32)"),
    (("stride", "--device", "tpu"), "--device"),
])
def test_bad_input_one_line_no_file(base_artifact, tmp_path, args, contains):
    out = tmp_path / "bad.pt"
    code, stdout, err = run_cli(args[0], base_artifact, "-i", "32", *args[1:], "-o", out, "--trust-code")
    assert_one_line_error(code, stdout, err, 2, contains)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_refuses_to_overwrite_input(base_artifact):
    code, out, err = run_cli("stride", base_artifact, "-i", "32", "-o", base_artifact, "--trust-code")
    assert_one_line_error(code, out, err, 2)


def test_table_output(base_artifact, cli):
    code, out, err = cli("reduce", base_artifact, "-i", "32", "--ratio", "0.5", "--dry-run")
    assert code == 0, err
    assert "rel. error" in out and "receptive field" in out and "dry run" in out


def test_rewrite_with_data_reports_accuracy(tmp_path, cli):
    from tests.transforms.test_prune_cli import _tiny_image_folder

    _tiny_image_folder(tmp_path / "data", per_class=2)           # 8×8 images, resized to mnist_cnn's 28×28
    code, stdout, err = cli("stride", "mnist_cnn", "--data", tmp_path / "data", "--epochs", "1", "--device", "cpu",
                            "--dry-run", "--format", "json")
    assert code == 0, err
    r = json.loads(stdout)
    acc = r["accuracy"]
    assert acc["val_images"] == 10 and acc["train_images"] == 20 and acc["epochs"] == 1
    for stage in ("before", "after", "fine_tuned"):
        assert acc[stage]["total"] == 10 and 0 <= acc[stage]["correct"] <= 10
    assert r["error_inputs"] == "10 val/ images"


def test_reduce_skips_the_rgb_stem_like_factorize(cli):
    """The stem's input is the image (3 channels): reduce leaves it alone unless --include-stem (issue 13)."""
    code, out, err = cli("reduce", "resnet18", "--ratio", "0.5", "--dry-run", "-f", "json", "--layers", "conv1")
    assert code == 2 and "stem conv" in err
    code, out, err = cli("reduce", "resnet18", "--rank", "full", "--dry-run", "-f", "json", "--layers", "conv1",
                         "--include-stem")
    assert code == 0, err
    assert [s["name"] for s in json.loads(out)["details"]["sites"]] == ["conv1"]


def test_a_new_factorization_is_one_class():
    """Issue 14: a method is one registered class (geometry, rank rule, weights); the pipeline needs
    nothing else. A copy of lowrank under a new name, at full rank, reproduces the model exactly."""
    import torch

    from cnnscope.transforms import decompose
    from cnnscope.transforms.methods import METHOD_REGISTRY, LowRank, register_method
    from cnnscope.transforms.rewrites import RankSpec, rewrite

    @register_method
    class Mine(LowRank):
        name = "mine"

        def full_rank(self, m):
            return decompose.full_rank("lowrank", m.out_channels, m.in_channels, *m.kernel_size)

        def singular_values(self, w):
            return decompose.singular_values("lowrank", w)

        def weights(self, w, site):
            return decompose.lowrank_factors(w, site["rank"]).weights

    try:
        with pytest.raises(ValueError):
            register_method(Mine)                      # a name is registered once
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                    torch.nn.Conv2d(8, 8, 3, padding=1)).eval()
        r = rewrite(model, "factorize", method="mine", ranks=RankSpec.parse(rank="full"), input_size=(3, 16, 16),
                    include_stem=True)
        assert [s["name"] for s in r.details["sites"]] == ["0", "2"]
        assert r.details["output_error"] < 1e-5
    finally:
        METHOD_REGISTRY.pop("mine", None)
