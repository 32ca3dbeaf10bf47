"""Artifacts: plain data, weights_only loading, identical outputs after a round trip."""
import pickle

import pytest
import torch

import cnnscope
from cnnscope.errors import CnnscopeError


def test_roundtrip_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = cnnscope.load_model("resnet18")
    path = tmp_path / "r18.pt"
    cnnscope.save_model(model, path)
    raw = torch.load(path, weights_only=True)            # no pickled module inside
    assert raw["format"] == "cnnscope/1" and raw["base"]["name"] == "resnet18" and raw["plan"] == []
    again = cnnscope.load_model(str(path))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))


def test_save_user_model_with_base(tmp_path):
    from torchvision.models import resnet18

    model = resnet18(num_classes=10)
    with pytest.raises(CnnscopeError, match="base="):
        cnnscope.save_model(model, tmp_path / "x.pt")
    with pytest.raises(CnnscopeError, match="do not fit"):
        cnnscope.save_model(model, tmp_path / "x.pt", base="resnet18")   # 10 classes vs 1000
    assert not (tmp_path / "x.pt").exists()


def test_code_source_roundtrip(tmp_path):
    src = tmp_path / "nets.py"
    src.write_text("from torch import nn\n\ndef tiny(width=4):\n"
                   "    return nn.Sequential(nn.Conv2d(1, width, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2) if False else nn.Linear(width*6*6, 2))\n")
    model = cnnscope.load_model(f"{src}:tiny")
    s = cnnscope.summary(f"{src}:tiny", input_size="1x8x8")
    assert s.totals.params == (9 * 4 + 4) + (4 * 36 * 2 + 2)
    cnnscope.save_model(model, tmp_path / "tiny.pt")
    with pytest.raises(CnnscopeError, match=r"trust_code=True"):      # a file never chooses code to run
        cnnscope.load_model(str(tmp_path / "tiny.pt"))
    again = cnnscope.load_model(str(tmp_path / "tiny.pt"), trust_code=True)
    x = torch.randn(1, 1, 8, 8)
    assert torch.equal(model(x), again(x))


def test_malicious_pickle_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"format": "cnnscope/1", "x": Evil()}, f)
    with pytest.raises(CnnscopeError):
        cnnscope.summary(str(path))
    path2 = tmp_path / "evil2.pt"
    torch.save({"format": "cnnscope/1", "x": Evil()}, path2)
    with pytest.raises(CnnscopeError):
        cnnscope.load_model(str(path2))
    assert not marker.exists()


def test_state_dict_for_other_architecture(tmp_path):
    from torchvision.models import resnet18

    path = tmp_path / "sd.pt"
    torch.save(resnet18().state_dict(), path)
    with pytest.raises(CnnscopeError, match="missing|unexpected|wrong shape"):
        cnnscope.summary("resnet50", weights=str(path))
    # and it fits the right one
    assert cnnscope.summary("resnet18", weights=str(path)).totals.params == 11689512
