"""StyleGAN2 (Karras et al., CVPR 2020): the config-F generator with skip outputs, and a residual
discriminator, in one readable file.

Generator, for a batch of N codes and output resolution R = 2^k:

    z (N, z_dim) -> normalize -> mapping MLP (8 equalized FC + leaky ReLU, lr x 0.01) -> w (N, w_dim)
    w broadcast to W+ (N, num_ws, w_dim), num_ws = 2k - 2; truncation lerps it toward ``w_avg``
    const (C4, 4, 4) -> conv 3x3 (style ws[0])                              (N, C4, 4, 4)      + toRGB (ws[1])
    for each resolution r = 8 .. R: conv 3x3 up x2 (ws[2i-1]), conv 3x3 (ws[2i]) (N, Cr, r, r) + toRGB (ws[2i+1])
    image = sum over resolutions of the upsampled toRGB outputs                 (N, 3, R, R), about [-1, 1]

Every convolution is modulated by an affine map of its style vector and demodulated (toRGB is only modulated);
noise (a fixed per-layer buffer, scaled by a learned strength) is added before bias and leaky ReLU x sqrt(2).
Upsampling is a transposed convolution followed by the [1, 3, 3, 1] blur. Weights use the equalized learning
rate: parameters are stored at unit scale and multiplied by 1/sqrt(fan_in) when used.

Parameter names are facesteer's own; ``facesteer.generators.stylegan2`` converts rosinality's and NVIDIA's
layouts into them. The same arithmetic as those references is verified by tests on random weights.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from facesteer.errors import FacesteerError
from facesteer.generators.ops import pixel_norm
from facesteer.generators.style import broadcast_truncated

LRELU_GAIN = math.sqrt(2.0)
#: sizes a config may ask for (the largest official StyleGAN2s: 1024 px, 512 channels, 512-d latents, 8 layers);
#: a file's config is checked against them before any layer is built, so no file can make us allocate petabytes
MAX_RESOLUTION, MAX_CHANNELS, MAX_LATENT, MAX_MAPPING_LAYERS = 1024, 2048, 4096, 32
BLUR_TAPS = (1.0, 3.0, 3.0, 1.0)


@dataclass
class StyleGAN2Config:
    """Everything needed to build the network; stored beside the weights.

    Attributes:
        resolution: output size R (a power of two >= 4).
        channels: feature channels per resolution, keys "4", "8", ..., str(R).
        z_dim, w_dim: latent sizes.
        mapping_layers: fully connected layers of the mapping network.
        mapping_lr_multiplier: learning-rate multiplier of the mapping layers (0.01 in the paper).
        conv_clamp: clamp every conv output to +-conv_clamp (NVIDIA's ADA configs use 256), None = off.
    """

    resolution: int
    channels: dict[str, int] = field(default_factory=dict)
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    conv_clamp: float | None = None

    @property
    def resolutions(self) -> list[int]:
        return [2**i for i in range(2, int(math.log2(self.resolution)) + 1)]

    @property
    def num_ws(self) -> int:
        return 2 * len(self.resolutions)

    def __post_init__(self) -> None:
        whole = lambda v, low, high: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high  # noqa: E731
        if not whole(self.resolution, 4, MAX_RESOLUTION) or self.resolution & (self.resolution - 1):
            raise FacesteerError(f"StyleGAN2 resolution must be a power of two in 4..{MAX_RESOLUTION}, got "
                                 f"{self.resolution!r:.40}")  # fmt: skip
        wanted = [str(r) for r in self.resolutions]
        channels_ok = isinstance(self.channels, dict) and set(self.channels) == set(wanted)
        if not channels_ok or not all(whole(v, 1, MAX_CHANNELS) for v in self.channels.values()):
            raise FacesteerError(f"StyleGAN2 channels must give 1..{MAX_CHANNELS} for each of {', '.join(wanted)}, "
                                 f"got {self.channels!r:.120}")  # fmt: skip
        if not (whole(self.z_dim, 1, MAX_LATENT) and whole(self.w_dim, 1, MAX_LATENT)
                and whole(self.mapping_layers, 1, MAX_MAPPING_LAYERS)):  # fmt: skip
            raise FacesteerError(f"StyleGAN2 z_dim and w_dim must be in 1..{MAX_LATENT} and mapping_layers in "
                                 f"1..{MAX_MAPPING_LAYERS}, got {self.z_dim!r:.20}, {self.w_dim!r:.20}, "
                                 f"{self.mapping_layers!r:.20}")  # fmt: skip
        numbers = (self.mapping_lr_multiplier, *(() if self.conv_clamp is None else (self.conv_clamp,)))
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < math.inf for v in numbers):
            raise FacesteerError(f"StyleGAN2 mapping_lr_multiplier and conv_clamp must be positive numbers, got "
                                 f"{self.mapping_lr_multiplier!r:.20} and {self.conv_clamp!r:.20}")  # fmt: skip

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def small(cls, resolution: int = 64, channel_base: int = 8192, channel_max: int = 256, **kwargs) -> StyleGAN2Config:
        """NVIDIA's channel rule min(channel_base / r, channel_max) at every resolution r."""
        resolutions = [2**i for i in range(2, int(math.log2(resolution)) + 1)]
        channels = {str(r): min(channel_base // r, channel_max) for r in resolutions}
        return cls(resolution=resolution, channels=channels, **kwargs)


class EqualizedLinear(nn.Module):
    """y = act(x W^T * gain + b * lr), W stored as N(0, 1/lr^2); gain = lr / sqrt(in)."""

    def __init__(
        self, in_features: int, out_features: int, lr_multiplier: float = 1.0, bias_init: float = 0.0, act: bool = False
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.addmm(self.bias * self.bias_gain, x, (self.weight * self.weight_gain).t())
        return F.leaky_relu(x, 0.2) * LRELU_GAIN if self.act else x


class MappingNetwork(nn.Module):
    """z (N, z_dim) -> w (N, w_dim); keeps ``w_avg``, the running mean of w used by truncation."""

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        dims = [config.z_dim] + [config.w_dim] * config.mapping_layers
        self.layers = nn.ModuleList(
            EqualizedLinear(a, b, lr_multiplier=config.mapping_lr_multiplier, act=True)
            for a, b in itertools.pairwise(dims)
        )
        self.register_buffer("w_avg", torch.zeros(config.w_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(z)  # StyleGAN2's normalize_2nd_moment
        for layer in self.layers:
            x = layer(x)
        return x


def blur_kernel(device: torch.device | None = None) -> torch.Tensor:
    """The normalized 4x4 binomial low-pass filter, outer product of [1, 3, 3, 1] / 8."""
    taps = torch.tensor(BLUR_TAPS, device=device)
    kernel = taps[:, None] * taps[None, :]
    return kernel / kernel.sum()


def filter2d(x: torch.Tensor, kernel: torch.Tensor, pad: tuple[int, int], gain: float = 1.0) -> torch.Tensor:
    """Pad (before, after) on both axes, then convolve every channel with ``kernel * gain`` (symmetric)."""
    channels = x.shape[1]
    weight = (kernel * gain).to(x.dtype).expand(channels, 1, *kernel.shape)
    return F.conv2d(F.pad(x, [pad[0], pad[1], pad[0], pad[1]]), weight, groups=channels)


def upsample2d(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, 2H, 2W): insert zeros after every sample, then low-pass (upfirdn2d, up=2)."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    return filter2d(up, kernel, pad=(2, 1), gain=4.0)


def modulated_conv2d(
    x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True, up: bool = False
) -> torch.Tensor:
    """Convolve each sample with its own modulated (and demodulated) kernel.

    Computed as StyleGAN2's "non-fused" form: scale the input channels by the styles, run one ordinary
    convolution with the shared kernel, scale the output channels by the demodulation coefficients. This equals
    the per-sample kernels w'_oi = s_i w_oi / ||s w_o|| exactly and is several times faster on CPUs than a
    grouped convolution over the batch (forward and backward).

    Args:
        x: (N, I, H, W) features.
        weight: (O, I, k, k) kernel.
        styles: (N, I) per-sample input-channel scales.
        demodulate: rescale each output channel's kernel to unit norm.
        up: upsample x2 (transposed convolution, then the blur); output (N, O, 2H, 2W).

    Returns:
        (N, O, H, W) or (N, O, 2H, 2W).
    """
    n, in_channels = x.shape[:2]
    k = weight.shape[-1]
    x = x * styles.reshape(n, in_channels, 1, 1)
    if up:
        x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
        x = filter2d(x, blur_kernel(x.device), pad=(1, 1), gain=4.0)
    else:
        x = F.conv2d(x, weight, padding=k // 2)
    if demodulate:
        # ||s * w_o||^2 = sum_i s_i^2 sum_kk w_oik^2: one (N, I) x (I, O) product
        coefficients = (styles.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8).rsqrt()  # (N, O)
        x = x * coefficients.reshape(n, -1, 1, 1)
    return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally upsampling x2) + noise + bias + leaky ReLU, for one style vector."""

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool, conv_clamp: float | None
    ) -> None:
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.up = up
        self.conv_clamp = conv_clamp

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: str = "const") -> torch.Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w), demodulate=True, up=self.up)
        if noise == "const":
            x = x + self.noise_const * self.noise_strength
        elif noise == "random":
            x = x + torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device) * self.noise_strength
        x = F.leaky_relu(x + self.bias.reshape(1, -1, 1, 1), 0.2) * LRELU_GAIN
        return x.clamp(-self.conv_clamp, self.conv_clamp) if self.conv_clamp is not None else x


class ToRGB(nn.Module):
    """Modulated (not demodulated) 1x1 conv to RGB + bias."""

    def __init__(self, in_channels: int, w_dim: int, conv_clamp: float | None) -> None:
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(3, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(3))
        self.weight_gain = 1 / math.sqrt(in_channels)
        self.conv_clamp = conv_clamp

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w) * self.weight_gain, demodulate=False)
        x = x + self.bias.reshape(1, -1, 1, 1)
        return x.clamp(-self.conv_clamp, self.conv_clamp) if self.conv_clamp is not None else x


class SynthesisNetwork(nn.Module):
    """W+ codes (N, num_ws, w_dim) -> images (N, 3, R, R)."""

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        ch = {int(r): c for r, c in config.channels.items()}
        resolutions = config.resolutions
        self.const = nn.Parameter(torch.randn(ch[4], 4, 4))
        layers = [SynthesisLayer(ch[4], ch[4], config.w_dim, 4, up=False, conv_clamp=config.conv_clamp)]
        torgbs = [ToRGB(ch[4], config.w_dim, config.conv_clamp)]
        for r in resolutions[1:]:
            layers.append(SynthesisLayer(ch[r // 2], ch[r], config.w_dim, r, up=True, conv_clamp=config.conv_clamp))
            layers.append(SynthesisLayer(ch[r], ch[r], config.w_dim, r, up=False, conv_clamp=config.conv_clamp))
            torgbs.append(ToRGB(ch[r], config.w_dim, config.conv_clamp))
        self.layers = nn.ModuleList(layers)
        self.torgbs = nn.ModuleList(torgbs)
        self.register_buffer("resample_kernel", blur_kernel(), persistent=False)
        self.num_ws = config.num_ws

    def forward(self, ws: torch.Tensor, noise: str = "const") -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1] != self.num_ws:
            raise ValueError(f"W+ codes must have shape (N, {self.num_ws}, w_dim), got {tuple(ws.shape)}")
        x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        x = self.layers[0](x, ws[:, 0], noise)
        image = self.torgbs[0](x, ws[:, 1])
        for i, torgb in enumerate(self.torgbs[1:], start=1):
            x = self.layers[2 * i - 1](x, ws[:, 2 * i - 1], noise)
            x = self.layers[2 * i](x, ws[:, 2 * i], noise)
            image = upsample2d(image, self.resample_kernel) + torgb(x, ws[:, 2 * i + 1])
        return image


class StyleGAN2Network(nn.Module):
    """Mapping + synthesis, with the truncation trick."""

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        self.config = config
        self.mapping = MappingNetwork(config)
        self.synthesis = SynthesisNetwork(config)

    @property
    def num_ws(self) -> int:
        return self.config.num_ws

    def broadcast(self, w: torch.Tensor, psi: float = 1.0, cutoff: int | None = None) -> torch.Tensor:
        """w (N, w_dim) -> W+ (N, num_ws, w_dim), truncated toward ``w_avg`` by psi on the first ``cutoff``."""
        return broadcast_truncated(w, self.num_ws, self.mapping.w_avg, psi, cutoff)

    def forward(self, z: torch.Tensor, psi: float = 1.0, cutoff: int | None = None, noise: str = "const"):
        """z (N, z_dim) -> images (N, 3, R, R)."""
        return self.synthesis(self.broadcast(self.mapping(z), psi, cutoff), noise)


# ------------------------------------------------------------------------------------------- discriminator


class EqualizedConv2d(nn.Module):
    """Conv with equalized learning rate; optional blur + stride-2 downsampling, bias and leaky ReLU x sqrt(2)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, down: bool = False, bias: bool = True, act: bool = True
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel * kernel)
        self.down, self.act = down, act
        self.register_buffer("resample_kernel", blur_kernel(), persistent=False)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        weight = self.weight * self.weight_gain
        k = weight.shape[-1]
        if self.down:  # blur so that the stride-2 conv sees a low-passed signal (upfirdn2d, down=2)
            pad = k // 2 + 1  # as NVIDIA's conv2d_resample pads for the 4-tap filter: H -> H + 2 pad - 3
            x = filter2d(x, self.resample_kernel, pad=(pad, pad))
            x = F.conv2d(x, weight, stride=2)
        else:
            x = F.conv2d(x, weight, padding=k // 2)
        if self.bias is not None:
            x = x + self.bias.reshape(1, -1, 1, 1)
        if self.act:
            x = F.leaky_relu(x, 0.2) * LRELU_GAIN
        return x * gain if gain != 1.0 else x


class DiscriminatorBlock(nn.Module):
    """Residual block: conv 3x3, conv 3x3 down x2, plus a 1x1 down skip, summed with gain sqrt(1/2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3, down=True)
        self.skip = EqualizedConv2d(in_channels, out_channels, 1, down=True, bias=False, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x, gain=math.sqrt(0.5)) + self.conv1(self.conv0(x), gain=math.sqrt(0.5))


def minibatch_stddev(x: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """Append one feature map: the standard deviation across groups of samples, averaged over features."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    if n % g:
        g = 1
    y = x.reshape(g, -1, c, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt().mean(dim=(1, 2, 3))  # (N/g,)
    y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


class Discriminator(nn.Module):
    """StyleGAN2's residual discriminator: images (N, 3, R, R) in [-1, 1] -> logits (N,)."""

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        ch = {int(r): c for r, c in config.channels.items()}
        resolutions = config.resolutions[::-1]  # R, R/2, ..., 4
        self.from_rgb = EqualizedConv2d(3, ch[resolutions[0]], 1)
        self.blocks = nn.ModuleList(DiscriminatorBlock(ch[r], ch[r // 2]) for r in resolutions[:-1])
        self.conv = EqualizedConv2d(ch[4] + 1, ch[4], 3)
        self.fc = EqualizedLinear(ch[4] * 16, ch[4], act=True)
        self.out = EqualizedLinear(ch[4], 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.from_rgb(images)
        for block in self.blocks:
            x = block(x)
        x = self.conv(minibatch_stddev(x))
        return self.out(self.fc(x.flatten(1))).squeeze(1)
