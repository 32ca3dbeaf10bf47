"""Class 2: the CI gate cannot be bypassed by the model's code (exit 0 or silence)."""
import json
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import assert_one_line_error, run_cli

from .conftest import write_artifact

EXITING = '''
import sys
from torch import nn

def at_build():
    sys.exit(0)

class ExitsInForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
    def forward(self, x):
        raise SystemExit(0)

def in_forward():
    return ExitsInForward()

def interrupts():
    raise KeyboardInterrupt

class Odd(nn.Module):
    def __init__(self, exc):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.exc = exc
    def forward(self, x):
        raise self.exc

def key_error():
    return Odd(KeyError("gone"))

def attribute_error():
    return Odd(AttributeError("no such thing"))

def zero_division():
    return Odd(ZeroDivisionError("division by zero"))

def generator_exit():
    return Odd(GeneratorExit())
'''


@pytest.fixture
def exiting(tmp_path):
    (tmp_path / "exiting.py").write_text(EXITING)
    return tmp_path / "exiting.py"


@pytest.mark.parametrize("fn, says", [("at_build", "sys.exit(0)"), ("in_forward", "sys.exit(0)"),
                                      ("interrupts", "KeyboardInterrupt"), ("key_error", "KeyError"),
                                      ("attribute_error", "AttributeError"), ("zero_division", "ZeroDivisionError"),
                                      ("generator_exit", "GeneratorExit")])
def test_user_code_that_exits_or_raises_is_exit_2(exiting, fn, says, inproc):
    code, out, err = inproc("check", f"{exiting}:{fn}", "--max-params", "1G", "-i", "16")
    assert_one_line_error(code, out, err, contains=says)


def test_sys_exit_in_an_artifact_base_cannot_pass_check_from_outside(exiting, tmp_path):
    """Seen from the shell, as CI sees it: exit 2, never 0, even with the code trusted."""
    art = write_artifact(tmp_path / "e.pt", {"source": "code", "ref": "exiting.py:at_build", "kwargs": {}})
    code, out, err = run_cli("check", art, "--max-params", "1G", "--trust-code")
    assert code == 2, (code, out, err)
    assert "sys.exit(0)" in err


@pytest.mark.parametrize("fmt", ["json", "junit", "github", "text"])
def test_check_writes_its_report_when_a_model_fails_to_load(exiting, tmp_path, inproc, fmt):
    report = tmp_path / f"report.{fmt}"
    code, out, err = inproc("check", "lenet5", f"{exiting}:at_build", "missing_model_name", "--max-params", "1M",
                            "-f", fmt, "-o", report)
    assert code == 2, err
    text = report.read_text()
    if fmt == "json":
        models = {m["name"]: m for m in json.loads(text)["models"]}
        assert models["lenet5"]["passed"] and models["lenet5"]["error"] is None
        assert "sys.exit(0)" in models[f"{exiting}:at_build"]["error"]
        assert not models[f"{exiting}:at_build"]["passed"]
        assert "unknown model" in models["missing_model_name"]["error"]
    elif fmt == "junit":
        root = ET.fromstring(text)
        assert root.get("errors") == "2"
        errors = [e.get("message") for e in root.iter("error")]
        assert any("sys.exit(0)" in m for m in errors) and any("unknown model" in m for m in errors)
    elif fmt == "github":
        assert sum(1 for line in text.splitlines() if line.startswith("::error")) == 2
    else:
        assert "ERROR" in text and "2 models could not be analysed" in text


def test_dash_writes_the_report_to_stdout(inproc):
    code, out, err = inproc("check", "lenet5", "--max-params", "1M", "-f", "junit", "-o", "-")
    assert code == 0, err
    assert ET.fromstring(out.split("\n", 1)[1]).get("tests") == "1"
