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


def test_compare():
    from cnnscope.analysis.diff import diff_summaries

    lib = diff_summaries(cnnscope.summary("lenet5"), cnnscope.summary("mnist_cnn"))
    assert _cli_json("compare", "lenet5", "mnist_cnn") == json.loads(json.dumps(lib))
