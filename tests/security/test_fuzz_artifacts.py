"""A hostile artifact of any shape: ``load_model`` and the CLI succeed or fail with exit 2 — never
another code, and never run code (no marker file is ever written)."""
import os
import tempfile

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnscope.errors import CnnscopeError

#: where a hostile base or helper.py would leave its mark if it ever ran (outside the source tree)
MARKER_DIR = tempfile.mkdtemp(prefix="cnnscope-fuzz-markers-")

plain = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=4), max_leaves=12)
refs = st.sampled_from(["os:system", "subprocess:run", "runpy:run_path", "torch.hub:load", "builtins:eval",
                        "helper.py:fn", "../helper.py:fn", "/tmp/x.py:fn", "posix:system", "nets:build", "x", "",
                        "torchvision.models:resnet18", "cnnscope.cli:main"])
bases = st.one_of(
    st.fixed_dictionaries({"source": st.just("code"), "ref": refs,
                           "kwargs": st.fixed_dictionaries({"command": st.just(f"touch {MARKER_DIR}/code")})}),
    st.fixed_dictionaries({"source": st.sampled_from(["torchvision", "builtin", "code", "onnx", "x"]),
                           "name": st.sampled_from(["lenet5", "resnet18", "mnist_cnn", "evil"]) | plain,
                           "kwargs": plain}),
    plain,
)
steps = st.lists(st.fixed_dictionaries({"kind": st.sampled_from(["prune", "reduce", "factorize", "stride", "x"])},
                                       optional={"tensors": plain, "sites": plain}) | plain, max_size=3)
tensors = st.dictionaries(st.text(max_size=10), st.builds(torch.zeros, st.integers(0, 4)), max_size=3) | plain


def _hostile_artifact(folder, base, plan, state_dict, fmt="cnnscope/1"):
    """An artifact of the drawn shape, beside a helper.py that leaves a marker if it is ever imported."""
    os.makedirs(MARKER_DIR, exist_ok=True)
    with open(folder / "helper.py", "w") as f:
        f.write(f"open({MARKER_DIR + '/helper'!r}, 'w').write('ran')\ndef fn(**kw):\n    return None\n")
    path = folder / "a.pt"
    torch.save({"format": fmt, "base": base, "plan": plan, "state_dict": state_dict}, path)
    return path


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(base=bases, plan=steps, state_dict=tensors, fmt=st.sampled_from(["cnnscope/1", "other", 1]))
def test_load_model_on_random_artifacts(tmp_path_factory, base, plan, state_dict, fmt):
    from cnnscope import load_model

    path = _hostile_artifact(tmp_path_factory.mktemp("fuzz"), base, plan, state_dict, fmt)
    try:
        load_model(str(path))
    except CnnscopeError:
        pass
    assert os.listdir(MARKER_DIR) == []


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(base=bases, plan=steps, state_dict=tensors)
def test_cli_on_random_artifacts(tmp_path_factory, base, plan, state_dict):
    from tests.conftest import run_inprocess

    path = _hostile_artifact(tmp_path_factory.mktemp("fuzzcli"), base, plan, state_dict)
    code, out, err = run_inprocess("summary", path)
    assert code in (0, 2), err
    assert os.listdir(MARKER_DIR) == []
