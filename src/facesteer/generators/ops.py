"""Small tensor operations several generators (and the networks trained on their faces) share."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row (dim 1) to unit root-mean-square: PGGAN's pixel norm, StyleGAN2's normalize_2nd_moment."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def fused_upsample_conv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Nearest x2 upsampling followed by a 3x3 convolution, as one transposed convolution (PGGAN and StyleGAN's
    ``fused_scale``): the 4x4 kernel is the 3x3 kernel summed over its four 1-pixel shifts.

    Args:
        x: (N, C_in, H, W).
        weight: (3, 3, C_in, C_out), the TF layout both official checkpoints store, already scaled.

    Returns:
        (N, C_out, 2H, 2W).
    """
    kernel = F.pad(weight, (0, 0, 0, 0, 1, 1, 1, 1))
    kernel = kernel[1:, 1:] + kernel[:-1, 1:] + kernel[1:, :-1] + kernel[:-1, :-1]
    return F.conv_transpose2d(x, kernel.permute(2, 3, 0, 1), stride=2, padding=1)


def uint8_to_unit(images: np.ndarray) -> torch.Tensor:
    """uint8 RGB (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1]: the range generators work in."""
    images = np.ascontiguousarray(images) if images.flags.writeable else np.array(images)  # torch wants writable
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
