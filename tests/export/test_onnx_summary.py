"""`cnnscope summary model.onnx`: ONNX files analysed with the PyTorch analysis' conventions.

Reference numbers come from elsewhere: the PyTorch summary of the same model (itself checked
against torchvision's published tables), hand arithmetic, and onnxruntime's actual output shapes.
"""
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnnscope
from cnnscope.errors import CnnscopeError
from cnnscope.export import export_onnx
from cnnscope.export.onnx_summary import (ONNX_MAC_FORMULAS, einsum_macs, gemm_macs, matmul_macs, module_path,
                                          onnx_summary)
from tests.conftest import assert_one_line_error


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """resnet18 and mobilenet_v2 exported once at their natural size (224), plus a dynamic-batch file."""
    folder = tmp_path_factory.mktemp("onnx")
    files = {}
    for name in ("resnet18", "mobilenet_v2"):
        files[name] = folder / f"{name}.onnx"
        export_onnx(name, files[name])
    files["mnist_dynamic"] = folder / "mnist_dynamic.onnx"
    export_onnx("mnist_cnn", files["mnist_dynamic"], dynamic_batch=True)
    return files


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_totals_equal_pytorch_summary(exported, name):
    s = onnx_summary(exported[name])
    ref = cnnscope.summary(name)
    assert s.totals.params == ref.totals.params          # exactly
    assert abs(s.totals.macs - ref.totals.macs) <= 0.001 * ref.totals.macs
    assert s.totals.flops == 2 * s.totals.macs
    assert s.input_shape == [1, 3, 224, 224]


def test_published_numbers(exported):
    """torchvision's own table: resnet18 11,689,512 params, 1.814 GMACs; mobilenet_v2 3,504,872, 0.301 G."""
    r18, mv2 = onnx_summary(exported["resnet18"]), onnx_summary(exported["mobilenet_v2"])
    assert r18.totals.params == 11_689_512 and round(r18.totals.macs / 1e9, 3) == 1.814
    assert mv2.totals.params == 3_504_872 and round(mv2.totals.macs / 1e9, 3) == 0.301


def test_module_rows_match_pytorch_rows(exported):
    """The exporter's scoped names rebuild the module tree: depth-1 and depth-2 rows of the ONNX
    summary carry the same params and MACs as the PyTorch summary's rows of the same name."""
    s = onnx_summary(exported["resnet18"])
    ref = {r.name: r for r in cnnscope.summary("resnet18").layers}
    checked = 0
    for row in s.layers:
        if row.depth <= 2 and row.name in ref:
            assert (row.params, row.macs) == (ref[row.name].params, ref[row.name].macs), row.name
            assert row.output_shape == list(ref[row.name].output_shape), row.name
            checked += 1
    assert checked >= 15   # conv1, bn1, relu, maxpool, layer1..4 and their blocks, avgpool, fc
    # the 3×3 conv of a basic block: 3·3·64·64 weights, each applied at 56×56 positions
    conv = s.layer("layer1.0.conv1")
    assert conv.type == "Conv" and conv.params == 3 * 3 * 64 * 64 and conv.macs == 3 * 3 * 64 * 64 * 56 * 56
    assert s.layer("layer1.0.bn1").params == 128       # scale and shift; running stats are buffers


def _ort_shapes(path):
    """Every node output's actual shape, from onnxruntime running the file on a random input."""
    import onnxruntime as ort

    model = onnx.load(str(path))
    known = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for out in node.output:
            if out and out not in known and node.op_type != "Constant":
                model.graph.output.append(helper.ValueInfoProto(name=out))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    names = [o.name for o in sess.get_outputs()]
    values = sess.run(names, {inp.name: np.random.rand(*shape).astype(np.float32)})
    return model, {n: list(v.shape) for n, v in zip(names, values)}


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_row_shapes_equal_onnxruntime(exported, name):
    """Every node row's output shape (from ONNX shape inference) equals what onnxruntime produces."""
    model, actual = _ort_shapes(exported[name])
    nodes = [n for n in model.graph.node if n.op_type != "Constant"]
    rows = [r for r in onnx_summary(exported[name]).layers if r.type != "module"]
    assert len(rows) == len(nodes)       # one row per node, in graph order
    for row, node in zip(rows, nodes):
        assert row.type == node.op_type
        assert row.output_shape == actual[node.output[0]], (row.name, node.name)


def test_dynamic_batch_file(exported):
    one = onnx_summary(exported["mnist_dynamic"])
    four = onnx_summary(exported["mnist_dynamic"], batch_size=4)
    assert one.input_shape == [1, 1, 28, 28] and four.input_shape == [4, 1, 28, 28]
    assert four.totals.macs == 4 * one.totals.macs == 4 * cnnscope.summary("mnist_cnn").totals.macs
    assert four.totals.params == one.totals.params == 3_274_634


def test_fixed_file_refuses_other_sizes(exported):
    with pytest.raises(CnnscopeError, match="fixes input"):
        onnx_summary(exported["resnet18"], input_size="3x64x64")
    with pytest.raises(CnnscopeError, match="batch size"):
        onnx_summary(exported["resnet18"], batch_size=8)
    # the same size as the file's is fine
    assert onnx_summary(exported["resnet18"], input_size=224).totals.params == 11_689_512


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_symbolic_spatial_dims_need_input_size(tmp_path):
    import torch
    from torch import nn

    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
    path = tmp_path / "fcn.onnx"
    torch.onnx.export(net, (torch.randn(1, 3, 32, 32),), str(path), dynamo=False, input_names=["x"],
                      dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}})
    with pytest.raises(CnnscopeError, match="pass input_size CxHxW"):
        onnx_summary(path)
    s = onnx_summary(path, input_size="3x40x20")
    assert s.input_shape == [1, 3, 40, 20]
    assert s.totals.macs == 3 * 3 * 3 * 8 * 40 * 20
    assert s.totals.params == 3 * 3 * 3 * 8 + 8


def test_hand_built_file_without_scopes(tmp_path):
    """A file from another tool: plain node names, weights as initializers, one row per node."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((16, 3, 5, 5)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(16, np.float32), "b")
    fc = numpy_helper.from_array(rng.standard_normal((10, 16 * 12 * 12)).astype(np.float32), "fc")
    shape = numpy_helper.from_array(np.array([1, -1], np.int64), "shape")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", strides=[2, 2], pads=[2, 2, 2, 2]),
         helper.make_node("Relu", ["c"], ["r"], name="relu"),
         helper.make_node("Reshape", ["r", "shape"], ["f"], name="flatten"),
         helper.make_node("Gemm", ["f", "fc"], ["y"], name="fc", transB=1)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 24, 24])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], [w, b, fc, shape])
    path = tmp_path / "hand.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    s = onnx_summary(path)
    assert [r.name for r in s.layers] == ["conv", "relu", "flatten", "fc"]
    assert all(r.depth == 1 for r in s.layers)
    # (24 + 4 − 5)/2 + 1 = 12 → 16×12×12 outputs, each 3·5·5 MACs; fc 2304·10
    assert s.layer("conv").output_shape == [1, 16, 12, 12]
    assert s.layer("conv").macs == 16 * 12 * 12 * 3 * 5 * 5
    assert s.layer("fc").macs == 16 * 12 * 12 * 10
    assert s.totals.params == 16 * 3 * 5 * 5 + 16 + 10 * 2304      # the int64 shape is a constant
    assert s.totals.buffer_bytes == 2 * 8


def test_conv_transpose_matches_pytorch(tmp_path):
    """ConvTranspose follows PyTorch's formula (each input pixel times C_out/groups · K·K weights)."""
    src = tmp_path / "up.py"
    src.write_text("from torch import nn\n\ndef build():\n"
                   "    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),\n"
                   "                         nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1, groups=2))\n")
    path = tmp_path / "up.onnx"
    export_onnx(f"{src}:build", path, input_size="3x32x32")
    s, ref = onnx_summary(path), cnnscope.summary(f"{src}:build", input_size="3x32x32")
    assert (s.totals.params, s.totals.macs) == (ref.totals.params, ref.totals.macs)
    assert s.layer("2").macs == 8 * 16 * 16 * (4 // 2) * 4 * 4


def test_formula_registry_by_hand():
    assert {"Conv", "ConvTranspose", "Gemm", "MatMul", "Einsum"} <= set(ONNX_MAC_FORMULAS)
    assert gemm_macs([(32, 64), (10, 64)], [(32, 10)], {"transB": 1}) == 32 * 64 * 10
    assert gemm_macs([(64, 32), (64, 10)], [(32, 10)], {"transA": 1}) == 32 * 64 * 10
    # batched attention scores: (2·12) heads × 197×64 · 64×197
    assert matmul_macs([(2, 12, 197, 64), (2, 12, 64, 197)], [(2, 12, 197, 197)], {}) == 2 * 12 * 197 * 64 * 197
    # a weight matrix broadcast over a 3-D input (a linear layer as MatMul)
    assert matmul_macs([(1, 50, 768), (768, 3072)], [(1, 50, 3072)], {}) == 50 * 768 * 3072
    assert einsum_macs([(2, 8, 16), (2, 16, 4)], [(2, 8, 4)], {"equation": "bij,bjk->bik"}) == 2 * 8 * 16 * 4
    assert einsum_macs([(3, 5, 8, 16), (16, 4)], [(3, 5, 8, 4)], {"equation": "...j,jk->...k"}) == 3 * 5 * 8 * 16 * 4
    assert einsum_macs([(8, 8)], [()], {"equation": "ii->"}) == 0


def test_module_path_from_scoped_names():
    def node(name):
        return helper.make_node("Relu", ["a"], ["b"], name=name)

    assert module_path(node("/layer1/layer1.0/conv1/Conv")) == "layer1.0.conv1"
    assert module_path(node("/features/features.1/conv/conv.0/conv.0.0/Conv")) == "features.1.conv.0.0"
    assert module_path(node("/encoder/layers/encoder_layer_0/self_attention/MatMul")) == \
        "encoder.layers.encoder_layer_0.self_attention"
    assert module_path(node("/Flatten")) == ""
    assert module_path(node("Conv_0")) is None
    dyn = node("node_Conv_1")
    entry = dyn.metadata_props.add()
    entry.key, entry.value = "pkg.torch.onnx.name_scopes", "['', 'layer1', 'layer1.0', 'layer1.0.bn1', 'batch_norm']"
    assert module_path(dyn) == "layer1.0.bn1"


def test_cli_summary_of_onnx(exported, cli):
    code, out, err = cli("summary", exported["resnet18"], "-f", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["totals"]["params"] == 11_689_512 and data["totals"]["macs"] == 1_814_073_344
    code, out, err = cli("summary", exported["mobilenet_v2"], "--depth", "1")
    assert code == 0, err
    assert "3,504,872" in out and "features" in out and "classifier" in out


def test_cli_bad_onnx_files(cli, tmp_path):
    assert_one_line_error(*cli("summary", tmp_path / "missing.onnx"), contains="does not exist")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"definitely not protobuf \x00\xff")
    assert_one_line_error(*cli("summary", junk), contains="junk.onnx")
