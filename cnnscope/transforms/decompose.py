"""The linear algebra behind ``reduce``, ``factorize`` and the exact ``stride`` fold, on weight tensors.

A conv weight ``W`` has shape ``(C_out, C_in, K_h, K_w)``; PyTorch convolutions are
cross-correlations, ``y[o] = Σ_c W[o, c] ⋆ x[c]``. Each factorization writes ``W`` as the composition
of two smaller convs by unfolding ``W`` into a matrix along the dimension the new layers split, and
taking a truncated SVD of that matrix (Eckart–Young: the best approximation of that rank in the
Frobenius norm, and exact at full rank):

============ ===================================== ============================== =======================
method       unfolding (rows × columns)            new layers (applied in order)  full rank
============ ===================================== ============================== =======================
``reduce``   ``C_in × (C_out·K_h·K_w)``            1×1 (C_in→R), K×K (R→C_out)    ``min(C_in, C_out·K_h·K_w)``
``asym``     ``(C_in·K_w) × (C_out·K_h)``          1×K_w (C_in→R), K_h×1 (R→C_out) ``min(C_in·K_w, C_out·K_h)``
``lowrank``  ``C_out × (C_in·K_h·K_w)``            K×K (C_in→R), 1×1 (R→C_out)    ``min(C_out, C_in·K_h·K_w)``
============ ===================================== ============================== =======================

``asym`` is Jaderberg, Vedaldi & Zisserman 2014, scheme 2 (vertical × horizontal filters sharing R
intermediate channels); the SVD of the ``(C_in·K_w) × (C_out·K_h)`` unfolding is its closed-form
optimum in the filter-reconstruction sense (Tai et al. 2016). The singular values are split evenly
(``√σ`` to each side) so both new layers have comparable scales for fine-tuning.

``tucker2`` (Kim et al. 2016, "Compression of deep convolutional neural networks for fast and low
power mobile applications") keeps the K×K kernel but shrinks both channel sides: 1×1 (C_in→R_in),
K×K (R_in→R_out), 1×1 (R_out→C_out). Its two ranks come from the SVDs of the ``C_in`` and ``C_out``
unfoldings (HOSVD, refined by a few HOOI sweeps, see :func:`tucker2_factors`); exact at full rank
``(C_in, C_out)``.

``stack`` (K×K → (K−1)/2 stacked 3×3) has no closed form: see :func:`stack_factors`.

All math runs in float64 and the results are cast back to the weight's dtype. The SVDs are taken
through the Gram matrix of the unfolding's smaller side (:func:`top_svd`): a conv's unfoldings are
wide (512 × 4,608 for a 512-channel 3×3), and an eigendecomposition of the 512 × 512 Gram matrix is
7–9× faster than an SVD of the unfolding while giving the same projection to ~1e-13 (see
``benchmarks/bench_rewrites.py``, "factorization time").
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..errors import CnnscopeError


# ---------------------------------------------------------------------------------------- unfoldings

def _shape(w: torch.Tensor) -> tuple[int, int, int, int]:
    if w.dim() != 4:
        raise CnnscopeError(f"expected a 2-D conv weight (C_out, C_in, K_h, K_w), got shape {tuple(w.shape)}")
    return tuple(int(d) for d in w.shape)  # type: ignore[return-value]


def reduce_matrix(w: torch.Tensor) -> torch.Tensor:
    """``M[c, (o, y, x)] = W[o, c, y, x]``: rows are input channels."""
    c_out, c_in, kh, kw = _shape(w)
    return w.permute(1, 0, 2, 3).reshape(c_in, c_out * kh * kw)


def asym_matrix(w: torch.Tensor) -> torch.Tensor:
    """``M[(c, x), (o, y)] = W[o, c, y, x]``: a rank-1 term is one horizontal × one vertical filter."""
    c_out, c_in, kh, kw = _shape(w)
    return w.permute(1, 3, 0, 2).reshape(c_in * kw, c_out * kh)


def lowrank_matrix(w: torch.Tensor) -> torch.Tensor:
    """``M[o, (c, y, x)] = W[o, c, y, x]``: rows are output channels."""
    c_out = _shape(w)[0]
    return w.reshape(c_out, -1)


#: method -> unfolding whose SVD gives the factors
UNFOLDINGS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "reduce": reduce_matrix,
    "asym": asym_matrix,
    "lowrank": lowrank_matrix,
}


def full_rank(method: str, c_out: int, c_in: int, kh: int, kw: int) -> int:
    """The rank at which ``method``'s factorization is exact (the unfolding's smaller side)."""
    sides = {
        "reduce": (c_in, c_out * kh * kw),
        "asym": (c_in * kw, c_out * kh),
        "lowrank": (c_out, c_in * kh * kw),
    }[method]
    return min(sides)


def _gram_eigh(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Eigenpairs of the Gram matrix of ``m``'s smaller side, descending: ``(σ², vectors, transposed)``.
    ``vectors`` are the left singular vectors of ``m`` (or of ``mᵀ`` when ``transposed``)."""
    m = m.double()
    transposed = m.shape[0] > m.shape[1]
    a = m.T if transposed else m
    evals, vecs = torch.linalg.eigh(a @ a.T)        # ascending
    return evals.flip(0).clamp_min(0.0), vecs.flip(-1), transposed


def svdvals(m: torch.Tensor) -> torch.Tensor:
    """Singular values of ``m``, descending (float64), as ``√`` of its Gram matrix's eigenvalues: σ² is
    exact to ~1e-16·σ₁², all that energies and truncation errors read."""
    return _gram_eigh(m)[0].sqrt()


def top_svd(m: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``m ≈ left @ right``, the best rank-``rank`` approximation (Eckart–Young), with ``left``
    (rows × R), ``right`` (R × cols) and √σ on each side. ``left @ right`` is ``m`` projected on its
    ``rank`` leading singular vectors (``U_R U_Rᵀ m``), so it is exact at full rank whatever the
    conditioning; only the split between the two sides divides by √σ (zero σ give zero rows)."""
    sigma2, vecs, transposed = _gram_eigh(m)
    if rank > sigma2.numel():
        raise CnnscopeError(f"rank {rank} is above the full rank {sigma2.numel()} of this layer")
    m = m.double()
    u = vecs[:, :rank]                                  # leading left singular vectors of a
    proj = u.T @ (m.T if transposed else m)             # (R × cols of a) = Σ_R V_Rᵀ
    root = sigma2[:rank].sqrt().sqrt()                  # √σ
    safe = torch.where(root > 0, root, torch.ones_like(root))
    left, right = u * root, torch.where(root[:, None] > 0, proj / safe[:, None], torch.zeros_like(proj))
    if transposed:                                      # aᵀ = m: swap and transpose the sides
        left, right = right.T, left.T
    return left, right


def singular_values(method: str, w: torch.Tensor) -> torch.Tensor:
    """σ of ``method``'s unfolding of ``w``, descending (float64)."""
    return svdvals(UNFOLDINGS[method](w.detach().double()))


def rank_for_energy(sigma: torch.Tensor, energy: float) -> int:
    """Smallest R with ``Σ_{i≤R} σ_i² ≥ energy · Σ σ_i²``. E.g. σ = (3, 2, 1): 0.6 → 1 (9/14), 0.9 → 2 (13/14)."""
    if not 0.0 < energy <= 1.0:
        raise CnnscopeError(f"--energy must be in (0, 1], got {energy}")
    e = sigma.double().pow(2)
    total = float(e.sum())
    if total == 0.0:
        return 1
    cum = torch.cumsum(e, 0) / total
    # tolerance so that energy=1.0 is reached despite rounding in the cumulative sum
    return int(torch.searchsorted(cum, torch.tensor(energy - 1e-12, dtype=cum.dtype)).item()) + 1


def truncation_error(sigma: torch.Tensor, rank: int) -> float:
    """Relative Frobenius error of the best rank-R approximation: ``√(Σ_{i>R} σ_i²) / √(Σ σ_i²)``."""
    e = sigma.double().pow(2)
    total = float(e.sum())
    return math.sqrt(float(e[rank:].sum()) / total) if total else 0.0


# ---------------------------------------------------------------------------------------- factors

@dataclass
class ConvFactors:
    """Weights of the new convs, in the order they are applied to the input."""

    weights: list[torch.Tensor]


def reduce_factors(w: torch.Tensor, rank: int) -> ConvFactors:
    """1×1 projection ``P`` (R, C_in, 1, 1) then K×K conv ``B`` (C_out, R, K_h, K_w).

    ``W[o, c] = Σ_r B[o, r] · P[r, c]``: the 1×1 conv mixes channels only, so zero padding applied by
    the K×K conv commutes with it and the pair equals the original conv at full rank.
    """
    c_out, c_in, kh, kw = _shape(w)
    left, right = top_svd(reduce_matrix(w), rank)            # (C_in, R), (R, C_out·K_h·K_w)
    p = left.T.reshape(rank, c_in, 1, 1)
    b = right.reshape(rank, c_out, kh, kw).permute(1, 0, 2, 3)
    return ConvFactors([p.to(w.dtype).contiguous(), b.to(w.dtype).contiguous()])


def asym_factors(w: torch.Tensor, rank: int) -> ConvFactors:
    """1×K_w conv ``H`` (R, C_in, 1, K_w) then K_h×1 conv ``V`` (C_out, R, K_h, 1).

    Composing a row filter with a column filter gives their outer product, so
    ``W[o, c, y, x] = Σ_r V[o, r, y] · H[r, c, x]``.
    """
    c_out, c_in, kh, kw = _shape(w)
    left, right = top_svd(asym_matrix(w), rank)              # (C_in·K_w, R), (R, C_out·K_h)
    h = left.T.reshape(rank, c_in, 1, kw)
    v = right.reshape(rank, c_out, kh).permute(1, 0, 2).unsqueeze(-1)
    return ConvFactors([h.to(w.dtype).contiguous(), v.to(w.dtype).contiguous()])


def lowrank_factors(w: torch.Tensor, rank: int) -> ConvFactors:
    """K×K conv ``A`` (R, C_in, K_h, K_w) then 1×1 conv ``U`` (C_out, R, 1, 1)."""
    c_out, c_in, kh, kw = _shape(w)
    left, right = top_svd(lowrank_matrix(w), rank)           # (C_out, R), (R, C_in·K_h·K_w)
    a = right.reshape(rank, c_in, kh, kw)
    u = left.reshape(c_out, rank, 1, 1)
    return ConvFactors([a.to(w.dtype).contiguous(), u.to(w.dtype).contiguous()])


def _leading_left(m: torch.Tensor, rank: int) -> torch.Tensor:
    """The ``rank`` leading left singular vectors of ``m`` (rows × cols), from the eigenvectors of the
    rows × rows Gram matrix ``m mᵀ``: a conv's channel count is small next to its unfoldings' other
    side (512 against 512·9), so this is many times faster than an SVD of ``m`` itself. At full rank
    every eigenvector is kept, an orthogonal basis, so an exact reconstruction stays exact."""
    _, vecs = torch.linalg.eigh(m @ m.T)          # ascending eigenvalues
    return vecs.flip(-1)[:, :rank]


def tucker2_factors(w: torch.Tensor, ranks: tuple[int, int], sweeps: int = 5) -> ConvFactors:
    """1×1 ``P`` (R_in, C_in, 1, 1), K×K core ``G`` (R_out, R_in, K_h, K_w), 1×1 ``U`` (C_out, R_out, 1, 1).

    ``W[o, c] ≈ Σ_{r,s} U[o, r] · G[r, s] · P[s, c]`` with orthonormal ``U`` and ``P``: for fixed
    factors the best core is ``G = Uᵀ ×₀ W ×₁ P`` (a projection), so only ``U`` and ``P`` are searched.
    Start: HOSVD (top left singular vectors of the ``C_out`` and ``C_in`` unfoldings); then HOOI
    sweeps (each factor = top singular vectors of ``W`` projected on the other), which never increase
    the error. At ``ranks = (C_in, C_out)`` the factors are square orthogonal and the product is exact.
    """
    c_out, c_in, kh, kw = _shape(w)
    r_in, r_out = ranks
    if not (1 <= r_in <= c_in and 1 <= r_out <= c_out):
        raise CnnscopeError(f"Tucker-2 ranks ({r_in}, {r_out}) outside 1..({c_in}, {c_out}) for this layer")
    t = w.detach().double()
    u = _leading_left(lowrank_matrix(t), r_out)                                     # (C_out, R_out)
    p = _leading_left(reduce_matrix(t), r_in)                                       # (C_in, R_in)
    if (r_in, r_out) != (c_in, c_out):
        for _ in range(sweeps):
            on_in = torch.einsum("ocyx,cs->osyx", t, p)                            # W ×₁ Pᵀ
            u = _leading_left(on_in.reshape(c_out, -1), r_out)
            on_out = torch.einsum("ocyx,or->rcyx", t, u)                           # W ×₀ Uᵀ
            p = _leading_left(on_out.permute(1, 0, 2, 3).reshape(c_in, -1), r_in)
    core = torch.einsum("ocyx,or,cs->rsyx", t, u, p)
    return ConvFactors([p.T.reshape(r_in, c_in, 1, 1).to(w.dtype).contiguous(), core.to(w.dtype).contiguous(),
                        u.reshape(c_out, r_out, 1, 1).to(w.dtype).contiguous()])


def tucker2_singular_values(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """σ of the ``C_in`` and the ``C_out`` unfoldings (what ``--energy`` reads for each Tucker-2 rank)."""
    t = w.detach().double()
    return svdvals(reduce_matrix(t)), svdvals(lowrank_matrix(t))


FACTORS: dict[str, Callable[[torch.Tensor, int], ConvFactors]] = {
    "reduce": reduce_factors,
    "asym": asym_factors,
    "lowrank": lowrank_factors,
    "tucker2": tucker2_factors,
}


# ----------------------------------------------------------------------------- composing kernels

def compose_kernels(weights: list[torch.Tensor]) -> torch.Tensor:
    """The single kernel of a stack of bias-free, unpadded, stride-1 convs (first applied first).

    ``K[o, c, u] = Σ_r Σ_{a+b=u} B[o, r, b] · A[r, c, a]``: cross-correlations compose by a full
    (unflipped) convolution of their kernels, which is exactly what ``conv_transpose2d`` computes.
    """
    k = weights[0]
    for nxt in weights[1:]:
        k = F.conv_transpose2d(k.permute(1, 0, 2, 3), nxt.permute(1, 0, 2, 3)).permute(1, 0, 2, 3)
    return k.contiguous()


def fold_avg_pool(w: torch.Tensor, pool_kernel: tuple[int, int]) -> torch.Tensor:
    """Weight of the conv equal to ``avg_pool(conv(x))`` for a stride-1 conv and an unpadded average pool.

    ``avg_pool(k×k) ∘ conv(K×K)`` is a conv whose kernel is ``W`` convolved with the k×k box of 1/k²:
    size ``K + k − 1``; the stride becomes the pool's; the conv's padding and bias are unchanged.
    """
    c_out, c_in, kh, kw = _shape(w)
    ph, pw = pool_kernel
    box = torch.full((1, 1, ph, pw), 1.0 / (ph * pw), dtype=torch.float64)
    folded = F.conv_transpose2d(w.detach().double().reshape(c_out * c_in, 1, kh, kw), box)
    return folded.reshape(c_out, c_in, kh + ph - 1, kw + pw - 1).to(w.dtype).contiguous()


# --------------------------------------------------------------------------------- stacked 3×3

def _design_given_first(a: torch.Tensor, kb: int) -> torch.Tensor:
    """``L[(c, u), (r, b)] = A[r, c, u − b]``: ``W[o]`` as a linear function of ``B[o]`` with ``A`` fixed."""
    r, c_in, ka, _ = a.shape
    k = ka + kb - 1
    design = a.new_zeros(c_in, k, k, r, kb, kb)
    ap = a.permute(1, 2, 3, 0)
    for by in range(kb):
        for bx in range(kb):
            design[:, by:by + ka, bx:bx + ka, :, by, bx] = ap
    return design.reshape(c_in * k * k, r * kb * kb)


def _design_given_second(b: torch.Tensor, ka: int) -> torch.Tensor:
    """``L[(o, u), (r, a)] = B[o, r, u − a]``: ``W[:, c]`` as a linear function of ``A[:, c]`` with ``B`` fixed."""
    c_out, r, kb, _ = b.shape
    k = ka + kb - 1
    design = b.new_zeros(c_out, k, k, r, ka, ka)
    bp = b.permute(0, 2, 3, 1)
    for ay in range(ka):
        for ax in range(ka):
            design[:, ay:ay + kb, ax:ax + kb, :, ay, ax] = bp
    return design.reshape(c_out * k * k, r * ka * ka)


def _least_squares(design: torch.Tensor, target: torch.Tensor, ridge: float = 1e-8) -> torch.Tensor:
    gram = design.T @ design
    gram.diagonal().add_(ridge * float(gram.diagonal().mean()) + 1e-30)
    return torch.linalg.solve(gram, design.T @ target)


def fit_pair(w: torch.Tensor, width: int, first_kernel: int = 3, sweeps: int = 10,
             tol: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Fit ``W`` (C_out, C_in, K, K) by ``B ⊛ A``: ``A`` (width, C_in, a, a) then ``B`` (C_out, width, K−a+1, K−a+1).

    Alternating least squares: with one factor fixed the composed kernel is linear in the other, so
    each half-sweep solves a least-squares problem exactly and the error never increases. The start
    is deterministic: ``A`` is the reduce-SVD projection placed on the centre tap, so the first
    solve for ``B`` is already at least as good as cropping ``W`` to its centre. Stops after
    ``sweeps`` or when a sweep improves the relative error by less than ``tol`` (relative).
    Returns ``(A, B, relative Frobenius error of the composed kernel)``.
    """
    c_out, c_in, k, _ = _shape(w)
    ka = first_kernel
    kb = k - ka + 1
    target = w.detach().double()
    norm = float(target.norm()) or 1.0
    u = _gram_eigh(reduce_matrix(target))[1]
    if u.shape[0] != c_in:                                          # C_in > C_out·K²: the wide side's vectors
        u = torch.linalg.svd(reduce_matrix(target), full_matrices=False)[0]
    a = target.new_zeros(width, c_in, ka, ka)
    n = min(width, u.shape[1])
    a[:n, :, ka // 2, ka // 2] = u[:, :n].T
    if width > n:  # more intermediate channels than the unfolding's rank: extra taps, deterministic
        gen = torch.Generator().manual_seed(0)
        a[n:] = torch.randn(width - n, c_in, ka, ka, generator=gen, dtype=torch.float64) * 1e-3
    w_by_in = target.permute(1, 2, 3, 0).reshape(c_in * k * k, c_out)      # columns: output channels
    w_by_out = target.permute(0, 2, 3, 1).reshape(c_out * k * k, c_in)     # columns: input channels
    prev = math.inf
    err = math.inf
    b = target.new_zeros(c_out, width, kb, kb)
    for _ in range(max(1, sweeps)):
        b = _least_squares(_design_given_first(a, kb), w_by_in).T.reshape(c_out, width, kb, kb)
        a = _least_squares(_design_given_second(b, ka), w_by_out).T.reshape(c_in, width, ka, ka).permute(1, 0, 2, 3)
        err = float((compose_kernels([a, b]) - target).norm()) / norm
        if prev - err < tol * prev:
            break
        prev = err
    return a.contiguous(), b.contiguous(), err


def stack_factors(w: torch.Tensor, width: int, sweeps: int = 10) -> tuple[ConvFactors, float]:
    """K×K (odd K ≥ 5) → (K−1)/2 bias-free 3×3 kernels (widths: C_in → width → … → width → C_out).

    Not exact: a stack of 3×3 kernels with ``width`` intermediate channels composes only to K×K
    kernels of a restricted form. Greedy: fit ``W ≈ B_{K−2} ⊛ A_3`` (:func:`fit_pair`), then fit the
    (K−2)×(K−2) factor the same way, until every factor is 3×3. Returns the factors and the relative
    Frobenius error of their composition against ``W`` (the *kernel* error; with zero padding the
    stack also differs from the original at the borders of the feature map, because the
    intermediate maps are zero-padded instead of being computed there).
    """
    c_out, c_in, kh, kw = _shape(w)
    if kh != kw or kh < 5 or kh % 2 == 0:
        raise CnnscopeError(f"stack needs an odd square kernel of at least 5×5, got {kh}×{kw}")
    firsts: list[torch.Tensor] = []
    rest = w.detach().double()
    while rest.shape[-1] > 3:
        a, rest, _ = fit_pair(rest, width, 3, sweeps)
        firsts.append(a)
    weights = firsts + [rest]
    err = float((compose_kernels(weights) - w.detach().double()).norm() / (w.detach().double().norm() or 1.0))
    return ConvFactors([t.to(w.dtype).contiguous() for t in weights]), err
