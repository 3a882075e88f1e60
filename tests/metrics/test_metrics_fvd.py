"""Fréchet distance, streaming feature stats and the cross-rank combine (small random features)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from gloo import gloo_group

from convssm.metrics.fvd import (
    FeatureStats,
    FVDAccumulator,
    frechet_distance,
    frechet_distance_scipy,
    fvd_from_stats,
)


def _features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=gen, dtype=torch.float64) / d**0.5
    return torch.randn(n, d, generator=gen, dtype=torch.float64) @ mix + shift


def _stats(f: torch.Tensor):
    return f.mean(0), torch.from_numpy(np.cov(f.numpy(), rowvar=False))


def test_frechet_matches_scipy_reference_when_well_conditioned():
    a, b = _features(400, 16, 0), _features(300, 16, 1, shift=0.3)
    ours = frechet_distance(*_stats(a), *_stats(b))
    ref = frechet_distance_scipy(*_stats(a), *_stats(b))
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_frechet_zero_for_identical_and_symmetric():
    a, b = _features(50, 12, 0), _features(60, 12, 1, shift=0.5)
    assert frechet_distance(*_stats(a), *_stats(a)) == pytest.approx(0.0, abs=1e-9)
    ab = frechet_distance(*_stats(a), *_stats(b))
    ba = frechet_distance(*_stats(b), *_stats(a))
    assert ab > 0.1
    assert ab == pytest.approx(ba, rel=1e-9)


def test_frechet_grows_with_noise():
    a = _features(200, 10, 0)
    gen = torch.Generator().manual_seed(5)
    noise = torch.randn(a.shape, generator=gen, dtype=torch.float64)
    values = [frechet_distance(*_stats(a), *_stats(a + s * noise)) for s in (0.1, 0.5, 1.0, 2.0)]
    assert all(x < y for x, y in zip(values, values[1:], strict=False))


def test_frechet_stable_for_singular_covariances():
    # 20 samples in 64 dimensions: both covariances have rank <= 19.
    a, b = _features(20, 64, 0), _features(20, 64, 1)
    mu_a, cov_a = _stats(a)
    mu_b, cov_b = _stats(b)
    d = frechet_distance(mu_a, cov_a, mu_b, cov_b)
    assert np.isfinite(d) and d > 0
    assert frechet_distance(mu_a, cov_a, mu_a, cov_a) == pytest.approx(0.0, abs=1e-8)
    # A rank-1 perturbation or a float32 round-trip barely moves the result.
    d32 = frechet_distance(mu_a.float(), cov_a.float(), mu_b.float(), cov_b.float())
    assert d32 == pytest.approx(d, rel=1e-4)
    # Exact answer for commuting (diagonal) singular covariances.
    c1 = torch.diag(torch.tensor([4.0, 0.0, 1.0], dtype=torch.float64))
    c2 = torch.diag(torch.tensor([1.0, 9.0, 0.0], dtype=torch.float64))
    z = torch.zeros(3, dtype=torch.float64)
    # tr(c1) + tr(c2) - 2 tr(sqrt(c1 c2)) = 5 + 10 - 2 * 2 = 11
    assert frechet_distance(z, c1, z, c2) == pytest.approx(11.0, abs=1e-12)


def test_streaming_stats_equal_one_shot():
    f = _features(37, 8, 3)
    stats = FeatureStats(8)
    for i in range(0, 37, 5):
        stats.update(f[i : i + 5])
    mu, cov = _stats(f)
    torch.testing.assert_close(stats.mean(), mu)
    torch.testing.assert_close(stats.covariance(), cov)
    merged = FeatureStats.of(f[:10]).merge(FeatureStats.of(f[10:]))
    torch.testing.assert_close(merged.covariance(), cov)


def test_accumulator_chunks_mean_std_and_overall():
    real, fake = _features(10, 6, 0), _features(10, 6, 1, shift=0.2)
    acc = FVDAccumulator(chunk_size=4, dim=6)
    for i in range(0, 10, 3):  # batches that straddle chunk boundaries
        acc.update_features(real[i : i + 3], fake[i : i + 3])
    res = acc.compute()
    # 4 videos in 6 dimensions: singular covariances, where sqrt of eigenvalues ~1e-16
    # adds ~1e-8; hence 1e-7 relative between sums-of-outer-products and np.cov.
    expected = [
        frechet_distance(*_stats(real[s : s + 4]), *_stats(fake[s : s + 4])) for s in (0, 4)
    ]
    assert res.chunk_fvds == pytest.approx(expected, rel=1e-7)
    assert res.mean == pytest.approx(np.mean(expected), rel=1e-7)
    assert res.std == pytest.approx(np.std(expected), rel=1e-6)
    assert res.num_videos == 10 and res.num_dropped == 2
    assert res.overall == pytest.approx(frechet_distance(*_stats(real), *_stats(fake)), rel=1e-7)
    assert "2 chunk(s) of 4 videos" in str(res)


def test_accumulator_errors():
    acc = FVDAccumulator(chunk_size=4, dim=6)
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        acc.update_features(torch.zeros(3, 6), torch.zeros(2, 6))
    with pytest.raises(ValueError, match="non-finite"):
        acc.update_features(torch.full((3, 6), float("nan")), torch.zeros(3, 6))
    acc.update_features(_features(3, 6, 0), _features(3, 6, 1))
    with pytest.raises(ValueError, match="at least one full chunk of 4"):
        acc.compute()
    with pytest.raises(ValueError, match="frame count"):
        acc.update(torch.zeros(1, 9, 1, 8, 8), torch.zeros(1, 10, 1, 8, 8))
    with pytest.raises(ValueError, match="at least 2"):
        FeatureStats.of(torch.zeros(1, 6)).covariance()


def _distributed_worker(rank: int, world: int, init_file: str, out_file: str) -> None:
    with gloo_group(rank, world, init_file):
        real, fake = _features(12, 5, 0), _features(12, 5, 1, shift=0.3)
        acc = FVDAccumulator(chunk_size=4, dim=5)
        # DistributedSampler order: rank r sees videos r, r + world, ...; two batches each.
        mine = torch.arange(rank, 12, world)
        for part in mine.split(4):
            acc.update_features(real[part], fake[part])
        res = acc.compute()
        torch.save({"chunks": res.chunk_fvds, "overall": res.overall}, f"{out_file}.{rank}")


def test_distributed_combine_equals_single_process(tmp_path):
    mp.spawn(
        _distributed_worker,
        args=(2, str(tmp_path / "init"), str(tmp_path / "out")),
        nprocs=2,
        join=True,
    )
    real, fake = _features(12, 5, 0), _features(12, 5, 1, shift=0.3)
    single = FVDAccumulator(chunk_size=4, dim=5)
    single.update_features(real, fake)
    expected = single.compute()
    for rank in range(2):
        got = torch.load(tmp_path / f"out.{rank}")
        assert got["chunks"] == pytest.approx(expected.chunk_fvds, rel=1e-7)
        assert got["overall"] == pytest.approx(expected.overall, rel=1e-7)
    assert len(expected.chunk_fvds) == 3
    assert fvd_from_stats(FeatureStats.of(real), FeatureStats.of(fake)) == pytest.approx(
        expected.overall, rel=1e-12
    )
