"""`check --max-latency`: a measured budget judged against the measured spread."""
import json

import pytest

from cnnscope.check.budgets import evaluate_budget, parse_budget
from cnnscope.errors import CnnscopeError
from tests.conftest import assert_one_line_error


@pytest.mark.parametrize("text, ms", [("30ms", 30.0), ("30 ms", 30.0), ("0.03s", 30.0), ("30", 30.0),
                                      ("250us", 0.25)])
def test_latency_budget_units(text, ms):
    assert parse_budget("max-latency", text).limit == pytest.approx(ms)


@pytest.mark.parametrize("text", ["3xs", "-1ms", "0", "fast", True])
def test_malformed_latency_budgets(text):
    with pytest.raises(CnnscopeError, match="max-latency"):
        parse_budget("max-latency", text)


def test_a_budget_within_the_spread_is_not_a_failure():
    b = parse_budget("max-latency", "30ms")
    assert evaluate_budget(b, 29.0, tolerance=0.5).passed
    assert evaluate_budget(b, 31.0, tolerance=2.0).passed          # 31 ≤ 30 + 2: within the noise
    r = evaluate_budget(b, 33.0, tolerance=2.0)                     # 33 > 30 + 2
    assert not r.passed and r.tolerance == 2.0 and r.headroom == pytest.approx(-0.1)


def test_check_max_latency_on_the_cli(cli):
    code, out, err = cli("check", "lenet5", "--max-latency", "10s", "--latency-runs", "5", "-f", "json")
    assert code == 0, err
    m = json.loads(out)["models"][0]
    assert m["metrics"]["latency_runtime"] == "ort" and m["metrics"]["latency_runs"] == 5
    assert 0 < m["metrics"]["latency_ms"] < 10_000
    code, out, err = cli("check", "lenet5", "--max-latency", "1us", "--latency-runs", "5", "--runtime", "torch")
    assert code == 1 and "latency" in out and "EXCEEDED" in out
    code, out, err = cli("check", "lenet5", "--max-latency", "1us", "--latency-runs", "5", "-f", "github")
    assert code == 1 and "more than the measured spread" in out


def test_bad_latency_options(cli):
    assert_one_line_error(*cli("check", "lenet5", "--max-latency", "soon"), contains="--max-latency")
    assert_one_line_error(*cli("check", "lenet5", "--max-latency", "1s", "--latency-runs", "1"))
