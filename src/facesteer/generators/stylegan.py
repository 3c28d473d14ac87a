"""StyleGAN (Karras et al., CVPR 2019) generators in the layout of InterFaceGAN's converted ``.pth`` files.

Those files (genforce/interfacegan, e.g. ``stylegan_ffhq.pth``) are plain state dicts with ``mapping.*``,
``truncation.*`` and ``synthesis.*`` tensors. The network, for W+ codes (N, num_ws, w_dim), num_ws = 2 log2(R) - 2:

    mapping       z normalized per row -> dense layers (weights x sqrt(2)/sqrt(fan_in) x 0.01, leaky ReLU) -> w
    truncation    W+ rows i < cutoff move toward ``w_avg``: w_avg + psi (w - w_avg)
    layer 0       learned constant (C, 4, 4) -> epilogue(ws[0])
    layer 2k      upsample x2 (nearest + 3x3 conv, or a fused transposed conv) -> [1, 2, 1] blur -> epilogue(ws[2k])
    layer 2k+1    3x3 conv -> epilogue(ws[2k+1])
    epilogue      + noise (fixed buffer x per-channel weight) + bias -> leaky ReLU -> instance norm -> AdaIN:
                  x * (1 + scale(w)) + shift(w)
    output k      toRGB 1x1 conv after block k; ``lod`` skips the last blocks and upsamples their image

Convolution weights are scaled by sqrt(2)/sqrt(fan_in) (equalized learning rate); codes in Z are rescaled to
norm sqrt(z_dim) first, as InterFaceGAN does. The truncation stored in the file (InterFaceGAN: psi 0.7 on the
first 8 layers) is the default.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facesteer.errors import FacesteerError
from facesteer.generators.ops import fused_upsample_conv, pixel_norm
from facesteer.generators.style import StyleBasedGenerator

SQRT2 = math.sqrt(2.0)


def instance_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    x = x - x.mean(dim=(2, 3), keepdim=True)
    return x * (x.square().mean(dim=(2, 3), keepdim=True) + eps).rsqrt()


def blur_121(x: torch.Tensor) -> torch.Tensor:
    taps = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device)
    kernel = (taps[:, None] * taps[None, :]) / 16
    return F.conv2d(x, kernel.expand(x.shape[1], 1, 3, 3), padding=1, groups=x.shape[1])


class StyleLayer(nn.Module):
    """One synthesis layer: (const | conv, optionally upsampling + blur), then the epilogue with AdaIN."""

    def __init__(self, kind: str, in_channels: int, out_channels: int, w_dim: int, resolution: int) -> None:
        super().__init__()
        self.kind = kind  # "const", "conv", "up" or "fused"
        if kind == "const":
            self.const = nn.Parameter(torch.ones(1, out_channels, 4, 4))
        elif kind == "fused":
            self.weight = nn.Parameter(torch.zeros(3, 3, in_channels, out_channels))
        else:
            self.weight = nn.Parameter(torch.zeros(out_channels, in_channels, 3, 3))
        self.scale = SQRT2 / math.sqrt(in_channels * 9)
        self.register_buffer("noise", torch.zeros(1, 1, resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros(out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.style_weight = nn.Parameter(torch.zeros(2 * out_channels, w_dim))
        self.style_bias = nn.Parameter(torch.zeros(2 * out_channels))
        self.style_scale = 1 / math.sqrt(w_dim)

    def forward(self, x: torch.Tensor | None, w: torch.Tensor) -> torch.Tensor:
        if self.kind == "const":
            x = self.const.expand(len(w), -1, -1, -1)
        elif self.kind == "fused":  # upsample + conv as one transposed conv (kernel summed over 4 shifts)
            x = blur_121(fused_upsample_conv(x, self.weight * self.scale))
        elif self.kind == "up":
            x = blur_121(
                F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), self.weight, padding=1) * self.scale
            )
        else:
            x = F.conv2d(x, self.weight, padding=1) * self.scale
        x = x + self.noise * self.noise_strength.reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)
        x = instance_norm(F.leaky_relu(x, 0.2))
        style = (w @ self.style_weight.t() * self.style_scale + self.style_bias).reshape(len(w), 2, -1, 1, 1)
        return x * (style[:, 0] + 1) + style[:, 1]


class StyleGANNetwork(nn.Module):
    """Mapping, truncation and synthesis, built from the shapes of an InterFaceGAN-layout state dict."""

    def __init__(self, state: dict[str, torch.Tensor], what: str = "checkpoint") -> None:
        super().__init__()
        dense = sorted(int(m.group(1)) for k in state if (m := re.fullmatch(r"mapping\.dense(\d+)\.linear\.weight", k)))
        outputs = sorted(
            int(m.group(1)) for k in state if (m := re.fullmatch(r"synthesis\.output(\d+)\.conv\.weight", k))
        )
        if not dense or not outputs or "synthesis.layer0.first_layer" not in state:
            raise FacesteerError(f"{what} is not a StyleGAN state dict (InterFaceGAN layout: mapping.dense0, ...)")
        self.z_dim = int(state[f"mapping.dense{dense[0]}.linear.weight"].shape[1])
        self.w_dim = int(state[f"mapping.dense{dense[-1]}.linear.weight"].shape[0])
        self.blocks = len(outputs)
        self.resolution = 4 * 2 ** (self.blocks - 1)
        self.num_ws = 2 * self.blocks
        self.mapping = nn.ParameterList()
        ours: dict[str, torch.Tensor] = {}
        try:
            for index in dense:
                self.mapping.append(nn.Parameter(state[f"mapping.dense{index}.linear.weight"].float()))
                self.mapping.append(nn.Parameter(state[f"mapping.dense{index}.wscale.bias"].float()))
            layers = []
            for i in range(self.num_ws):
                prefix = f"synthesis.layer{i}"
                resolution = 4 * 2 ** (i // 2)
                if i == 0:
                    kind, weight = "const", state[f"{prefix}.first_layer"]
                    in_channels = out_channels = weight.shape[1]
                    ours[f"layers.{i}.const"] = weight
                elif f"{prefix}.weight" in state:
                    kind, weight = "fused", state[f"{prefix}.weight"]
                    in_channels, out_channels = weight.shape[2], weight.shape[3]
                    ours[f"layers.{i}.weight"] = weight
                else:
                    kind = "up" if i % 2 == 0 else "conv"
                    weight = state[f"{prefix}.conv.weight"]
                    in_channels, out_channels = weight.shape[1], weight.shape[0]
                    ours[f"layers.{i}.weight"] = weight
                layers.append(StyleLayer(kind, int(in_channels), int(out_channels), self.w_dim, resolution))
                epilogue = f"{prefix}.epilogue"
                ours[f"layers.{i}.noise"] = state[f"{epilogue}.apply_noise.noise"]
                ours[f"layers.{i}.noise_strength"] = state[f"{epilogue}.apply_noise.weight"]
                ours[f"layers.{i}.bias"] = state[f"{epilogue}.bias"]
                ours[f"layers.{i}.style_weight"] = state[f"{epilogue}.style_mod.dense.linear.weight"]
                ours[f"layers.{i}.style_bias"] = state[f"{epilogue}.style_mod.dense.wscale.bias"]
            self.layers = nn.ModuleList(layers)
            self.torgb_weights = nn.ParameterList(
                nn.Parameter(state[f"synthesis.output{k}.conv.weight"].float()) for k in outputs
            )
            self.torgb_biases = nn.ParameterList(
                nn.Parameter(state[f"synthesis.output{k}.bias"].float()) for k in outputs
            )
            self.register_buffer("w_avg", state["truncation.w_avg"].float().clone())
        except KeyError as error:
            raise FacesteerError(f"{what}: StyleGAN tensor {error} is missing") from None
        self.register_buffer("lod", torch.as_tensor(state.get("synthesis.lod", torch.zeros(()))).float().clone())
        try:
            self.load_state_dict({k: torch.as_tensor(v).float() for k, v in ours.items()}, strict=False)
        except RuntimeError as error:
            raise FacesteerError(f"{what}: inconsistent StyleGAN tensors: {error}") from None
        coefficients = state.get("truncation.truncation")
        self.stored_truncation = _truncation_of(coefficients) if coefficients is not None else (1.0, None)

    def map(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, z_dim), already normalized to norm sqrt(z_dim) -> w (N, w_dim)."""
        x = pixel_norm(z)
        for weight, bias in zip(self.mapping[::2], self.mapping[1::2], strict=True):
            x = F.leaky_relu(x @ weight.t() * (SQRT2 / math.sqrt(weight.shape[1]) * 0.01) + bias * 0.01, 0.2)
        return x

    def synthesize(self, wp: torch.Tensor) -> torch.Tensor:
        """W+ (N, num_ws, w_dim) -> images (N, 3, R, R) in about [-1, 1]."""
        lod = float(self.lod)
        x, image = None, None
        for block in range(self.blocks):
            if block + lod < self.blocks:
                x = self.layers[2 * block](x, wp[:, 2 * block])
                x = self.layers[2 * block + 1](x, wp[:, 2 * block + 1])
                weight = self.torgb_weights[block]
                image = F.conv2d(x, weight) / math.sqrt(weight.shape[1]) + self.torgb_biases[block].reshape(1, -1, 1, 1)
            else:
                image = F.interpolate(image, scale_factor=2, mode="nearest")
        return image


def _truncation_of(coefficients: torch.Tensor) -> tuple[float, int | None]:
    """(psi, cutoff) from InterFaceGAN's stored per-layer coefficients (psi on the first cutoff layers, then 1)."""
    values = np.asarray(coefficients, dtype=np.float64).reshape(-1)
    truncated = np.flatnonzero(values != 1.0)
    if len(truncated) == 0:
        return 1.0, None
    return round(float(values[0]), 6), int(truncated[-1]) + 1


class StyleGANGenerator(StyleBasedGenerator):
    """A StyleGAN behind the Generator protocol, with spaces z, w and wp (same conventions as StyleGAN2); the
    truncation stored in the file is the default."""

    def __init__(self, network: StyleGANNetwork, name: str, source: str, path: str | os.PathLike[str] | None = None):
        super().__init__(name, source, path)
        self.network = network.eval().requires_grad_(False)
        self.z_dim, self.w_dim, self.num_ws = network.z_dim, network.w_dim, network.num_ws
        self.resolution = network.resolution
        self.set_truncation(*network.stored_truncation)

    @property
    def w_avg(self) -> torch.Tensor:
        return self.network.w_avg

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return self.network.map(z / z.norm(dim=1, keepdim=True) * math.sqrt(self.z_dim))  # InterFaceGAN's preprocess

    def synthesis(self, wp: torch.Tensor) -> torch.Tensor:
        return self.network.synthesize(wp)

    def style_weight(self, layer: int) -> torch.Tensor:
        return self.network.layers[layer].style_weight  # (2 x channels: scale and bias of AdaIN, w_dim)
