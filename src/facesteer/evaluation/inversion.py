"""How good an inversion is: PSNR, SSIM, LPIPS and identity distance of reconstructions to the pictures, and how
real an edited inversion looks next to edited random samples.

PSNR and SSIM follow their usual definitions on uint8 RGB (peak 255; SSIM with an 11-tap Gaussian window of
sigma 1.5, K1 = 0.01, K2 = 0.03, per channel, averaged over the valid region and the channels, as
scikit-image's ``structural_similarity(..., gaussian_weights=True, use_sample_covariance=False)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from facesteer.attributes.identity import identity_distance
from facesteer.errors import FacesteerError
from facesteer.generators.ops import uint8_to_unit
from facesteer.perceptual import lpips_distance


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape or a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8 or b.dtype != np.uint8:
        raise FacesteerError(f"need two uint8 (N, H, W, 3) batches of one shape, got {a.shape} and {b.shape}")


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) peak signal-to-noise ratio in dB of uint8 images (N, H, W, 3); inf where they are equal."""
    _check_pair(a, b)
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return 10 * np.log10(255.0**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) structural similarity of uint8 images (N, H, W, 3), 1 = identical."""
    _check_pair(a, b)
    if min(a.shape[1:3]) < 11:
        raise FacesteerError(f"SSIM's 11-px window needs images of at least 11x11, got {a.shape[1:3]}")
    x, y = (torch.from_numpy(v.astype(np.float64)).permute(0, 3, 1, 2) for v in (a, b))
    offsets = torch.arange(-5, 6, dtype=torch.float64)
    taps = torch.exp(-(offsets**2) / (2 * 1.5**2))
    window = torch.outer(taps, taps) / taps.sum() ** 2
    kernel = window.expand(3, 1, 11, 11)

    def blur(v: torch.Tensor) -> torch.Tensor:
        return F.conv2d(v, kernel, groups=3)

    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2
    covariance = blur(x * y) - mu_x * mu_y
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    index = ((2 * mu_x * mu_y + c1) * (2 * covariance + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return index.mean(dim=(1, 2, 3)).numpy()


def reconstruction_metrics(
    pictures: np.ndarray, reconstructions: np.ndarray, identity: bool = False
) -> dict[str, np.ndarray]:
    """Per picture: ``psnr``, ``ssim``, ``lpips`` and (with ``identity``) ``identity`` distance (NaN where dlib
    finds no face in one of the two)."""
    metrics = {
        "psnr": psnr(pictures, reconstructions),
        "ssim": ssim(pictures, reconstructions),
        "lpips": lpips_distance(pictures, reconstructions),
    }
    if identity:
        metrics["identity"] = identity_distance(pictures, reconstructions)
    return metrics


def summarize(metrics: dict[str, np.ndarray]) -> dict[str, Any]:
    """The mean of each metric over the pictures where it is defined, and that count."""
    return {name: {"mean": float(np.nanmean(values)), "count": int(np.sum(~np.isnan(values)))}
            for name, values in metrics.items()}  # fmt: skip


@torch.no_grad()
def realism(network: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    """(N,) the quality model's realism logit of uint8 images (N, 64, 64, 3)."""
    network.eval()
    return network(uint8_to_unit(images)).numpy()
