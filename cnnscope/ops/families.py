"""Op families: the ATen op packets that behave alike for cnnscope, listed once and read by every
pass (MACs, receptive field, explain), so a new overload is added in one place.
"""
from __future__ import annotations

#: normalisation: a per-element scale and shift with statistics (RF-neutral, 0 MACs)
NORMALIZATION = frozenset({
    "aten.native_batch_norm", "aten._native_batch_norm_legit", "aten._native_batch_norm_legit_no_training",
    "aten._native_batch_norm_legit_functional", "aten.native_layer_norm", "aten.native_group_norm",
    "aten.batch_norm", "aten.layer_norm", "aten.group_norm", "aten.instance_norm", "aten.rms_norm",
    "aten._fused_rms_norm", "aten.cudnn_batch_norm", "aten.miopen_batch_norm",
})

#: scaled dot-product attention, every backend's overload: (query, key, value, …)
ATTENTION = frozenset({
    "aten._scaled_dot_product_flash_attention_for_cpu", "aten._scaled_dot_product_flash_attention",
    "aten._scaled_dot_product_efficient_attention", "aten._scaled_dot_product_cudnn_attention",
    "aten.scaled_dot_product_attention", "aten._scaled_dot_product_attention_math",
    "aten._scaled_dot_product_fused_attention_overrideable",
})

#: convolution, every backend's overload: (input, weight, bias, stride, padding, dilation, transposed, …)
CONVOLUTION = frozenset({"aten.convolution", "aten._convolution", "aten.cudnn_convolution",
                         "aten.mkldnn_convolution"})

#: max and average pooling with an explicit window: (input, kernel_size, stride, padding, [dilation], ceil_mode)
POOLING = frozenset({
    "aten.max_pool1d", "aten.max_pool2d", "aten.max_pool3d", "aten.max_pool1d_with_indices",
    "aten.max_pool2d_with_indices", "aten.max_pool3d_with_indices", "aten.quantized_max_pool2d",
    "aten.avg_pool1d", "aten.avg_pool2d", "aten.avg_pool3d",
})

#: adaptive pooling: the window follows from the input and output sizes (PyTorch's index rule)
ADAPTIVE_POOLING = frozenset({
    "aten._adaptive_avg_pool2d", "aten._adaptive_avg_pool3d",
    "aten.adaptive_avg_pool1d", "aten.adaptive_avg_pool2d", "aten.adaptive_avg_pool3d",
    "aten.adaptive_max_pool1d", "aten.adaptive_max_pool2d", "aten.adaptive_max_pool3d",
})

#: pools no pass has a window rule for (the channels still pass through them)
OTHER_POOLING = frozenset({"aten.fractional_max_pool2d", "aten.fractional_max_pool3d", "aten.max_unpool2d",
                           "aten.max_unpool3d"})

#: interpolation on the last 1/2/3 dims: (input, output_size, [align_corners], scales… | scale_factors)
RESAMPLING = frozenset({
    "aten.upsample_nearest1d", "aten.upsample_nearest2d", "aten.upsample_nearest3d",
    "aten._upsample_nearest_exact1d", "aten._upsample_nearest_exact2d", "aten._upsample_nearest_exact3d",
    "aten.upsample_linear1d", "aten.upsample_bilinear2d", "aten.upsample_trilinear3d", "aten.upsample_bicubic2d",
    "aten._upsample_bilinear2d_aa", "aten._upsample_bicubic2d_aa",
})

#: padding of the last dims by (left_last, right_last, left_2nd_last, …): constant, mirrored or repeated
PADDING = frozenset({
    "aten.constant_pad_nd", "aten.reflection_pad1d", "aten.reflection_pad2d", "aten.reflection_pad3d",
    "aten.replication_pad1d", "aten.replication_pad2d", "aten.replication_pad3d",
})

#: reshapes that keep memory order (a view when strides allow): the layout of dims changes, no data moves
RESHAPES = frozenset({
    "aten.view", "aten._unsafe_view", "aten.reshape", "aten._reshape_alias", "aten.view_as", "aten.reshape_as",
    "aten.flatten", "aten.unflatten", "aten.squeeze", "aten.squeeze_", "aten.unsqueeze", "aten.unsqueeze_",
    "aten.view_copy", "aten.ravel",
})

#: dim permutations: (self, dims) | (self, dim0, dim1) | (self, source, destination) | the last two dims
PERMUTES = frozenset({
    "aten.permute", "aten.transpose", "aten.t", "aten.swapaxes", "aten.swapdims", "aten.movedim",
    "aten.transpose_", "aten.t_", "aten.numpy_T", "aten.mT", "aten.mH",
})

#: reductions over ``dim`` (all dims when none): a value per reduced slice
REDUCTIONS = frozenset({
    "aten.mean", "aten.sum", "aten.amax", "aten.amin", "aten.prod", "aten.logsumexp", "aten.nansum", "aten.any",
    "aten.all", "aten.max", "aten.min", "aten.argmax", "aten.argmin", "aten.var", "aten.std", "aten.var_mean",
    "aten.std_mean", "aten.linalg_vector_norm", "aten.norm", "aten.aminmax", "aten.count_nonzero",
})

#: ops that mix the elements along one ``dim`` and keep the shape (softmax, scans, sorting)
ALONG_DIM = frozenset({
    "aten._softmax", "aten._safe_softmax", "aten._log_softmax", "aten.softmax", "aten.log_softmax",
    "aten.cumsum", "aten.cumprod", "aten.cummax", "aten.cummin", "aten.sort", "aten.topk",
})

#: splitting one tensor into several along ``dim``, and joining several into one
SPLITS = frozenset({"aten.split", "aten.split_with_sizes", "aten.unsafe_split", "aten.unsafe_split_with_sizes",
                    "aten.chunk", "aten.tensor_split"})
CONCATENATION = frozenset({"aten.cat", "aten.concat", "aten.concatenate", "aten.stack"})

#: matrix products: (a, b) or (bias, a, b) — MACs are ``out elements × K``
MATRIX_PRODUCT = frozenset({"aten.mm", "aten.bmm", "aten.matmul", "aten.mv", "aten.dot", "aten.vdot",
                            "aten.addmm", "aten.baddbmm", "aten.addmv", "aten.addbmm"})
