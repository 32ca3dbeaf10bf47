"""Bounds on what a file or an option may make cnnscope allocate.

A real forward (export, ``--data``, verification of a transform) allocates its input and
activations; a declared size from a stranger (``--input-size 3x100000x100000``, ``--batch-size
1000000``, a zip archive that declares gigabytes) must be refused *before* anything is allocated,
with the number. The memory available is the smaller of the machine's ``MemAvailable`` and the
address-space limit (``ulimit -v``, ``prlimit --as``) minus what the process already maps.
"""
from __future__ import annotations

import os
import resource

from .errors import CnnscopeError
from .units import human_bytes

#: a torch.save archive stores its entries uncompressed; a compressed entry may expand at most this much
MAX_COMPRESSION_RATIO = 4
#: entries in one archive (a state_dict of 100k tensors is far beyond any CNN)
MAX_ARCHIVE_ENTRIES = 200_000


def _meminfo(key: str) -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _mapped_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def available_memory() -> int | None:
    """Bytes this process can still allocate, or None when the platform does not say."""
    candidates = []
    avail = _meminfo("MemAvailable")
    if avail is not None:
        candidates.append(avail)
    else:
        try:
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft not in (resource.RLIM_INFINITY, -1):
        candidates.append(max(0, soft - _mapped_bytes()))
    return min(candidates) if candidates else None


def require_memory(need: int, what: str, fix: str) -> None:
    """Refuse (exit 2) when ``need`` bytes are more than this process can allocate."""
    avail = available_memory()
    if avail is not None and need > avail:
        raise CnnscopeError(f"{what} needs at least {human_bytes(need)} ({need:,} bytes) but only "
                            f"{human_bytes(avail)} is available; {fix}")


def forward_bytes(analysis, batch: int | None = None, training: bool = False) -> int:
    """A lower bound on the memory of one real forward of ``analysis``'s model at ``batch`` images:
    the input plus the two largest activations alive at once (evaluation), or every activation
    plus gradients and optimiser state (training). Read from the meta graph: nothing allocated."""
    graph = analysis.graph
    n0 = analysis.input_shape[0] or 1
    scale = (batch or n0) / n0
    activations = sorted((v.nbytes for v in graph.values.values()   # views share their input's memory
                          if graph.nodes[v.producer].kind == "op" and not graph.nodes[v.producer].aliases),
                         reverse=True)
    inputs = sum(graph.values[i].nbytes for i in graph.inputs)
    params = sum(graph.values[v].nbytes for v in graph.param_values.values())
    if training:
        return int(scale * (inputs + sum(activations))) + 3 * params
    return int(scale * (inputs + sum(activations[:2])))


def check_archive(path: str) -> None:
    """A zip archive (torch.save's format) whose declared entries are plausible for a model file:
    refused before torch reads it when it declares more than the machine has, or compressed entries
    that expand more than :data:`MAX_COMPRESSION_RATIO` × (torch.save never compresses: a zip bomb)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return   # not a zip archive: torch.load says what it is
    if len(infos) > MAX_ARCHIVE_ENTRIES:
        raise CnnscopeError(f"'{path}' is an archive of {len(infos):,} entries; not a model file")
    declared = sum(i.file_size for i in infos)
    packed = [i for i in infos if i.compress_type != zipfile.ZIP_STORED]
    expanded = sum(i.file_size for i in packed)
    compressed = sum(i.compress_size for i in packed)
    if packed and expanded > MAX_COMPRESSION_RATIO * compressed + (1 << 20):
        raise CnnscopeError(
            f"'{path}' declares {human_bytes(expanded)} of compressed entries packed into {human_bytes(compressed)} "
            f"(a zip bomb?); torch.save writes uncompressed archives: re-save the model with torch.save")
    size = os.path.getsize(path)
    if declared > size + (1 << 20) + expanded:
        raise CnnscopeError(f"'{path}' declares {human_bytes(declared)} of entries in a {human_bytes(size)} file; "
                            f"it is damaged or hostile")
    if packed:
        require_memory(expanded, f"reading '{path}'", "it is not a file torch.save wrote; re-save it")
