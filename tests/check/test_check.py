"""`cnnscope check`: budgets, config, baselines and report formats, through the real CLI.

Reference numbers, derived by hand (K = kernel, C = channels, OH×OW = output map):

LeNet-5 on 1×28×28 (conv5×5/6 pad 2 → pool2 → conv5×5/16 → pool2 → fc120 → fc84 → fc10):
  params  conv1 5·5·1·6 + 6 = 156;  conv2 5·5·6·16 + 16 = 2,416;  fc1 400·120 + 120 = 48,120;
          fc2 120·84 + 84 = 10,164;  fc3 84·10 + 10 = 850;   total 61,706
  MACs    conv1 150·28·28 = 117,600;  conv2 2,400·10·10 = 240,000;  fc 48,000 + 10,080 + 840
          total 416,520  (FLOPs 833,040)
  bytes   61,706 params × 4 (float32), no buffers = 246,824
  RF      conv5 → 5; pool2 → 5 + 1·1 = 6 (jump 2); conv5 → 6 + 4·2 = 14; pool2 → 14 + 1·2 = 16 (jump 4)

mnist_cnn on 1×28×28 (conv5×5/32 same → pool2 → conv5×5/64 same → pool2 → fc1024 → fc10):
  params  832 + 51,264 + (64·7·7)·1024 + 1024 = 3,212,288 + 10,250  → 3,274,634
  MACs    800·28·28 = 627,200 + 51,200·14·14 = 10,035,200 + 3,211,264 + 10,240 → 13,883,904

tiny (conv3×3 3→8 pad 1 → global avg pool → fc 8→4) on 3×32×32:
  params  3·3·3·8 + 8 = 224;  8·4 + 4 = 36;  total 260
  MACs    216·32·32 = 221,184 + 32 = 221,216
"""
import json
import re
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cnnscope.check.baseline import parse_max_growth, read_baseline, render_baseline
from cnnscope.check.budgets import evaluate_budget, parse_budget
from cnnscope.check.config import load_config
from cnnscope.errors import CnnscopeError
from cnnscope.cli import main
from tests.conftest import ROOT as _ROOT
from tests.conftest import assert_one_line_error

ROOT = Path(_ROOT)

LENET_PARAMS = 156 + 2_416 + 48_120 + 10_164 + 850
LENET_MACS = 5 * 5 * 1 * 6 * 28 * 28 + 5 * 5 * 6 * 16 * 10 * 10 + 400 * 120 + 120 * 84 + 84 * 10
LENET_BYTES = LENET_PARAMS * 4
#: while the first max-pool runs: the input 1·28·28·4 B, conv1's output (ReLU is in place) 6·28·28·4,
#: the pooled 6·14·14·4 and max-pool's int64 indices 6·14·14·8
LENET_PEAK = 3_136 + 18_816 + 4_704 + 9_408
MNIST_PARAMS = (25 * 32 + 32) + (25 * 32 * 64 + 64) + (64 * 7 * 7 * 1024 + 1024) + (1024 * 10 + 10)
MNIST_MACS = 25 * 32 * 28 * 28 + 25 * 32 * 64 * 14 * 14 + 64 * 7 * 7 * 1024 + 1024 * 10
TINY_PARAMS = 3 * 3 * 3 * 8 + 8 + 8 * 4 + 4
TINY_MACS = 3 * 3 * 3 * 8 * 32 * 32 + 8 * 4

TINY_PY = """
from torch import nn

def build():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 4))
"""


@pytest.fixture
def cli_here(capsys, monkeypatch):
    """The same entry point as `cnnscope` (cli.main: parse, run, map errors to exit codes), run in this
    process so torch is imported once for the whole file; the subprocess `cli` covers the real script."""
    def run(*args, cwd=None):
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_hand_arithmetic_is_what_the_docs_say():
    assert (LENET_PARAMS, LENET_MACS, LENET_BYTES) == (61_706, 416_520, 246_824)
    assert (MNIST_PARAMS, MNIST_MACS) == (3_274_634, 13_883_904)
    assert (TINY_PARAMS, TINY_MACS) == (260, 221_216)


# ------------------------------------------------------------------------------ budgets (no torch)

@pytest.mark.parametrize("option, text, limit", [
    ("max-params", "25M", 25_000_000),
    ("max_params", "61706", 61_706),
    ("--max-macs", "4.2G", 4_200_000_000),
    ("max-flops", "1.5k", 1_500),
    ("max-size-mb", "100", 100 * 10**6),          # a bare number is MB
    ("max-size-mb", 100, 100 * 10**6),
    ("max-size-mb", "95MiB", 95 * 2**20),         # 99,614,720 bytes
    ("max-activation-mb", "512KB", 512_000),
    ("min-rf", "212", [212, 212]),
    ("min-rf", "100x50", [100, 50]),
])
def test_budget_units(option, text, limit):
    assert parse_budget(option, text).limit == limit


@pytest.mark.parametrize("option, text, needle", [
    ("max-params", "ten", "malformed --max-params budget 'ten'"),
    ("max-params", "25MB", "malformed --max-params"),     # a byte unit on a count
    ("max-params", "-5", "malformed --max-params"),
    ("max-size-mb", "10Q", "malformed --max-size-mb"),
    ("max-size-mb", True, "malformed --max-size-mb"),
    ("min-rf", "0", "at least 1 pixel"),
    ("min-rf", "3x3x3", "malformed --min-rf"),
    ("max-parms", "1M", "closest: max-params"),
])
def test_malformed_budgets_are_refused(option, text, needle):
    with pytest.raises(CnnscopeError, match=re.escape(needle)):
        parse_budget(option, text)


def test_min_rf_axis_rule():
    rf = {"size": [212, 180], "stride": [32, 32], "padding": [90, 90]}
    assert evaluate_budget(parse_budget("min-rf", "180"), rf).passed          # the smaller axis decides
    assert not evaluate_budget(parse_budget("min-rf", "181"), rf).passed
    assert evaluate_budget(parse_budget("min-rf", "212x180"), rf).passed      # HxW: each axis
    assert not evaluate_budget(parse_budget("min-rf", "180x212"), rf).passed
    assert evaluate_budget(parse_budget("min-rf", "10000"), "global").passed
    # headroom of a floor: (180 − 200) / 200 = −10 %
    assert evaluate_budget(parse_budget("min-rf", "200"), rf).headroom == pytest.approx(-0.10)


def test_max_growth_parsing():
    assert parse_max_growth("5%") == pytest.approx(0.05)
    assert parse_max_growth("0.05") == pytest.approx(0.05)
    assert parse_max_growth("0%") == 0
    for bad in ("5", "-1%", "five"):
        with pytest.raises(CnnscopeError):
            parse_max_growth(bad)


def test_malformed_budget_on_the_cli_is_one_line(cli):
    assert_one_line_error(*cli("check", "lenet5", "--max-params", "ten"), contains="'ten'")
    assert_one_line_error(*cli("check", "lenet5", "--max-size-mb", "lots"), contains="--max-size-mb")


# ------------------------------------------------------------------------------ budgets via the CLI

def test_budgets_exactly_at_the_hand_counts_pass(cli):
    # ≤ is inclusive: a budget equal to the exact count holds
    code, out, err = cli("check", "lenet5", "--max-params", LENET_PARAMS, "--max-macs", LENET_MACS,
                         "--max-flops", 2 * LENET_MACS, "--max-size-mb", f"{LENET_BYTES}B", "--min-rf", "16")
    assert code == 0, err
    header = out.splitlines()[0]
    assert header.startswith("lenet5") and header.endswith("PASS") and "1×1×28×28" in header
    assert re.search(r"metric\s+budget\s+actual\s+headroom\s+verdict", out)
    # 61,706 is not exactly "61.7K", so the budget is shown exactly
    assert re.search(r"params\s+≤ 61,706\s+61,706 \(61\.7K\)\s+\+0\.0%\s+ok", out), out
    assert re.search(r"size-mb\s+≤ 246824B\s+246,824 B \(246\.8 KB\)\s+\+0\.0%\s+ok", out), out
    assert re.search(r"rf\s+≥ 16×16\s+16×16\s+\+0\.0%\s+ok", out), out
    assert "1 model, 5 checks: all held." in out


def test_one_over_fails_with_exit_1_and_the_report_is_still_written(cli, tmp_path):
    report = tmp_path / "report.json"
    code, out, err = cli("check", "lenet5", "mnist_cnn", "--max-params", "62K", "--max-macs", LENET_MACS - 1,
                         "--format", "json", "-o", report)
    assert code == 1, err
    assert "Traceback" not in err
    assert "Error: 3 of 4 checks failed: lenet5 macs, mnist_cnn params, mnist_cnn macs" in err
    data = json.loads(report.read_text())
    assert data["schema"] == "cnnscope.check/1" and data["passed"] is False
    lenet, mnist = data["models"]
    assert lenet["metrics"]["params"] == LENET_PARAMS and lenet["metrics"]["macs"] == LENET_MACS
    assert lenet["metrics"]["size_bytes"] == LENET_BYTES and lenet["metrics"]["flops"] == 2 * LENET_MACS
    params, macs = lenet["checks"]
    assert params["passed"] and params["headroom"] == pytest.approx((62_000 - 61_706) / 62_000)  # +0.47 %
    assert not macs["passed"] and macs["actual"] - macs["limit"] == 1
    assert mnist["metrics"]["params"] == MNIST_PARAMS and mnist["metrics"]["macs"] == MNIST_MACS
    assert [c["passed"] for c in mnist["checks"]] == [False, False]


# ----------------------------------------------------------------------------------------- config

def _project(tmp_path, body: str):
    (tmp_path / "tiny.py").write_text(TINY_PY)
    (tmp_path / "pyproject.toml").write_text(textwrap.dedent(body))
    return tmp_path


CONFIG = """\
    [project]
    name = "demo"

    [tool.cnnscope.check]
    max-params = "4M"                # every model, unless it sets its own

    [[tool.cnnscope.check.models]]
    model = "lenet5"
    max-params = "62K"
    max_macs = 416520

    [[tool.cnnscope.check.models]]
    model = "mnist_cnn"
    max-params = "3M"                # 3,274,634 > 3,000,000: fails

    [[tool.cnnscope.check.models]]
    model = "tiny.py:build"
    input-size = "32"
    max-macs = "221216"
    max-size-mb = "1KiB"             # 260 × 4 = 1,040 bytes ≤ 1,024? no: fails
    """


def test_pyproject_config_with_several_models_github_and_junit(cli_here, tmp_path):
    proj = _project(tmp_path, CONFIG)
    code, out, err = cli_here("check", "--format", "github", "--junit-xml", "junit.xml", cwd=proj)
    assert code == 1, err
    assert "2 of 6 checks failed: mnist_cnn params, tiny.py:build size-mb" in err

    # GitHub workflow commands, line by line
    lines = out.strip().splitlines()
    assert all(line.startswith("::") for line in lines), lines
    cmd = re.compile(r"^::(error|warning|notice) ([^:]*)::(.*)$")
    parsed = [cmd.match(line).groups() for line in lines]
    assert [(kind, props.split("title=")[1]) for kind, props, _ in parsed] == [
        ("notice", "cnnscope check%3A lenet5 passed"),
        ("error", "cnnscope check%3A mnist_cnn params"),
        ("error", "cnnscope check%3A tiny.py%3Abuild size-mb"),
    ]
    kind, props, message = parsed[1]
    assert props.startswith("file=pyproject.toml,line=13,")     # the mnist_cnn entry's model = line
    assert message == "mnist_cnn: params 3,274,634 (3.27M) exceeds the budget 3M by 9.2%25"  # % escaped
    assert parsed[2][1].startswith("file=pyproject.toml,line=17,")
    # 1,040 B over 1,024 B: (1,040 − 1,024) / 1,024 = 1.5625 %
    assert parsed[2][2] == "tiny.py:build: size-mb 1,040 B (1.0 KB) exceeds the budget 1KiB by 1.6%25"
    # lenet5's MACs budget is its exact count: zero headroom, the tightest of its two checks
    assert parsed[0][2] == "lenet5: all 2 checks hold; least headroom: macs 416,520 (417K) ≤ 416,520, +0.0%25"

    # JUnit XML, parsed back
    root = ET.parse(proj / "junit.xml").getroot()
    assert root.tag == "testsuites" and root.get("tests") == "6" and root.get("failures") == "2"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["lenet5", "mnist_cnn", "tiny.py:build"]
    assert [(s.get("tests"), s.get("failures")) for s in suites.values()] == [("2", "0"), ("1", "1"), ("3", "1")]
    props = {p.get("name"): p.get("value") for p in suites["tiny.py:build"].find("properties")}
    assert props["input_shape"] == "1x3x32x32"
    cases = suites["mnist_cnn"].findall("testcase")
    assert [c.get("name") for c in cases] == ["params ≤ 3M"]
    assert [c.get("name") for c in suites["tiny.py:build"].findall("testcase")] == [
        "params ≤ 4M", "macs ≤ 221,216", "size-mb ≤ 1KiB"]
    failure = cases[0].find("failure")
    assert failure.get("type") == "BudgetExceeded" and "3,274,634" in failure.get("message")
    assert [c.find("failure") for c in suites["lenet5"].findall("testcase")] == [None, None]


def test_github_annotation_paths_are_relative_to_the_workspace(tmp_path, monkeypatch):
    from cnnscope.check.report import render

    check = {"metric": "params", "kind": "max", "unit": "count", "limit": 10, "actual": 11, "passed": False,
             "headroom": -0.1, "budget_text": "10", "baseline": None, "growth": None}
    model = {"name": "m", "model": "m", "input_shape": [1], "passed": False, "metrics": {}, "checks": [check],
             "seconds": 0.0, "baseline_missing": False, "origin": "pyproject.toml", "line": 7}
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")                       # a step with working-directory: sub
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path))
    line = render({"models": [model]}, "github").strip()
    # (11 − 10) / 10 = 10 % over
    assert line == "::error file=sub/pyproject.toml,line=7,title=cnnscope check%3A m params::m: params 11 exceeds " \
                   "the budget 10 by 10.0%25"
    monkeypatch.delenv("GITHUB_WORKSPACE")
    assert render({"models": [model]}, "github").startswith("::error file=pyproject.toml,line=7,")


def test_config_models_selected_by_name_and_cli_budgets_override(cli_here, tmp_path):
    proj = _project(tmp_path, CONFIG)
    # --max-params replaces mnist_cnn's 3M; MODEL picks the entry of --config by name
    code, out, err = cli_here("check", "mnist_cnn", "--config", proj / "pyproject.toml", "--max-params", "3274634",
                         "--format", "json")
    assert code == 0, err
    (model,) = json.loads(out)["models"]
    assert model["name"] == "mnist_cnn" and model["checks"][0]["limit"] == MNIST_PARAMS


def test_config_paths_are_relative_to_the_config_file(tmp_path, monkeypatch):
    (tmp_path / "proj").mkdir()
    proj = _project(tmp_path / "proj", CONFIG)
    monkeypatch.chdir(tmp_path)
    cfg = load_config(proj / "pyproject.toml")
    tiny = cfg.targets[2]
    assert tiny.name == "tiny.py:build" and tiny.spec == f"{proj / 'tiny.py'}:build"
    assert [b.metric.name for b in cfg.targets[0].budgets] == ["params", "macs"]
    assert [b.limit for b in cfg.targets[1].budgets] == [3_000_000]           # own budget beats the default
    assert [(b.metric.name, b.limit) for b in tiny.budgets] == [("params", 4_000_000), ("macs", 221_216),
                                                                ("size-mb", 1024)]


@pytest.mark.parametrize("body, needle", [
    ("[project]\nname = 'x'\n", "has no [tool.cnnscope.check] table"),
    ("[tool.cnnscope.check]\nmax-params = '1M'\n", "lists no models"),
    ("[tool.cnnscope.check]\nmodels = []\n", "lists no models"),
    ("[[tool.cnnscope.check.models]]\nmodel = 'lenet5'\nmax-params = 'ten'\n", "models[1] (lenet5)"),
    ("[[tool.cnnscope.check.models]]\nmodel = 'lenet5'\nmax-parms = '1M'\n", "closest: max-params"),
    ("[[tool.cnnscope.check.models]]\nmax-params = '1M'\n", "has no model ="),
    ("[[tool.cnnscope.check.models]]\nmodel = 'lenet5'\n[[tool.cnnscope.check.models]]\nmodel = 'lenet5'\n",
     "listed twice"),
    ("[tool.cnnscope.check\n", "not valid TOML"),
])
def test_bad_configs_exit_2_with_one_line(cli, tmp_path, body, needle):
    (tmp_path / "pyproject.toml").write_text(body)
    assert_one_line_error(*cli("check", cwd=tmp_path), contains=needle)


def test_python_310_without_tomli_gets_a_clear_error(tmp_path, monkeypatch):
    import sys

    (tmp_path / "pyproject.toml").write_text("[[tool.cnnscope.check.models]]\nmodel = 'lenet5'\n")
    monkeypatch.setitem(sys.modules, "tomllib", None)      # as on Python 3.10 …
    monkeypatch.setitem(sys.modules, "tomli", None)        # … without the optional tomli
    with pytest.raises(CnnscopeError, match="needs Python ≥ 3.11 .tomllib. or the 'tomli' package"):
        load_config(tmp_path / "pyproject.toml")


def test_no_model_and_no_pyproject(cli, tmp_path):
    assert_one_line_error(*cli("check", cwd=tmp_path), contains="no pyproject.toml in the current directory")


# --------------------------------------------------------------------------------------- baselines

BASELINE_CONFIG = """\
    [tool.cnnscope.check]
    baseline = "sizes.json"

    [[tool.cnnscope.check.models]]
    model = "lenet5"

    [[tool.cnnscope.check.models]]
    model = "tiny.py:build"
    input-size = "3x32x32"
    """


def test_baseline_update_then_growth_detection(cli_here, tmp_path):
    proj = _project(tmp_path, BASELINE_CONFIG)
    # no file yet: exit 2, and the fix
    assert_one_line_error(*cli_here("check", cwd=proj), contains="create it by running the same `cnnscope check` "
                                                                 "with --update-baseline")
    code, out, err = cli_here("check", "--update-baseline", cwd=proj)
    assert code == 0, err
    assert "baseline written to sizes.json" in out
    text = (proj / "sizes.json").read_text()
    data = json.loads(text)
    assert data["schema"] == "cnnscope.baseline/1"
    assert data["models"]["lenet5"] == {"input_shape": [1, 1, 28, 28], "params": LENET_PARAMS, "macs": LENET_MACS,
                                        "flops": 2 * LENET_MACS, "size_bytes": LENET_BYTES,
                                        "activation_bytes": data["models"]["lenet5"]["activation_bytes"],
                                        "peak_memory_bytes": LENET_BYTES + LENET_PEAK}
    assert data["models"]["tiny.py:build"]["params"] == TINY_PARAMS
    # stable, sorted, diff-friendly: keys sorted at every level, shapes on one line, newline at the end
    assert text == render_baseline(data["models"]) and text.endswith("}\n")
    assert '"input_shape": [1, 1, 28, 28],' in text
    orders = []
    json.loads(text, object_pairs_hook=lambda pairs: orders.append([k for k, _ in pairs]) or dict(pairs))
    assert orders and all(keys == sorted(keys) for keys in orders), orders

    # lenet5 "was" 58,000 params: 61,706 / 58,000 = 1.0639 → +6.4 % > 5 % (the default allowance)
    data["models"]["lenet5"]["params"] = 58_000
    (proj / "sizes.json").write_text(json.dumps(data))
    code, out, err = cli_here("check", cwd=proj)
    # 2 models × 6 growth checks (params, macs, flops, size, activations, peak memory)
    assert code == 1 and "1 of 12 checks failed: lenet5 params growth" in err, (out, err)
    row = next(line for line in out.splitlines() if line.startswith("params"))
    assert re.search(r"58K \(\+6\.4%\)\s+GREW$", row), row
    # … and passes when 7 % growth is allowed (limit 58,000 × 1.07 = 62,060)
    code, out, err = cli_here("check", "--max-growth", "7%", "--format", "json", cwd=proj)
    assert code == 0, err
    growth = next(c for c in json.loads(out)["models"][0]["checks"]
                  if c["kind"] == "growth" and c["metric"] == "params")
    assert growth["limit"] == pytest.approx(62_060) and growth["growth"] == pytest.approx(61_706 / 58_000 - 1)


@pytest.mark.parametrize("content, needle", [
    ('{"foo": 1}', "is not a cnnscope baseline"),
    ("not json at all", "not JSON"),
    ('{"schema": "cnnscope.summary/1", "models": {}}', "'cnnscope.summary/1'"),
    ('{"schema": "cnnscope.baseline/1", "models": {"lenet5": {"params": "many"}}}', "entry of model 'lenet5'"),
])
def test_foreign_baseline_exit_2(cli, tmp_path, content, needle):
    path = tmp_path / "b.json"
    path.write_text(content)
    assert_one_line_error(*cli("check", "lenet5", "--baseline", path), contains=needle)
    # --update-baseline refuses to overwrite a file that is not ours
    assert_one_line_error(*cli("check", "lenet5", "--baseline", path, "--update-baseline"), contains=needle)
    assert path.read_text() == content


def test_read_baseline_accepts_a_json_check_report(tmp_path):
    report = {"schema": "cnnscope.check/1", "models": [
        {"name": "lenet5", "input_shape": [1, 1, 28, 28], "metrics": {"params": 61706, "macs": 416520}}]}
    (tmp_path / "r.json").write_text(json.dumps(report))
    assert read_baseline(str(tmp_path / "r.json"))["lenet5"]["params"] == 61706


def test_update_baseline_needs_a_file(cli):
    assert_one_line_error(*cli("check", "lenet5", "--update-baseline"), contains="needs --baseline")


# ---------------------------------------------------------------------------------------------- ONNX

@pytest.mark.slow
def test_onnx_model_is_checked_like_its_pytorch_source(cli_here, tmp_path):
    import cnnscope.export.onnx_summary  # noqa: F401  (part of the package: never skipped)
    import torch

    from cnnscope import load_model

    path = tmp_path / "lenet5.onnx"
    torch.onnx.export(load_model("lenet5"), (torch.zeros(1, 1, 28, 28),), str(path), dynamo=False)
    file_bytes = path.stat().st_size
    code, out, err = cli_here("check", path, "--max-params", LENET_PARAMS, "--max-macs", LENET_MACS,
                         "--max-size-mb", f"{LENET_BYTES}B", "--max-file-mb", f"{file_bytes}B", "--format", "json")
    assert code == 0, (out, err)
    m = json.loads(out)["models"][0]["metrics"]
    # weight bytes are the same definition for .onnx and PyTorch; the file adds the graph around them
    assert (m["params"], m["macs"], m["size_bytes"], m["file_bytes"]) == (LENET_PARAMS, LENET_MACS, LENET_BYTES,
                                                                          file_bytes)
    assert file_bytes > LENET_BYTES
    code, out, err = cli_here("check", path, "--max-file-mb", f"{file_bytes - 1}B")
    assert code == 1 and "file-mb" in err


# ------------------------------------------------------------------------------------ examples/ci

EXAMPLE = ROOT / "examples" / "ci"


def test_example_project_passes_its_own_gate(cli_here):
    # the example pyproject.toml, models.py and committed baseline must keep passing as the code evolves
    code, out, err = cli_here("check", "--format", "json", cwd=EXAMPLE)
    assert code == 0, (f"{err}\nIf a size changed on purpose, refresh the example's baseline: "
                       f"cd examples/ci && cnnscope check --update-baseline")
    models = {m["name"]: m for m in json.loads(out)["models"]}
    assert list(models) == ["models.py:small_cnn", "resnet18", "lenet5-batch8"]
    # torchvision's published resnet18 size: 11,689,512 params (weights.meta["num_params"])
    assert models["resnet18"]["metrics"]["params"] == 11_689_512
    assert models["lenet5-batch8"]["metrics"]["macs"] == 8 * LENET_MACS            # 3,332,160
    # six 3×3 convs with jumps 1,1,2,2,4,4: r = 1 + 2·(1+1+2+2+4+4) = 29
    rf = next(c for c in models["models.py:small_cnn"]["checks"] if c["metric"] == "rf")
    assert rf["actual"] == [29, 29]


def test_example_ci_files_run_cnnscope_check(tmp_path):
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to parse the example workflow")
    workflow = yaml.safe_load((EXAMPLE / "github-workflow.yml").read_text())
    steps = [s.get("run", "") for s in workflow["jobs"]["check"]["steps"]]
    assert any(s.startswith("cnnscope check --format github --junit-xml") for s in steps)
    assert any("cnnscope compare" in s and "--format markdown" in s for s in
               (s.get("run", "") for s in workflow["jobs"]["compare"]["steps"]))
    report = next(s for s in steps if "cnnscope report" in s)
    for line in report.splitlines():            # the report step's commands run as written here
        if line.startswith("cnnscope report"):
            argv = line.split()[1:]
            out = tmp_path / argv[argv.index("-o") + 1]
            out.parent.mkdir(exist_ok=True)
            argv[argv.index("-o") + 1] = str(out)
            from tests.conftest import run_inprocess

            code, _, err = run_inprocess(*argv, cwd=EXAMPLE)
            assert code == 0 and out.exists(), err
    hooks = yaml.safe_load((EXAMPLE / "pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    assert hooks[0]["entry"].startswith("cnnscope check") and hooks[0]["pass_filenames"] is False
    (entry,) = yaml.safe_load((EXAMPLE / "pre-commit-hooks.yaml").read_text())
    assert entry["id"] == "cnnscope-check" and entry["entry"] == "cnnscope check"


def test_no_budget_at_all_is_bad_input(cli):
    """A gate with nothing to check must not pass silently ("0 checks: all held"), issue 13."""
    from tests.conftest import assert_one_line_error

    assert_one_line_error(*cli("check", "lenet5"), contains="no budget given")
