"""Model transforms: pruning and the documents' rewrites.

Each transform is split the Torch-Pruning way: *find* (where it applies / what is coupled, read from
the one dataflow graph), *rewrite* (per layer type), *score* (criterion), and every result goes
through :mod:`cnnscope.transforms.common` — verified, recorded as a replayable plan step, written
atomically.
"""
