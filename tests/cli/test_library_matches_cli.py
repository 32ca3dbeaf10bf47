"""The library returns exactly what the CLI prints (issue 14): `-f json` equals the result's to_dict()."""
import json

import cnnscope
from tests.conftest import run_inprocess


def _cli_json(*args):
    code, out, err = run_inprocess(*args, "-f", "json")
    assert code == 0, err
    return json.loads(out)


def test_summary_of_a_model_and_of_its_onnx_file(tmp_path):
    assert _cli_json("summary", "resnet18", "-i", "3x64x64") == \
        json.loads(json.dumps(cnnscope.summary("resnet18", input_size=(3, 64, 64)).to_dict()))
    path = tmp_path / "r.onnx"
    assert run_inprocess("export", "resnet18", "-i", "3x64x64", "-o", path)[0] == 0
    # an .onnx path works in the library as on the command line
    assert _cli_json("summary", path) == json.loads(json.dumps(cnnscope.summary(str(path)).to_dict()))


def test_compare(tmp_path):
    lib = cnnscope.compare("lenet5", "mnist_cnn")
    assert _cli_json("compare", "lenet5", "mnist_cnn") == json.loads(json.dumps(lib))
    assert lib["totals"]["params"]["a"] == 61_706          # LeNet-5, by hand in tests/analysis
    onnx = tmp_path / "lenet5.onnx"
    cnnscope.export_onnx("lenet5", str(onnx), verify=False)
    lib = cnnscope.compare("lenet5", str(onnx))             # a cross-format diff, as the CLI gives it
    assert _cli_json("compare", "lenet5", onnx) == json.loads(json.dumps(lib))
    assert lib["totals"]["params"]["ratio"] == 1.0


def _check_json(*args):
    code, out, err = run_inprocess("check", *args, "-f", "json")
    assert code in (0, 1), err
    return json.loads(out)


def _without_check_timing(d):
    return {**d, "models": [{k: v for k, v in m.items() if k != "seconds"} for m in d["models"]]}


def test_check():
    """Budget keywords are the CLI's options with underscores; a failing budget is data, not an error."""
    held = cnnscope.check("lenet5", max_params="62K", max_macs="1M")
    assert held.passed
    assert _without_check_timing(_check_json("lenet5", "--max-params", "62K", "--max-macs", "1M")) == \
        _without_check_timing(json.loads(json.dumps(held.to_dict())))
    failed = cnnscope.check("lenet5", "mnist_cnn", max_params="100K", fail_on_uncounted=True)
    assert not failed.passed                 # mnist_cnn has 3,274,634 params
    assert _without_check_timing(_check_json("lenet5", "mnist_cnn", "--max-params", "100K",
                                             "--fail-on-uncounted")) == \
        _without_check_timing(json.loads(json.dumps(failed.to_dict())))


def _without_timing(d):
    return {k: v for k, v in d.items() if k != "seconds"}


def test_prune():
    lib = cnnscope.prune("lenet5", ratio=0.5).to_dict()
    cli = _cli_json("prune", "lenet5", "--ratio", "0.5", "--dry-run")
    assert _without_timing(cli) == _without_timing(json.loads(json.dumps(lib)))
    lib = cnnscope.prune("lenet5", unstructured=True, sparsity=0.5).to_dict()
    cli = _cli_json("prune", "lenet5", "--unstructured", "--sparsity", "0.5", "--dry-run")
    assert _without_timing(cli) == _without_timing(json.loads(json.dumps(lib)))


def test_rewrites(tmp_path):
    cases = [(cnnscope.reduce("mnist_cnn", ratio=0.5, include_stem=True),
              ("reduce", "mnist_cnn", "--ratio", "0.5", "--include-stem")),
             (cnnscope.stride("lenet5"), ("stride", "lenet5")),
             (cnnscope.factorize("mnist_cnn", method="lowrank", ratio=0.5, include_stem=True),
              ("factorize", "mnist_cnn", "--method", "lowrank", "--ratio", "0.5", "--include-stem"))]
    for report, args in cases:
        assert _cli_json(*args, "--dry-run") == json.loads(json.dumps(report.to_dict())), args


def test_a_library_transform_writes_a_verified_artifact(tmp_path):
    import torch

    out = tmp_path / "p.pt"
    report = cnnscope.prune("lenet5", str(out), ratio=0.5)
    assert report.to_dict()["output"] == str(out)
    assert torch.load(out, weights_only=True)["format"] == "cnnscope/1"
    assert cnnscope.summary(str(out)).totals.params == report.to_dict()["diff"]["totals"]["params"]["b"]


def test_advise():
    lib = cnnscope.advise("resnet18", input_size=(3, 64, 64), layers=["layer4*"])
    assert _cli_json("advise", "resnet18", "-i", "3x64x64", "--layers", "layer4*") == json.loads(json.dumps(lib))


#: what differs between two exports of a fresh init: the timings, and the parity numbers of its random weights
_VARYING = ("export_seconds", "seconds", "max_abs_diff", "max_rel_diff", "ref_max_abs")


def _without_seconds(d):
    if isinstance(d, dict):
        return {k: _without_seconds(v) for k, v in d.items() if k not in _VARYING}
    if isinstance(d, list):
        return [_without_seconds(v) for v in d]
    return d


def test_export(tmp_path):
    lib = cnnscope.export_onnx("lenet5", str(tmp_path / "a.onnx")).to_dict()
    cli = _cli_json("export", "lenet5", "-o", tmp_path / "b.onnx")
    lib["path"], cli["path"] = "x", "x"
    # the same report: exporter, opset, shapes, node and param counts, verdicts (the weights are a fresh init)
    assert _without_seconds(cli) == _without_seconds(json.loads(json.dumps(lib)))
