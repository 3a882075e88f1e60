"""Fréchet distance between feature sets, and streaming feature statistics.

:func:`frechet_distance` is the distance between Gaussians fitted to two feature sets,

    ||mu_1 - mu_2||^2 + tr(C_1) + tr(C_2) - 2 tr((C_1 C_2)^(1/2)),

computed in float64 with a matrix square root that stays stable for singular covariances;
:func:`frechet_distance_scipy` is the classic ``scipy.linalg.sqrtm`` formula kept as the plain
reference. :class:`FeatureStats` keeps only the count, the sum and the sum of outer products
of feature vectors (float64, CPU), so features stream in batch by batch and sets merge by
addition (across batches or across ``torch.distributed`` ranks).
"""

from __future__ import annotations

import numpy as np
import torch

from convssm._checks import check_tensor

__all__ = ["frechet_distance", "frechet_distance_scipy", "FeatureStats", "fvd_from_stats"]

DEFAULT_DIM = 400  # I3D Kinetics-400 logits


def _sqrt_psd(c: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix via eigh (eigenvalues < 0
    from rounding are set to 0)."""
    w, v = torch.linalg.eigh(c)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def frechet_distance(
    mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor
) -> float:
    """Fréchet distance between N(mu1, cov1) and N(mu2, cov2), in float64.

    tr((C1 C2)^(1/2)) is computed as the sum of square roots of the eigenvalues of the
    symmetric PSD matrix C1^(1/2) C2 C1^(1/2), which has the same spectrum as C1 C2. This
    needs no regularisation and stays stable when the covariances are singular (fewer
    videos than feature dimensions). A result that rounding makes slightly negative
    (identical sets) is returned as 0.
    """
    mu1, mu2, cov1, cov2 = (t.double() for t in (mu1, mu2, cov1, cov2))
    d = mu1.shape[0]
    if mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise ValueError(
            f"shapes do not match: mu1 {tuple(mu1.shape)}, cov1 {tuple(cov1.shape)}, "
            f"mu2 {tuple(mu2.shape)}, cov2 {tuple(cov2.shape)}"
        )
    for name, t in (("mu1", mu1), ("mu2", mu2), ("cov1", cov1), ("cov2", cov2)):
        check_tensor(t, name)
    cov1 = (cov1 + cov1.T) / 2
    cov2 = (cov2 + cov2.T) / 2
    s1 = _sqrt_psd(cov1)
    middle = s1 @ cov2 @ s1
    eig = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0)
    dist2 = (mu1 - mu2).pow(2).sum() + cov1.trace() + cov2.trace() - 2 * eig.sqrt().sum()
    return max(float(dist2), 0.0)


def frechet_distance_scipy(mu1, cov1, mu2, cov2) -> float:
    """Plain reference: the classic formula with ``scipy.linalg.sqrtm(C1 @ C2)`` (as in
    pytorch-fid / StyleGAN-V), float64. Fine for well-conditioned covariances, inaccurate
    (complex parts, negative results) for near-singular ones — the reason
    :func:`frechet_distance` exists. Needs scipy (the ``convssm[metrics]`` extra)."""
    try:
        from scipy import linalg
    except ImportError as e:  # scipy comes with the metrics extra
        raise ImportError(
            "frechet_distance_scipy needs scipy: pip install 'convssm[metrics]'"
        ) from e
    mu1, cov1, mu2, cov2 = (np.asarray(t, dtype=np.float64) for t in (mu1, cov1, mu2, cov2))
    covmean = linalg.sqrtm(cov1 @ cov2)
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean))


class FeatureStats:
    """Running count, sum and sum of outer products of feature vectors (float64, CPU)."""

    def __init__(self, dim: int = DEFAULT_DIM) -> None:
        if dim < 1:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = dim
        self.count = 0
        self.sum = torch.zeros(dim, dtype=torch.float64)
        self.sum_outer = torch.zeros(dim, dim, dtype=torch.float64)

    def update(self, features: torch.Tensor) -> None:
        """Add a batch of features: (N, dim)."""
        features = check_tensor(features, "features", ndim=2, floating=True)
        if features.shape[1] != self.dim:
            raise ValueError(f"features must have {self.dim} columns, got {tuple(features.shape)}")
        f = features.detach().to("cpu", torch.float64)
        self.count += f.shape[0]
        self.sum += f.sum(dim=0)
        self.sum_outer += f.T @ f

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Add another set's stats to this one, in place; returns self."""
        if other.dim != self.dim:
            raise ValueError(f"cannot merge stats of dim {other.dim} into dim {self.dim}")
        self.count += other.count
        self.sum += other.sum
        self.sum_outer += other.sum_outer
        return self

    def mean(self) -> torch.Tensor:
        if self.count < 1:
            raise ValueError("no features accumulated")
        return self.sum / self.count

    def covariance(self) -> torch.Tensor:
        """Unbiased covariance (ddof 1): (dim, dim). Needs at least 2 features."""
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 feature vectors, got {self.count}")
        mu = self.mean()
        return (self.sum_outer - self.count * torch.outer(mu, mu)) / (self.count - 1)

    @classmethod
    def of(cls, features: torch.Tensor) -> FeatureStats:
        """Stats of one batch of features (N, dim)."""
        features = check_tensor(features, "features", ndim=2, floating=True)
        stats = cls(features.shape[1])
        stats.update(features)
        return stats


def fvd_from_stats(real: FeatureStats, fake: FeatureStats) -> float:
    """Fréchet distance between two accumulated feature sets."""
    return frechet_distance(real.mean(), real.covariance(), fake.mean(), fake.covariance())
