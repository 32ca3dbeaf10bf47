"""Measured time: whole-model and per-layer latency on PyTorch eager and onnxruntime, the machine's
roofline, and latency budgets (``cnnscope profile``, ``check --max-latency``, ``prune --target-latency``).

Every number here is a measurement on this machine, never a single run: repeated runs are interleaved
and reported as a median with its interquartile range (:mod:`.stats`).
"""
