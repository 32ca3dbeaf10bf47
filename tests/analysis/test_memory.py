"""A 645M-parameter model is analysed without allocating its 2.5 GB of weights."""
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PEAK = "import resource,sys; {body}; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


def _peak_kb(body: str) -> int:
    out = subprocess.run([sys.executable, "-c", PEAK.format(body=body)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": ROOT}, check=True, timeout=300).stdout
    return int(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_regnet_y_128gf_peak_rss_far_below_weights():
    base = _peak_kb("import torch, torchvision")
    body = ("import cnnscope; s=cnnscope.summary('regnet_y_128gf', weights='IMAGENET1K_SWAG_E2E_V1'); "
            "assert s.totals.params == 644812894 and s.input_shape == [1, 3, 384, 384]")
    peak = _peak_kb(body)
    weights_kb = 644812894 * 4 / 1024
    # the analysis adds less than a tenth of what the weights would take
    assert peak - base < 0.1 * weights_kb, (peak, base)
