"""The embedded default generator: the 64x64 DCGAN face generator shipped in PyPI's ``gan-face-generate``.

The network is the PyTorch-tutorial DCGAN (Radford et al. 2016) with nz=100, ngf=64, trained by that
package's author on DigiFace-1M (MIT). Its weights (``weights.tar``'s ``netG_state_dict``, the same tensors)
ship inside facesteer as ``weights/dcgan-digiface64.safetensors`` (card and licence beside it), read into our own
copy of the architecture; a generator's config still names them by their origin, ``gan-face-generate==1.1.1/
weights.tar``, so runs made when they were read from that package reload them.

Layer by layer, for a batch of N codes (N, 100) reshaped to (N, 100, 1, 1):

    ConvT 100->512 k4 s1 p0 -> BN -> ReLU    (N, 512, 4, 4)
    ConvT 512->256 k4 s2 p1 -> BN -> ReLU    (N, 256, 8, 8)
    ConvT 256->128 k4 s2 p1 -> BN -> ReLU    (N, 128, 16, 16)
    ConvT 128->64  k4 s2 p1 -> BN -> ReLU    (N, 64, 32, 32)
    ConvT 64->3    k4 s2 p1 -> tanh          (N, 3, 64, 64), in [-1, 1]
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
import torch.nn.functional as F
from torch import nn

from facesteer.checkpoints import check_state, describe_checkpoint, load_torch_file
from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator
from facesteer.shipped import generator_file

PACKAGE_PIN = "gan-face-generate==1.1.1"
WEIGHTS_FILE = "weights.tar"
#: the shipped safetensors (the tensors of PACKAGE_PIN's WEIGHTS_FILE); its sha256
SHIPPED_SHA256 = "5727ba050ad59d50e21f9919c2f40f11a14cac891122e4d228eaa49e1c730775"


class DCGANNetwork(nn.Module):
    """The DCGAN generator; parameter names match the tutorial's ``main.<index>`` layout."""

    def __init__(self, z_dim: int = 100, base_channels: int = 64, image_channels: int = 3) -> None:
        super().__init__()
        c = base_channels
        self.z_dim = z_dim
        self.main = nn.Sequential(
            nn.ConvTranspose2d(z_dim, c * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(c * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(c * 8, c * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(c * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(c * 4, c * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(c * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(c * 2, c, 4, 2, 1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(True),
            nn.ConvTranspose2d(c, image_channels, 4, 2, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, z_dim) -> (N, 3, 64, 64) in [-1, 1]."""
        return self.main(z.reshape(len(z), self.z_dim, 1, 1))


def fold_batchnorm(conv: nn.ConvTranspose2d, norm: nn.BatchNorm2d | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight (Cin, Cout, k, k) and bias (Cout,) of ``norm(conv(x))`` as one transposed convolution.

    In eval mode BatchNorm is the per-channel affine map y = (x - mean) / sqrt(var + eps) * gamma + beta.
    """
    weight = conv.weight.detach()
    if norm is None:
        return weight.clone(), torch.zeros(weight.shape[1])
    scale = (norm.weight / torch.sqrt(norm.running_var + norm.eps)).detach()
    bias = (norm.bias - norm.running_mean * scale).detach()
    return weight * scale[None, :, None, None], bias


class FusedDCGAN(nn.Module):
    """Inference form of a :class:`DCGANNetwork` in eval mode: the same function, computed faster on CPU.

    Measured in ``bench/generator.py``; four changes, each worth it there:

    - BatchNorm folded into the preceding transposed convolution (one pass over memory instead of two);
    - the first layer (1x1 input -> 4x4) is one matrix product (N, 100) @ (100, 512*16);
    - the last layer (64 -> 3 channels) is a matrix product followed by col2im (``F.fold``), which is what a
      transposed convolution is; oneDNN's kernel for 3 output channels runs at a fraction of its usual speed.
    - the middle layers run in channels-last memory format, where oneDNN's transposed convolutions took 3-14 %
      less time than in NCHW (the last layer then reads the pixels as rows without a copy).
    """

    def __init__(self, network: DCGANNetwork) -> None:
        super().__init__()
        layers = list(network.main)
        convs = [m for m in layers if isinstance(m, nn.ConvTranspose2d)]
        norms = [layers[layers.index(c) + 1] for c in convs]
        folded = [
            fold_batchnorm(c, n if isinstance(n, nn.BatchNorm2d) else None) for c, n in zip(convs, norms, strict=True)
        ]
        first_weight, first_bias = folded[0]
        self.z_dim = first_weight.shape[0]
        self.first_channels = first_weight.shape[1]
        # (z_dim, C*16) so that z @ W gives the 4x4 feature map in NCHW order
        self.register_buffer("first_weight", first_weight.reshape(self.z_dim, -1).contiguous())
        self.register_buffer("first_bias", first_bias.repeat_interleave(16))
        for index, (weight, bias) in enumerate(folded[1:-1]):
            self.register_buffer(f"weight{index}", weight.contiguous())
            self.register_buffer(f"bias{index}", bias)
        self.middle = len(folded) - 2
        last_weight, _ = folded[-1]
        self.out_channels = last_weight.shape[1]
        # (Cin, Cout*16): pixels @ W gives the columns for F.fold, whose channel layout is (Cout, kh, kw)
        self.register_buffer("last_weight", last_weight.reshape(last_weight.shape[0], -1).contiguous())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, z_dim) -> (N, 3, 64, 64) in [-1, 1]."""
        n = len(z)
        x = torch.addmm(self.first_bias, z, self.first_weight).reshape(n, self.first_channels, 4, 4).relu_()
        x = x.contiguous(memory_format=torch.channels_last)  # oneDNN's faster layout for the middle layers
        for index in range(self.middle):
            weight, bias = getattr(self, f"weight{index}"), getattr(self, f"bias{index}")
            x = F.conv_transpose2d(x, weight, bias, stride=2, padding=1).relu_()
        channels, height, width = x.shape[1:]
        pixels = x.permute(0, 2, 3, 1).reshape(n, height * width, channels)  # a view: x is channels-last
        columns = torch.matmul(pixels, self.last_weight).transpose(1, 2)
        image = F.fold(columns, (2 * height, 2 * width), kernel_size=4, stride=2, padding=1)
        return image.tanh_()


def shipped_weights() -> dict[str, torch.Tensor]:
    """The default generator's state dict, from the shipped safetensors (checked by sha256)."""
    path = generator_file("dcgan-digiface64")
    payload = path.read_bytes() if path.is_file() else b""
    if hashlib.sha256(payload).hexdigest() != SHIPPED_SHA256:
        raise FacesteerError(f"{path} is missing or altered (sha256 differs): reinstall facesteer")
    return safetensors.torch.load(payload)


class DCGANFaceGenerator(Generator):
    """``dcgan-digiface64``: 64x64 faces from z ~ N(0, I_100)."""

    name = "dcgan-digiface64"
    z_dim = 100
    resolution = 64
    spaces = ("z",)

    def __init__(self, weights: str | Path | None = None, name: str | None = None) -> None:
        """Args:
        weights: a ``netG_state_dict`` checkpoint file; default: the shipped weights. A generator loaded
            from a file is named after it and records its path and sha256, so a run made with it reloads
            that file, never the shipped weights.
        """
        self.path = str(Path(weights).resolve()) if weights is not None else None
        if weights is None:
            state, source = shipped_weights(), str(generator_file(self.name))
        else:
            self.name = name or Path(weights).stem
            checkpoint = load_torch_file(weights)  # archive checked, restricted unpickler, one-line errors
            state = checkpoint.get("netG_state_dict") if isinstance(checkpoint, dict) else None
            source = str(weights)
            if not isinstance(state, dict):
                raise FacesteerError(f"{weights} has no 'netG_state_dict' dict of tensors")
        self.network = DCGANNetwork(self.z_dim)
        expected = {k: tuple(v.shape) for k, v in self.network.state_dict().items()}
        check_state(expected, state, source, "a 64x64 DCGAN (nz=100, ngf=64)")
        self.network.load_state_dict(state)
        self.network.eval().requires_grad_(False)
        self.fused = FusedDCGAN(self.network)

    def config(self) -> dict[str, Any]:
        if self.path is None:
            return {**super().config(), "weights": f"{PACKAGE_PIN}/{WEIGHTS_FILE}"}
        return {**super().config(), "weights": describe_checkpoint(self.path, "dcgan-netG"), "path": self.path}

    def synthesize_tensor(self, codes: torch.Tensor, space: str = "z") -> torch.Tensor:
        self.check_codes(codes, space)
        return self.fused(codes)

    def code_weights(self, layers: Sequence[int] | None = None) -> np.ndarray:
        """The first transposed convolution's weight (z_dim, C, 4, 4) as (z_dim, C * 16): on the 1x1 input it is
        a linear map, output unit (c, y, x) = sum over i of weight[i, c, y, x] * z[i]."""
        if layers is not None and list(layers) != [0]:
            raise FacesteerError(f"{self.name} has one layer a code enters (0), not {list(layers)}")
        return self.network.main[0].weight.detach().double().flatten(1).numpy()

    def first_layer_features(self, z: torch.Tensor) -> torch.Tensor:
        """Activations after the first transposed convolution, batch norm and ReLU: (N, 512 * 4 * 4)."""
        self.check_codes(z, "z")
        return self.network.main[:3](z.reshape(len(z), self.z_dim, 1, 1)).flatten(1)
