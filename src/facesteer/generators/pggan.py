"""Progressive GAN (Karras et al., ICLR 2018) generators in the layout of InterFaceGAN's converted ``.pth`` files.

Those files (genforce/interfacegan, e.g. ``pggan_celebahq.pth``) are plain state dicts. For a generator with
B blocks (resolution R = 4 * 2^(B-1)) and channels c_0 (the latent size), c_1, ..., c_B:

    layer0        the dense 4x4 layer, as a 4x4 conv with padding 3 on the (N, c_0, 1, 1) code
    layer1..      two 3x3 convs per block; the first of each later block upsamples x2 (nearest neighbour,
                  or with ``fused_scale`` a transposed conv whose 4x4 kernel is the 3x3 kernel summed over
                  shifts: a ``weight`` of shape (3, 3, in, out) instead of ``conv.weight``)
    outputN       toRGB 1x1 conv after block N+1 (linear)
    lod           level of detail: the last ``lod`` blocks are skipped and their image upsampled

Every conv normalizes its input per pixel, scales its weight by gain/sqrt(fan_in) (gain sqrt(2), 1 for toRGB),
adds a bias and applies leaky ReLU (0.2). Codes are rescaled to norm sqrt(c_0) first, as InterFaceGAN does.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator
from facesteer.generators.ops import fused_upsample_conv, pixel_norm


class PGGANConv(nn.Module):
    """pixel norm -> (upsample) -> conv (weight-scaled) -> bias -> leaky ReLU (or linear)."""

    def __init__(
        self, weight_shape: tuple[int, ...], kernel: int, padding: int, up: str | None, gain: float, act: bool
    ) -> None:
        super().__init__()
        self.up, self.padding, self.act = up, padding, act
        if up == "fused":  # stored (k, k, in, out) as in the TF graph
            self.weight = nn.Parameter(torch.zeros(weight_shape))
            fan_in = weight_shape[0] * weight_shape[1] * weight_shape[2]
        else:
            self.conv_weight = nn.Parameter(torch.zeros(weight_shape))
            fan_in = weight_shape[1] * kernel * kernel
        self.scale = gain / math.sqrt(fan_in)
        self.bias = nn.Parameter(torch.zeros(weight_shape[-1] if up == "fused" else weight_shape[0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(x)
        if self.up == "fused":
            x = fused_upsample_conv(x, self.weight)
        else:
            if self.up == "nearest":
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = F.conv2d(x, self.conv_weight, padding=self.padding)
        x = x * self.scale + self.bias.reshape(1, -1, 1, 1)
        return F.leaky_relu(x, 0.2) if self.act else x


class PGGANNetwork(nn.Module):
    """The generator, built from the shapes of an InterFaceGAN-layout state dict."""

    def __init__(self, state: dict[str, torch.Tensor], what: str = "checkpoint") -> None:
        super().__init__()
        outputs = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(r"output(\d+)\.conv\.weight", k)))
        if not outputs or "layer0.conv.weight" not in state:
            raise FacesteerError(f"{what} is not a PGGAN state dict (InterFaceGAN layout: layer0.conv.weight, ...)")
        self.blocks = len(outputs)
        self.z_dim = int(state["layer0.conv.weight"].shape[1])
        self.resolution = 4 * 2 ** (self.blocks - 1)
        layers = []
        for index in range(2 * self.blocks):
            if f"layer{index}.weight" not in state and f"layer{index}.conv.weight" not in state:
                raise FacesteerError(f"{what}: PGGAN tensor 'layer{index}.conv.weight' is missing")
            if f"layer{index}.weight" in state:
                shape, up = tuple(state[f"layer{index}.weight"].shape), "fused"
            else:
                shape = tuple(state[f"layer{index}.conv.weight"].shape)
                up = "nearest" if index % 2 == 0 and index > 0 else None
            kernel, padding = (4, 3) if index == 0 else (3, 1)
            layers.append(PGGANConv(shape, kernel, padding, up, math.sqrt(2.0), act=True))
        self.layers = nn.ModuleList(layers)
        self.outputs = nn.ModuleList(
            PGGANConv(tuple(state[f"output{i}.conv.weight"].shape), 1, 0, None, 1.0, act=False) for i in outputs
        )
        self.register_buffer("lod", torch.zeros(()))
        ours = {}
        try:
            for index in range(2 * self.blocks):
                fused = f"layer{index}.weight" in state
                weight = state[f"layer{index}.weight" if fused else f"layer{index}.conv.weight"]
                ours[f"layers.{index}.{'weight' if fused else 'conv_weight'}"] = weight
                ours[f"layers.{index}.bias"] = state[f"layer{index}.wscale.bias"]
            for i in outputs:
                ours[f"outputs.{i}.conv_weight"] = state[f"output{i}.conv.weight"]
                ours[f"outputs.{i}.bias"] = state[f"output{i}.wscale.bias"]
        except KeyError as error:
            raise FacesteerError(f"{what}: PGGAN tensor {error} is missing") from None
        ours["lod"] = state.get("lod", torch.zeros(()))
        try:
            self.load_state_dict({k: torch.as_tensor(v).float() for k, v in ours.items()})
        except RuntimeError as error:
            raise FacesteerError(f"{what}: inconsistent PGGAN tensors: {error}") from None

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, z_dim), already normalized -> images (N, 3, R, R) in about [-1, 1]."""
        x = z.reshape(len(z), -1, 1, 1)
        lod = float(self.lod)
        image = None
        for block in range(self.blocks):
            if block + lod < self.blocks:
                x = self.layers[2 * block + 1](self.layers[2 * block](x))
                image = self.outputs[block](x)
            else:
                image = F.interpolate(image, scale_factor=2, mode="nearest")
        return image


class PGGANGenerator(Generator):
    """A PGGAN behind the Generator protocol (space z only)."""

    spaces = ("z",)
    preferred_batch_size = 16

    def __init__(self, network: PGGANNetwork, name: str, source: str, path: str | os.PathLike[str] | None = None):
        self.network = network.eval().requires_grad_(False)
        self.name, self.source = name, source
        self.path = str(Path(path).resolve()) if path is not None else None
        self.z_dim, self.resolution = network.z_dim, network.resolution

    def config(self) -> dict[str, Any]:
        return {**super().config(), "source": self.source, **({"path": self.path} if self.path else {})}

    def synthesize_tensor(self, codes: torch.Tensor, space: str = "z") -> torch.Tensor:
        self.check_codes(codes, space)
        return self.network(self._normalized(codes))

    def _normalized(self, z: torch.Tensor) -> torch.Tensor:
        return z / z.norm(dim=1, keepdim=True) * math.sqrt(self.z_dim)  # InterFaceGAN's preprocess

    def code_weights(self, layers: Sequence[int] | None = None) -> np.ndarray:
        """The first convolution's weight (C, z_dim, 4, 4) as SeFa takes it: flipped, (z_dim, C * 16)."""
        if layers is not None and list(layers) != [0]:
            raise FacesteerError(f"{self.name} has one layer a code enters (0), not {list(layers)}")
        weight = self.network.layers[0].conv_weight.detach().double()
        return weight.flip(2, 3).permute(1, 0, 2, 3).flatten(1).numpy()

    def first_layer_features(self, z: torch.Tensor) -> torch.Tensor:
        self.check_codes(z, "z")
        return self.network.layers[0](self._normalized(z).reshape(len(z), -1, 1, 1)).flatten(1)
