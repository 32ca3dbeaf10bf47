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
