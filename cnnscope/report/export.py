"""Text rendering of ``cnnscope export``'s report."""
from __future__ import annotations

from ..units import human_bytes


def parity_lines(vr) -> list[str]:
    """One line per verification run (a failed export prints these before its error)."""
    return [f"  batch {r.batch_size}: max abs diff {r.max_abs_diff:.3g}, max rel diff {r.max_rel_diff:.3g} "
            f"(max |PyTorch| {r.ref_max_abs:.3g}) {'ok' if r.passed else 'ABOVE TOLERANCE'}" for r in vr.runs]


def render_export(r) -> str:
    """The export report (:class:`cnnscope.export.onnx_export.ExportReport`) as the command prints it."""
    shape = "×".join(str(d) for d in r.input_shape)
    if r.dynamic_batch:
        shape = "N×" + "×".join(str(d) for d in r.input_shape[1:]) + f" (dynamic batch; exported at N={r.input_shape[0]})"
    lines = [f"Exported {r.model} → {r.path}",
             f"  exporter:   {'TorchScript (torch.onnx.export dynamo=False)' if r.exporter == 'torchscript' else 'dynamo (torch.export)'}"
             f", opset {r.opset}, input {shape}, {r.export_seconds:.2f} s"]
    size = human_bytes(r.file_bytes) + (f" (weights in {r.external_data})" if r.external_data else "")
    lines.append(f"  file:       {size}, {r.nodes} nodes" + (f", simplified with {r.simplified_with}" if r.simplified_with else ""))
    same = "= the PyTorch model's" if r.params_in_file == r.torch_params else f"vs {r.torch_params:,} in the PyTorch model"
    lines.append(f"  params:     {r.params_in_file:,} in the file ({same})")
    if r.params_note:
        lines.append(f"              {r.params_note}")
    if r.verify is None:
        lines.append("  verified:   no (--no-verify); onnx.checker ok")
    else:
        lines.append("  onnx.checker: ok")
        for run in r.verify.runs:
            lines.append(f"  parity:     batch {run.batch_size}: max abs diff {run.max_abs_diff:.3g}, "
                         f"max rel diff {run.max_rel_diff:.3g} (max |PyTorch| {run.ref_max_abs:.3g}) ok")
        lines.append(f"  tolerance:  |ORT − PyTorch| ≤ {r.verify.atol:g} + {r.verify.rtol:g} × max|PyTorch|; "
                     f"onnxruntime {r.verify.seconds:.2f} s")
    for note in r.notes:
        lines.append(f"  note:       {note}")
    return "\n".join(lines)
