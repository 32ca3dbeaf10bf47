"""advise: every saving comes from applying the rewrite; checked against VGG-16 arithmetic by hand."""
import json

import pytest

from tests.conftest import assert_one_line_error


@pytest.fixture(scope="module")
def vgg16_advice():
    from cnnscope.transforms.advise import advise

    return advise("vgg16", input_size=(3, 64, 64))


def test_stride_sites_save_three_quarters(vgg16_advice):
    sites = {(s["method"], s["site"]): s for s in vgg16_advice["sites"]}
    # features.2: 64→64 3×3 at 64×64 = 64·64·9·64·64 MACs; stride 2 computes a quarter; the max-pool has 0 MACs
    assert sites[("stride", "features.2")]["macs_saved"] == 64 * 64 * 9 * 64 * 64 * 3 // 4 == 113_246_208
    assert sites[("stride", "features.2")]["params_saved"] == 0
    # features.28: 512→512 at 4×4
    assert sites[("stride", "features.28")]["macs_saved"] == 512 * 512 * 9 * 4 * 4 * 3 // 4
    saved = [s["macs_saved"] for s in vgg16_advice["sites"]]
    assert saved == sorted(saved, reverse=True)


def test_fc_to_global_pooling(vgg16_advice):
    m = {x["method"]: x for x in vgg16_advice["methods"]}["FC → global pooling"]
    # torchvision vgg16: 138,357,544 params; classifier 25088·4096+4096 + 4096·4096+4096 + 4096·1000+1000
    classifier = 25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000
    assert m["params"] == [138_357_544, 138_357_544 - classifier + 512 * 1000 + 1000]
    assert m["params"][1] / m["params"][0] < 0.2


def test_reduce_site_matches_formula(vgg16_advice):
    sites = {(s["method"], s["site"]): s for s in vgg16_advice["sites"]}
    # features.28 (512→512 3×3 at 4×4), rank ceil(0.25·512) = 128: 1×1 512→128 + 3×3 128→512
    before = 512 * 512 * 9 * 16
    after = (512 * 128 + 128 * 512 * 9) * 16
    assert sites[("reduce (rank 0.25)", "features.28")]["macs_saved"] == before - after
    assert sites[("reduce (rank 0.25)", "features.28")]["params_saved"] == 512 * 512 * 9 - (512 * 128 + 128 * 512 * 9)


def test_cli_json_and_table(cli):
    code, out, err = cli("advise", "alexnet", "-i", "64", "--format", "json")
    assert code == 0, err
    r = json.loads(out)
    assert r["schema"] == "cnnscope.advise/1"
    methods = {m["method"] for m in r["methods"]}
    assert {"stride", "factorize stack", "FC → global pooling"} <= methods
    code, out, err = cli("advise", "alexnet", "-i", "64")
    assert code == 0, err
    assert "MACs saved" in out and "1 MAC = one multiply-accumulate" in out


def test_cli_unknown_model(cli):
    code, out, err = cli("advise", "resnet5O")
    assert_one_line_error(code, out, err, 2)
