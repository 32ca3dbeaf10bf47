"""Class 8: analysis is the same in every autograd mode, and the user's hooks never see meta tensors."""
import torch
import torchvision

import cnnscope
from cnnscope.transforms.prune import prune_channels

# resnet18 at 224: torchvision's published figure (weights.meta["_ops"] = 1.814 GMACs) and by hand
RESNET18_MACS = 1_814_073_344
RESNET18_PARAMS = 11_689_512


def _summaries():
    model = torchvision.models.resnet18()
    results = {}
    with torch.inference_mode():
        results["inference_mode"] = cnnscope.summary(model).to_dict()
    with torch.no_grad():
        results["no_grad"] = cnnscope.summary(model).to_dict()
    results["grad"] = cnnscope.summary(model).to_dict()
    return results


def test_summary_is_identical_in_every_autograd_mode():
    results = _summaries()
    assert results["grad"]["totals"]["macs"] == RESNET18_MACS
    assert results["grad"]["totals"]["params"] == RESNET18_PARAMS
    assert results["inference_mode"] == results["grad"] == results["no_grad"]


def test_pruning_is_identical_in_every_autograd_mode():
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    with torch.inference_mode():
        a = prune_channels(model, ratio=0.5)
    b = prune_channels(model, ratio=0.5)
    params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert params(a.model) == params(b.model) < RESNET18_PARAMS
    assert a.steps == b.steps


def test_user_hooks_do_not_run_on_meta_tensors():
    model = torchvision.models.resnet18()
    seen = []
    model.layer1.register_forward_hook(lambda m, i, o: seen.append(o))
    model.conv1.register_forward_pre_hook(lambda m, i: seen.append(i))
    handle = torch.nn.modules.module.register_module_forward_hook(lambda m, i, o: seen.append(o))
    try:
        assert cnnscope.summary(model).totals.macs == RESNET18_MACS
    finally:
        handle.remove()
    assert seen == []
    # the user's hooks are still installed on the user's model and still work on real tensors
    model(torch.zeros(1, 3, 64, 64))
    pre_input, layer1_output = seen
    assert not pre_input[0].is_meta and not layer1_output.is_meta


def test_torch_own_hooks_are_told_apart_from_the_users():
    """Hooks torch installs for a module to compute (pruning masks, weight_norm) are kept on the shadow;
    a user's function or callable object is stripped."""
    from torch.nn.utils import prune

    from cnnscope.graph.meta_build import _is_torch_hook

    conv = torch.nn.Conv2d(3, 8, 3)
    prune.l1_unstructured(conv, "weight", 0.5)
    assert all(_is_torch_hook(h) for h in conv._forward_pre_hooks.values())

    class Recorder:
        def __call__(self, module, args):
            pass

    assert not _is_torch_hook(lambda m, a: None)
    assert not _is_torch_hook(Recorder())
