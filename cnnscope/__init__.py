"""cnnscope: analyse, compress and export convolutional networks.

Library API (mirrors the CLI)::

    import cnnscope
    s = cnnscope.summary("resnet50")          # Summary; s.to_dict() == `cnnscope summary --format json`
    m = cnnscope.load_model("resnet18")       # an nn.Module with real (fresh or loaded) weights
    cnnscope.save_model(m, "r18.pt")          # artifact: torch.load(weights_only=True) compatible

Importing ``cnnscope`` does not import torch; the functions do, when called.
Convention: 1 MAC = one multiply-accumulate; FLOPs = 2 × MACs.
"""
from __future__ import annotations

import os

__version__ = "0.1.0"

__all__ = ["summary", "sweep", "load_model", "save_model", "analyze", "compare", "check", "prune", "reduce", "stride",
           "factorize", "advise", "export_onnx", "quantize", "profile", "html_report", "CnnscopeError", "__version__"]


def summary(model_or_spec, input_size=None, weights=None, batch_size: int = 1, trust_code=False, dtype=None,
            training=False, optimizer="sgd", conventions=False):
    """Analyse ``model_or_spec`` (nn.Module or MODEL string) on meta tensors; returns a Summary.

    ``trust_code``: an artifact whose base is user code runs it only when this allows it (``True``
    for the code file beside the artifact, or a list of files/modules); see the README's Security.
    An ``.onnx`` path is read as ``cnnscope summary model.onnx`` reads it (its weights are the file's).
    ``dtype`` ("float16", "bfloat16", "int8", "float32"): give the bytes as they would be in that
    precision, without converting anything (see :mod:`cnnscope.analysis.precision`). ``training``:
    record in train mode with autograd and add one step's cost with ``optimizer`` (sgd, adam, adamw,
    sgd-nomomentum): backward MACs and training memory (see :mod:`cnnscope.analysis.training`).
    ``conventions``: add what torchvision, fvcore, thop, ptflops, torchinfo and FlopCounterMode would
    report for the same graph, with the op-class breakdown (see :mod:`cnnscope.analysis.conventions`)."""
    import os

    from .analysis.summary import summary as _summary
    from .loading.trust import trusting

    if isinstance(model_or_spec, (str, os.PathLike)) and os.fspath(model_or_spec).lower().endswith(".onnx"):
        if weights is not None:
            from .errors import CnnscopeError

            raise CnnscopeError("an ONNX file carries its weights; drop --weights for it")
        if dtype is not None or training or conventions:
            from .errors import CnnscopeError

            raise CnnscopeError("an ONNX file is analysed for inference in its own dtypes: drop the dtype what-if, "
                                "training and conventions for it (ask the PyTorch model instead)")
        from .export.onnx_summary import onnx_summary

        return onnx_summary(model_or_spec, input_size=input_size, batch_size=batch_size)
    with trusting(trust_code):
        return _summary(model_or_spec, input_size=input_size, weights=weights, batch_size=batch_size, dtype=dtype,
                        training=training, optimizer=optimizer, conventions=conventions)


def sweep(model_or_spec, sizes, weights=None, batch_size: int = 1, trust_code=False, dtype=None, progress=None):
    """One summary row per input size (``cnnscope summary MODEL --input-size 224,320,448 -f json``):
    MACs, params, bytes, peak activations, RF coverage, and the growth exponents."""
    from .analysis.sweep import sweep as _sweep
    from .loading.trust import trusting

    with trusting(trust_code):
        return _sweep(model_or_spec, sizes, weights=weights, batch_size=batch_size, dtype=dtype, progress=progress)


def compare(a, b, *, weights_a=None, weights_b=None, input_size=None, batch_size: int = 1, trust_code=False,
            only_changed: bool = False) -> dict:
    """The per-layer diff of models ``a`` and ``b`` (``cnnscope compare A B -f json``): any MODEL on
    either side, ``.onnx`` included. Both references are validated before either model is analysed."""
    from .analysis.diff import diff_summaries
    from .errors import CnnscopeError
    from .loading.source import resolve
    from .loading.trust import trusting

    for spec, weights in ((a, weights_a), (b, weights_b)):
        if isinstance(spec, str) and spec.lower().endswith(".onnx") and weights:
            raise CnnscopeError(f"'{spec}' is an ONNX file that carries its weights; drop its --weights")
    with trusting(trust_code):
        sides = [resolve(spec, weights) if isinstance(spec, str) else spec
                 for spec, weights in ((a, weights_a), (b, weights_b))]
        da, db = (summary(src.path if getattr(src, "kind", None) == "onnx" else src, input_size=input_size,
                          batch_size=batch_size) for src in sides)
    return diff_summaries(da, db, only_changed=only_changed)


def analyze(model_or_spec, input_size=None, weights=None, batch_size: int = 1, trust_code=False):
    """The recorded dataflow graph and its context (see :class:`cnnscope.analysis.engine.Analysis`)."""
    from .analysis.engine import analyze as _analyze
    from .loading.trust import trusting

    with trusting(trust_code):
        return _analyze(model_or_spec, input_size=input_size, weights=weights, batch_size=batch_size)


def load_model(spec: str, weights: str | None = None, trust_code=False):
    """Build MODEL as a real CPU ``nn.Module`` in eval mode, with its weights loaded if it has any.

    An artifact whose base is user code is refused unless ``trust_code`` allows it (``True``: the code
    file stored beside the artifact; a list: those files or modules)."""
    from .loading.artifact import load_model as _load

    return _load(spec, weights=weights, trust_code=trust_code)


def save_model(model, path, base: str | None = None, plan: list | None = None) -> None:
    """Write ``model`` as a cnnscope artifact (see :mod:`cnnscope.loading.artifact`)."""
    from .loading.artifact import save_model as _save

    _save(model, path, base=base, plan=plan)


def prune(model, output=None, *, trust_code=False, **options):
    """Prune MODEL and write the verified artifact to ``output`` (None: verify only); returns the report
    (``.to_dict()`` is ``cnnscope prune … -f json``, ``.model`` the pruned module). ``options`` are
    :func:`cnnscope.transforms.pipeline.run_prune`'s: ``ratio=0.5``, ``target_macs=``, ``criterion=``,
    ``unstructured=True, sparsity=0.8``, ``input_size=``, ``data=DataOptions(...)``…"""
    from .loading.trust import trusting
    from .transforms.pipeline import run_prune

    with trusting(trust_code):
        return run_prune(model, output=output, **options)


def _rewrite(kind, model, output, method, rank, ratio, energy, trust_code, options):
    from .loading.trust import trusting
    from .transforms.methods import get_method
    from .transforms.pipeline import run_rewrite
    from .transforms.rewrites import RankSpec

    ranks = RankSpec.parse(rank, ratio, energy) if kind != "stride" and get_method(method).takes_rank else None
    with trusting(trust_code):
        return run_rewrite(kind, model, method=method, output=output, ranks=ranks, **options)


def reduce(model, output=None, *, rank=None, ratio=None, energy=None, trust_code=False, **options):
    """1×1 channel reduction before each K×K conv (``cnnscope reduce``); returns the report."""
    return _rewrite("reduce", model, output, "reduce", rank, ratio, energy, trust_code, options)


def stride(model, output=None, *, trust_code=False, **options):
    """Stride 2 in place of conv + pooling (``cnnscope stride``); returns the report."""
    return _rewrite("stride", model, output, None, None, None, None, trust_code, options)


def factorize(model, output=None, *, method="asym", rank=None, ratio=None, energy=None, trust_code=False,
              **options):
    """Factorize K×K convs by ``method`` (stack, asym, lowrank, tucker2; ``cnnscope factorize``)."""
    return _rewrite("factorize", model, output, method, rank, ratio, energy, trust_code, options)


def advise(model_or_spec, input_size=None, weights=None, batch_size: int = 1, layers=None, trust_code=False):
    """Where each compression method would save most (``cnnscope advise … -f json``), on meta tensors."""
    from .loading.trust import trusting
    from .transforms.advise import advise as _advise

    with trusting(trust_code):
        return _advise(model_or_spec, input_size=input_size, weights=weights, batch_size=batch_size,
                       layers=list(layers or []))


def export_onnx(model, output, *, trust_code=False, **options):
    """Export MODEL to a verified ONNX file (``cnnscope export``); returns the ExportReport
    (``.to_dict()`` is ``cnnscope export … -f json``). ``options``: ``input_size``, ``opset``,
    ``dynamic_batch``, ``verify``, ``rtol``, ``atol``… (see :func:`cnnscope.export.export_onnx`)."""
    from .export.onnx_export import export_onnx as _export
    from .loading.trust import trusting

    with trusting(trust_code):
        return _export(model, output, **options)


def quantize(model, output, *, trust_code=False, **options):
    """Quantize MODEL (or a float ``.onnx``) to a verified int8 ONNX file (``cnnscope quantize``); returns the
    QuantizeReport (``.to_dict()`` is ``cnnscope quantize … -f json``). ``options``: ``data``,
    ``calibration``, ``method``, ``per_channel``, ``activations``, ``dynamic``, ``keep_float``,
    ``min_agreement``, ``threads``… (see :func:`cnnscope.export.quantize.quantize`)."""
    from .export.quantize import quantize as _quantize
    from .loading.trust import trusting

    with trusting(trust_code):
        return _quantize(model, output, **options)


def profile(model, input_size=None, *, trust_code=False, **options):
    """Measure MODEL's latency, whole and per layer (``cnnscope profile``); returns the ProfileReport
    (``.to_dict()`` is ``cnnscope profile … -f json``). ``options``: ``weights``, ``batch_size``,
    ``runtime`` ("torch", "ort", "both"), ``threads``, ``runs``, ``warmup``, ``device``, ``depth``
    (see :func:`cnnscope.timing.profile.profile`). An ``nn.Module`` is copied, never changed."""
    from .loading.trust import trusting
    from .timing.profile import profile as _profile

    with trusting(trust_code):
        return _profile(model, input_size, **options)


REPORT_FORMATS = ("html", "svg", "png", "markdown")


def report_data(model, model2=None, *, weights=None, weights2=None, input_size=None, batch_size: int = 1,
                trust_code=False, profile: bool = False, runtime: str = "torch", threads: int = 1,
                runs: int = 10) -> dict:
    """What ``cnnscope report`` shows, as a plain dict (:mod:`cnnscope.analysis.report_data`): the summary's
    totals, stages, biggest layers, depth profile (channels, feature-map size, RF), live memory, the layer
    table, an artifact's history and, with ``model2``, the per-layer comparison. ``profile``: also measure
    MODEL's latency per layer (:func:`profile` on ``runtime``, ``threads``, ``runs``) for the latency chart
    and the table's time column."""
    from .analysis.report_data import report_data as build
    from .loading.history import history
    from .loading.source import ModelSource, resolve
    from .loading.trust import trusting

    with trusting(trust_code):
        src = None
        if isinstance(model, (str, os.PathLike, ModelSource)):
            src = model if isinstance(model, ModelSource) else resolve(str(model), weights)
        target = src.path if src is not None and src.kind == "onnx" else (src if src is not None else model)
        s = summary(target, input_size=input_size,
                    weights=None if src is not None else weights, batch_size=batch_size).to_dict()
        c = None
        if model2 is not None:
            c = compare(src if src is not None else model, model2, weights_b=weights2, input_size=input_size,
                        batch_size=batch_size)
        p = None
        if profile:
            from .timing.profile import profile as measure

            p = measure(src if src is not None else model, input_size, batch_size=batch_size,
                        weights=None if src is not None else weights,
                        runtime="ort" if src is not None and src.kind == "onnx" else runtime,
                        threads=threads, runs=runs).to_dict()
    return build(s, c, history(src), p)


def html_report(model, output, model2=None, *, format=None, chart="macs", trust_code=False, **options) -> dict:
    """Write ``cnnscope report``'s output: a self-contained HTML page (default, or by ``output``'s suffix),
    one chart as SVG or PNG (``chart``: macs, params, biggest, shape, rf, memory, latency), or Markdown with every
    chart as an SVG beside it. Returns :func:`report_data`'s dict. ``options`` go to :func:`report_data`."""
    from .report.write import write_report

    data = report_data(model, model2, trust_code=trust_code, **options)
    write_report(data, output, format, chart)
    return data


def __getattr__(name: str):
    if name == "check":         # the package cnnscope.check is callable: cnnscope.check("resnet18", max_params="12M")
        import importlib

        return importlib.import_module(".check", __name__)
    if name == "CnnscopeError":
        from .errors import CnnscopeError

        return CnnscopeError
    raise AttributeError(name)
