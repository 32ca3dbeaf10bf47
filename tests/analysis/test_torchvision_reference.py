"""Every torchvision classification model against torchvision's own published ``weights.meta``."""
import pytest
import torchvision

import cnnscope

NAMES = sorted(torchvision.models.list_models(module=torchvision.models))


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_params_and_macs_match_published_meta(name):
    weights = list(torchvision.models.get_model_weights(name))[0]
    s = cnnscope.summary(name, weights=weights.name)
    assert s.totals.params == weights.meta["num_params"]
    published = weights.meta["_ops"]
    gmacs = s.totals.macs / 1e9
    assert abs(gmacs - published) <= max(0.005 * published, 0.0005), (gmacs, published)


def test_weights_configure_architecture_without_download():
    # googlenet with weights: transform_input on, aux heads removed → 6,624,904 params (published)
    s = cnnscope.summary("googlenet", weights="DEFAULT")
    assert s.totals.params == torchvision.models.GoogLeNet_Weights.DEFAULT.meta["num_params"]
    # ViT-B/16 SWAG end-to-end: image size 384 from the weights, not the default 224
    assert cnnscope.summary("vit_b_16", weights="IMAGENET1K_SWAG_E2E_V1").input_shape == [1, 3, 384, 384]


def test_regnet_needs_no_real_weights():
    # RegNet's constructor computes with tensors; the analysis must still stay on meta
    s = cnnscope.summary("regnet_y_400mf")
    assert s.totals.params == torchvision.models.RegNet_Y_400MF_Weights.DEFAULT.meta["num_params"]
