"""The SVD schemes: exact at full rank, error falling monotonically with rank, checked with real convs."""
import pytest
import torch
import torch.nn.functional as F

from cnnscope.transforms import decompose


def _rel(a, b):
    return float((a - b).norm() / a.norm())


def _pair(method, w, bias, x, rank, stride=1, padding=1):
    """Run the factorized pair with torch's own conv2d (independent of the rewrite's module building)."""
    first, second = decompose.FACTORS[method](w, rank).weights
    kh, kw = w.shape[-2:]
    if method == "reduce":
        y = F.conv2d(x, first)
        return F.conv2d(y, second, bias, stride=stride, padding=padding)
    if method == "asym":
        y = F.conv2d(x, first, stride=(1, stride), padding=(0, padding))
        return F.conv2d(y, second, bias, stride=(stride, 1), padding=(padding, 0))
    y = F.conv2d(x, first, stride=stride, padding=padding)
    return F.conv2d(y, second, bias)


@pytest.mark.parametrize("method", ["reduce", "asym", "lowrank"])
@pytest.mark.parametrize("stride", [1, 2])
def test_full_rank_is_exact_and_error_falls_with_rank(method, stride):
    g = torch.Generator().manual_seed(1)
    o, i, k = 12, 8, 3
    w = torch.randn(o, i, k, k, generator=g, dtype=torch.float64)
    b = torch.randn(o, generator=g, dtype=torch.float64)
    x = torch.randn(2, i, 15, 15, generator=g, dtype=torch.float64)
    ref = F.conv2d(x, w, b, stride=stride, padding=1)
    # full rank by hand: reduce min(O·K·K, I) = min(108, 8) = 8; asym min(O·n, I·n) = min(36, 24) = 24;
    # lowrank min(O, I·K·K) = min(12, 72) = 12
    full = {"reduce": 8, "asym": 24, "lowrank": 12}[method]
    assert decompose.full_rank(method, o, i, k, k) == full
    assert _rel(ref, _pair(method, w, b, x, full, stride)) < 1e-10
    errs = [_rel(ref, _pair(method, w, b, x, r, stride)) for r in range(1, full + 1)]
    assert all(e1 >= e2 - 1e-12 for e1, e2 in zip(errs, errs[1:])), errs
    assert errs[0] > 0.1


def test_energy_rank():
    # weight whose (O, I·K·K) matrix has singular values 3, 2, 1 (σ² = 9, 4, 1 of 14)
    u = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0]
    v = torch.linalg.qr(torch.randn(9, 3, dtype=torch.float64))[0]
    w = (u @ torch.diag(torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)) @ v.T).reshape(3, 1, 3, 3)
    sigma = decompose.singular_values("lowrank", w)
    assert torch.allclose(sigma, torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64))
    assert decompose.rank_for_energy(sigma, 9 / 14) == 1
    assert decompose.rank_for_energy(sigma, 0.9) == 2      # 13/14 = 0.93 ≥ 0.9 > 9/14
    assert decompose.rank_for_energy(sigma, 1.0) == 3


def test_avgpool_fold_equals_conv_then_pool():
    g = torch.Generator().manual_seed(2)
    w = torch.randn(5, 4, 3, 3, generator=g, dtype=torch.float64)
    x = torch.randn(1, 4, 17, 16, generator=g, dtype=torch.float64)
    ref = F.avg_pool2d(F.conv2d(x, w, padding=1), 2)
    got = F.conv2d(x, decompose.fold_avg_pool(w, (2, 2)), stride=2, padding=1)
    assert got.shape == ref.shape
    assert _rel(ref, got) < 1e-12


def test_stack_fit_beats_centre_crop_and_reports_its_error():
    """The 3×3 stack fitted to a 5×5 kernel is at least as good as keeping the 3×3 centre, and the
    error it reports is the real one (recomputed by running both on an input without padding)."""
    g = torch.Generator().manual_seed(3)
    w = torch.randn(6, 4, 5, 5, generator=g, dtype=torch.float64)
    centre = torch.zeros_like(w)
    centre[:, :, 1:4, 1:4] = w[:, :, 1:4, 1:4]
    crop_err = _rel(w, centre)
    factors, err = decompose.stack_factors(w, 4)
    assert [t.shape for t in factors.weights] == [(4, 4, 3, 3), (6, 4, 3, 3)]
    assert err <= crop_err + 1e-9
    assert abs(_rel(w, decompose.compose_kernels(factors.weights)) - err) < 1e-9
    x = torch.randn(1, 4, 12, 12, generator=g, dtype=torch.float64)
    ref = F.conv2d(x, w)
    y = F.conv2d(F.conv2d(x, factors.weights[0]), factors.weights[1])
    assert y.shape == ref.shape


@pytest.mark.parametrize("shape", [(40, 300), (300, 40), (64, 64)])
def test_gram_svd_matches_lapack(shape):
    """top_svd / svdvals go through the Gram matrix of the smaller side (fast); a second method,
    LAPACK's SVD, must agree: the same σ, and each truncation's error is √(Σ_{i>R} σ_i²) (Eckart–Young)."""
    gen = torch.Generator().manual_seed(0)
    m = torch.randn(*shape, generator=gen, dtype=torch.float64)
    ref = torch.linalg.svdvals(m)
    assert torch.allclose(decompose.svdvals(m), ref, rtol=1e-9, atol=1e-9)
    for rank in (1, 7, min(shape)):
        left, right = decompose.top_svd(m, rank)
        assert left.shape == (shape[0], rank) and right.shape == (rank, shape[1])
        err = float((m - left @ right).norm())
        assert err == pytest.approx(float(ref[rank:].pow(2).sum().sqrt()), rel=1e-7, abs=1e-9)
    # a rank-deficient matrix: zero singular values give zero rows, the product stays exact
    low = m[:, :3] @ torch.randn(3, shape[1], generator=gen, dtype=torch.float64)
    left, right = decompose.top_svd(low, min(shape))
    assert torch.isfinite(left).all() and torch.isfinite(right).all()
    assert float((low - left @ right).norm()) < 1e-8 * float(low.norm())
