"""`prune --target-latency`: a measured latency table chooses the ratio, a measurement confirms it."""
import pytest

from cnnscope.errors import CheckFailed
from cnnscope.timing import latency_prune
from cnnscope.timing.latency_prune import parse_target, predict, prune_to_latency, read_row
from tests.conftest import assert_one_line_error


def test_reading_the_table_by_hand():
    pts = [[0.25, 1.0], [0.5, 2.0], [1.0, 6.0]]
    assert read_row(pts, 1.0) == 6.0 and read_row(pts, 0.75) == pytest.approx(4.0)   # halfway 2 → 6
    assert read_row(pts, 0.125) == pytest.approx(0.5)            # proportional below the smallest width
    # a conv keeping half its inputs and half its outputs has width √(¼) = ½; the ReLU after it follows
    table = {"rows": {"conv": pts, "relu": [[0.5, 0.2], [1.0, 0.4]]}}
    base = {"conv.weight": (64 * 64 * 9, 4)}
    assert predict(table, base, {"conv.weight": 0.25}) == pytest.approx(2.0 + 0.2)


@pytest.mark.parametrize("text, parsed", [("20ms", ("ms", 20.0)), ("0.5s", ("ms", 500.0)), ("60%", ("fraction", 0.6))])
def test_targets(text, parsed):
    assert parse_target(text) == pytest.approx(parsed) if parsed[0] == "ms" else parse_target(text) == parsed


def test_prune_to_a_measured_target_and_reuse_the_table(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSCOPE_CACHE_DIR", str(tmp_path / "cache"))   # a table the docs' examples left is not ours
    out = tmp_path / "fast.pt"
    report = prune_to_latency("resnet18", "60%", input_size="3x64x64", output=str(out)).to_dict()
    search, measured = report["target_search"], report["measured"]
    original = search["table"]["measured_totals"][0][1]
    assert search["target_ms"] == pytest.approx(0.6 * original)
    assert not search["table"]["cached"] and out.is_file()
    after = measured["after"]
    assert after["median_ms"] <= search["target_ms"] + after["iqr_ms"]
    assert measured["before"]["median_ms"] > after["median_ms"]
    assert abs(measured["prediction_error"]) < 0.25          # the table predicts the pruned model's latency
    # each attempt was built and timed; a later one only after the earlier missed its target
    attempts = search["attempts"]
    assert 1 <= len(attempts) <= latency_prune.CORRECTIONS
    assert all(a["measured_ms"] > a["target_ms"] for a in attempts[:-1])
    again = prune_to_latency("resnet18", "60%", input_size="3x64x64", output=None).to_dict()
    assert again["target_search"]["table"]["cached"]
    assert again["target_search"]["predicted_unpruned_ms"] == pytest.approx(search["predicted_unpruned_ms"])


def test_a_missed_target_fails_and_writes_nothing(tmp_path, monkeypatch):
    # a table that flatters every pruned layer (× width², exact at full width): the chosen ratio is far too
    # mild for the target
    monkeypatch.setattr(latency_prune, "read_row", lambda pts, w: read_row(pts, w) * w * w)
    monkeypatch.setattr(latency_prune, "CORRECTIONS", 0)     # no closed loop to repair the table
    out = tmp_path / "fast.pt"
    with pytest.raises(CheckFailed, match="missed.*nothing was written"):
        prune_to_latency("resnet18", "30%", input_size="3x64x64", output=str(out), use_cache=False)
    assert list(tmp_path.iterdir()) == []


def test_cli_errors(cli):
    assert_one_line_error(*cli("prune", "lenet5", "--target-latency", "1s", "--ratio", "0.5", "--dry-run"),
                          contains="--ratio")
    assert_one_line_error(*cli("prune", "lenet5", "--target-latency", "150%", "--dry-run"), contains="100%")
    assert_one_line_error(*cli("prune", "lenet5", "--target-latency", "1us", "--dry-run"), contains="cannot be met")
