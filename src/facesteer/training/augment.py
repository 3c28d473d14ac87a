"""Differentiable augmentation (DiffAugment; Zhao et al., NeurIPS 2020) for GANs trained on few images.

The same random colour, translation and cutout transforms are applied to real and generated images before
the discriminator sees them; they are differentiable, so the generator learns through them and never learns
to produce the augmentations. All randomness comes from the ``torch.Generator`` passed in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_POLICY = ("color", "translation", "cutout")


def _uniform(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, 1, 1, 1, generator=generator).to(device)


def color(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5), images in [-1, 1]."""
    n = x.shape[0]
    x = x + (_uniform(n, generator, x.device) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_uniform(n, generator, x.device) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(n, generator, x.device) + 0.5) + mean


def _integer_shift_grid(n: int, size: int, shifts: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Sampling grid (N, size, size, 2) that moves each image by whole pixels (dx, dy), zeros outside."""
    coordinates = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size * 2 - 1
    ys, xs = torch.meshgrid(coordinates, coordinates, indexing="ij")
    grid = torch.stack([xs, ys], dim=-1).unsqueeze(0).repeat(n, 1, 1, 1)
    return grid - shifts.to(device).reshape(n, 1, 1, 2) * (2 / size)


def translation(x: torch.Tensor, generator: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size in x and y (whole pixels), filling with zeros."""
    n, _, size, _ = x.shape
    limit = int(size * ratio + 0.5)
    shifts = torch.randint(-limit, limit + 1, (n, 2), generator=generator).float()
    grid = _integer_shift_grid(n, size, shifts, x.device)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def cutout(x: torch.Tensor, generator: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Zero one random square of side ``ratio`` x size in each image."""
    n, _, size, _ = x.shape
    side = int(size * ratio + 0.5)
    centres = torch.randint(0, size + (1 - side % 2), (n, 2), generator=generator).to(x.device)
    positions = torch.arange(size, device=x.device)
    low = (centres - side // 2).clamp(0, size)
    high = (centres - side // 2 + side).clamp(0, size)
    inside_y = (positions[None] >= low[:, :1]) & (positions[None] < high[:, :1])  # (N, size)
    inside_x = (positions[None] >= low[:, 1:]) & (positions[None] < high[:, 1:])
    mask = ~(inside_y[:, :, None] & inside_x[:, None, :])
    return x * mask[:, None].to(x.dtype)


TRANSFORMS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: torch.Tensor, generator: torch.Generator, policy: tuple[str, ...] = DEFAULT_POLICY) -> torch.Tensor:
    """Apply the transforms of ``policy`` in order to images (N, 3, H, W) in [-1, 1]."""
    for name in policy:
        x = TRANSFORMS[name](x, generator)
    return x
