"""StyleGAN2 generators: facesteer's own safetensors files, rosinality's ``.pt`` and NVIDIA's ``.pkl``.

All three become one :class:`StyleGAN2Network` (``stylegan2_network.py``); the converters below only rename
tensors and read the architecture off their shapes. The z, w and wp spaces and truncation are those of every
style-based generator (``style.py``). Noise is the networks' fixed buffers, so the same code always gives the
same image.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facesteer.checkpoints import PickledModule, check_state, describe_checkpoint, load_pickle
from facesteer.errors import FacesteerError
from facesteer.files import write_safetensors
from facesteer.generators.base import gaussian_rows
from facesteer.generators.style import StyleBasedGenerator
from facesteer.generators.stylegan2_network import StyleGAN2Config, StyleGAN2Network

SAFETENSORS_FORMAT = "facesteer-stylegan2"
#: codes averaged to estimate w_avg when a checkpoint does not store it (rosinality's training checkpoints)
W_AVG_SAMPLES = 10_000


class StyleGAN2Generator(StyleBasedGenerator):
    """A StyleGAN2 network behind the Generator protocol, with spaces z, w and wp.

    Args:
        network: the network (its weights are frozen here).
        name: registry name or checkpoint file stem.
        source: where the weights came from (file and format), for manifests.
        truncation_psi: 1 = no truncation.
        truncation_cutoff: truncate the first this-many W+ rows (None = all).
        path: the checkpoint file, when loaded from one (recorded in manifests so runs can reload it).
    """

    compiles_faster = True  # the editor serves about twice the edits compiled (bench/serve.py, bench/RESULTS.md)

    def __init__(
        self,
        network: StyleGAN2Network,
        name: str,
        source: str,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(name, source, path)
        self.network = network.eval().requires_grad_(False)
        self.z_dim, self.w_dim = network.config.z_dim, network.config.w_dim
        self.num_ws, self.resolution = network.num_ws, network.config.resolution
        self.set_truncation(truncation_psi, truncation_cutoff)

    @property
    def w_avg(self) -> torch.Tensor:
        return self.network.mapping.w_avg

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        return self.network.mapping(z)

    def synthesis(self, wp: torch.Tensor) -> torch.Tensor:
        return self.network.synthesis(wp)

    def tunable_parameters(self) -> list[torch.nn.Parameter]:
        """The synthesis network's weights (the mapping stays: pivots are W or W+ codes)."""
        return list(self.network.synthesis.parameters())

    def style_weight(self, layer: int) -> torch.Tensor:
        """Row ``layer`` of W+ drives convolution ``layer``; the last row only the final toRGB (as in SeFa, which
        takes the other toRGB layers' styles to be covered by the convolutions that share their rows)."""
        synthesis = self.network.synthesis
        if layer < len(synthesis.layers):
            return synthesis.layers[layer].affine.weight
        return synthesis.torgbs[-1].affine.weight


# ---------------------------------------------------------------------------------------------------- loaders


def _build(config: StyleGAN2Config, state: dict[str, torch.Tensor], what: str) -> StyleGAN2Network:
    """The network ``config`` describes, loaded with ``state``; the tensors are compared with a skeleton built on
    the meta device first, so a small file whose config asks for a huge network is refused before any of it is
    allocated."""
    with torch.device("meta"):
        skeleton = StyleGAN2Network(config)
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    check_state(expected, state, what, "the StyleGAN2 architecture read from it")
    network = StyleGAN2Network(config)
    network.load_state_dict({k: v.float() for k, v in state.items()})
    return network


def estimate_w_avg(network: StyleGAN2Network, z: np.ndarray | None = None) -> None:
    """Set ``mapping.w_avg`` (the centre of truncation) to the mean of w over the codes ``z`` (N, z_dim);
    default: W_AVG_SAMPLES rows of seed 0."""
    if z is None:
        z = gaussian_rows(W_AVG_SAMPLES, network.config.z_dim, seed=0)
    with torch.no_grad():
        z = torch.from_numpy(np.asarray(z, dtype=np.float32))
        network.mapping.w_avg.copy_(network.mapping(z).mean(dim=0))


def from_rosinality(checkpoint: dict[str, Any], what: str = "checkpoint") -> StyleGAN2Network:
    """A network from rosinality/stylegan2-pytorch's checkpoint dict (``g_ema`` state dict, optional
    ``latent_avg``); the mapping learning-rate multiplier is that code's fixed 0.01."""
    if not isinstance(checkpoint, dict) or "g_ema" not in checkpoint:
        keys = sorted(checkpoint)[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise FacesteerError(f"{what} has no 'g_ema' entry (rosinality layout); it has {keys}")
    source = checkpoint["g_ema"]
    mapping = sorted(int(m.group(1)) for k in source if (m := re.fullmatch(r"style\.(\d+)\.weight", k)))
    if not mapping or "conv1.conv.weight" not in source:
        raise FacesteerError(f"{what}: 'g_ema' is not a rosinality StyleGAN2 generator")
    num_blocks = len({k.split(".")[1] for k in source if k.startswith("to_rgbs.")})
    resolution = 4 * 2**num_blocks
    channels = {"4": int(source["conv1.conv.weight"].shape[1])}
    for i in range(num_blocks):
        channels[str(8 * 2**i)] = int(source[f"convs.{2 * i}.conv.weight"].shape[1])
    config = StyleGAN2Config(
        resolution=resolution,
        channels=channels,
        z_dim=int(source[f"style.{mapping[0]}.weight"].shape[1]),
        w_dim=int(source[f"style.{mapping[-1]}.weight"].shape[0]),
        mapping_layers=len(mapping),
        mapping_lr_multiplier=0.01,
    )

    def styled_conv(ours: str, theirs: str, noise_index: int) -> dict[str, torch.Tensor]:
        return {
            f"{ours}.weight": source[f"{theirs}.conv.weight"][0],
            f"{ours}.affine.weight": source[f"{theirs}.conv.modulation.weight"],
            f"{ours}.affine.bias": source[f"{theirs}.conv.modulation.bias"],
            f"{ours}.bias": source[f"{theirs}.activate.bias"],
            f"{ours}.noise_strength": source[f"{theirs}.noise.weight"].reshape(()),
            f"{ours}.noise_const": source[f"noises.noise_{noise_index}"][0, 0],
        }

    def to_rgb(ours: str, theirs: str) -> dict[str, torch.Tensor]:
        return {
            f"{ours}.weight": source[f"{theirs}.conv.weight"][0],
            f"{ours}.affine.weight": source[f"{theirs}.conv.modulation.weight"],
            f"{ours}.affine.bias": source[f"{theirs}.conv.modulation.bias"],
            f"{ours}.bias": source[f"{theirs}.bias"].reshape(-1),
        }

    try:
        state = {
            f"mapping.layers.{i}.{p}": source[f"style.{m}.{p}"]
            for i, m in enumerate(mapping)
            for p in ("weight", "bias")
        }
        state["mapping.w_avg"] = torch.zeros(config.w_dim)
        state["synthesis.const"] = source["input.input"][0]
        state |= styled_conv("synthesis.layers.0", "conv1", 0) | to_rgb("synthesis.torgbs.0", "to_rgb1")
        for i in range(2 * num_blocks):
            state |= styled_conv(f"synthesis.layers.{i + 1}", f"convs.{i}", i + 1)
        for i in range(num_blocks):
            state |= to_rgb(f"synthesis.torgbs.{i + 1}", f"to_rgbs.{i}")
    except KeyError as error:
        raise FacesteerError(f"{what}: rosinality StyleGAN2 tensor {error} is missing") from None
    network = _build(config, state, what)
    latent_avg = checkpoint.get("latent_avg")
    if latent_avg is not None:
        network.mapping.w_avg.copy_(torch.as_tensor(latent_avg).float().reshape(-1))
    else:
        estimate_w_avg(network)
    return network


def from_nvidia(
    generator: PickledModule | dict[str, torch.Tensor],
    init_kwargs: dict[str, Any] | None = None,
    what: str = "checkpoint",
) -> StyleGAN2Network:
    """A network from NVIDIA stylegan2-ada-pytorch's ``G_ema`` (as read by :func:`load_pickle`, or its state
    dict plus constructor arguments). Only unconditional RGB generators with the 'skip' synthesis."""
    if isinstance(generator, PickledModule):
        source, init_kwargs = generator.state_dict(), generator.init_kwargs
    else:
        source, init_kwargs = generator, init_kwargs or {}
    mapping_kwargs = dict(init_kwargs.get("mapping_kwargs") or {})
    synthesis_kwargs = dict(init_kwargs.get("synthesis_kwargs") or {})
    if init_kwargs.get("c_dim", 0):
        raise FacesteerError(f"{what} is a class-conditional generator (c_dim={init_kwargs['c_dim']}); not supported")
    if init_kwargs.get("img_channels", 3) != 3:
        raise FacesteerError(f"{what} makes {init_kwargs['img_channels']}-channel images; only RGB is supported")
    if synthesis_kwargs.get("architecture", "skip") != "skip":
        architecture = synthesis_kwargs["architecture"]
        raise FacesteerError(f"{what} uses the '{architecture}' synthesis; only 'skip' is supported")
    if "mapping.fc0.weight" not in source or "synthesis.b4.const" not in source:
        raise FacesteerError(f"{what}: G_ema is not a stylegan2-ada-pytorch generator (stylegan3 is not supported)")
    fcs = sorted(int(m.group(1)) for k in source if (m := re.fullmatch(r"mapping\.fc(\d+)\.weight", k)))
    blocks = sorted(int(m.group(1)) for k in source if (m := re.fullmatch(r"synthesis\.b(\d+)\.conv1\.weight", k)))
    config = StyleGAN2Config(
        resolution=blocks[-1],
        channels={str(r): int(source[f"synthesis.b{r}.conv1.weight"].shape[0]) for r in blocks},
        z_dim=int(source["mapping.fc0.weight"].shape[1]),
        w_dim=int(source[f"mapping.fc{fcs[-1]}.weight"].shape[0]),
        mapping_layers=len(fcs),
        mapping_lr_multiplier=float(mapping_kwargs.get("lr_multiplier", 0.01)),
        conv_clamp=synthesis_kwargs.get("conv_clamp"),
    )
    layer_names = ["b4.conv1"] + [f"b{r}.{c}" for r in blocks[1:] for c in ("conv0", "conv1")]
    try:
        state = {
            f"mapping.layers.{i}.{p}": source[f"mapping.fc{f}.{p}"]
            for i, f in enumerate(fcs)
            for p in ("weight", "bias")
        }
        state["mapping.w_avg"] = source["mapping.w_avg"]
        state["synthesis.const"] = source["synthesis.b4.const"]
        for i, name in enumerate(layer_names):
            for p in ("weight", "bias", "affine.weight", "affine.bias", "noise_strength", "noise_const"):
                state[f"synthesis.layers.{i}.{p}"] = source[f"synthesis.{name}.{p}"]
        for i, r in enumerate(blocks):
            for p in ("weight", "bias", "affine.weight", "affine.bias"):
                state[f"synthesis.torgbs.{i}.{p}"] = source[f"synthesis.b{r}.torgb.{p}"]
    except KeyError as error:
        raise FacesteerError(f"{what}: stylegan2-ada-pytorch tensor {error} is missing") from None
    return _build(config, state, what)


def save_safetensors(
    network: StyleGAN2Network, path: str | os.PathLike[str], half: bool = True, card: dict[str, Any] | None = None
) -> Path:
    """Write facesteer's own StyleGAN2 file: the state dict (fp16 by default) with the config as metadata."""
    dtype = torch.float16 if half else torch.float32
    state = {k: v.detach().to(dtype).contiguous() for k, v in network.state_dict().items()}
    metadata = {"format": SAFETENSORS_FORMAT, "config": json.dumps(network.config.to_dict())}
    if card:
        metadata["card"] = json.dumps(card)
    return write_safetensors(path, state, metadata)


def from_safetensors(path: str | os.PathLike[str]) -> StyleGAN2Network:
    """Read a file written by :func:`save_safetensors`."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (a safe_open handle, not a dict)
    except (SafetensorError, OSError) as error:
        raise FacesteerError(f"cannot read {path}: {error}") from None
    if metadata.get("format") != SAFETENSORS_FORMAT:
        raise FacesteerError(f"{path} is not a facesteer StyleGAN2 file (format {metadata.get('format')!r})")
    return _build(StyleGAN2Config(**json.loads(metadata["config"])), state, str(path))


def load_stylegan2_file(path: str | os.PathLike[str], name: str | None = None) -> StyleGAN2Generator:
    """A StyleGAN2 generator from a ``.safetensors`` (facesteer) or ``.pkl`` (NVIDIA, ``G_ema``) file, read
    without executing anything in it (rosinality's ``.pt`` files go through ``load_generator``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        network, layout = from_safetensors(path), "facesteer"
    elif suffix == ".pkl":
        snapshot = load_pickle(path)
        generator = snapshot.get("G_ema") if isinstance(snapshot, dict) else None
        if not isinstance(generator, PickledModule):
            raise FacesteerError(f"{path} has no 'G_ema' network (NVIDIA stylegan2-ada-pytorch layout)")
        network, layout = from_nvidia(generator, what=str(path)), "nvidia-pkl"
    else:
        raise FacesteerError(f"{path}: a StyleGAN2 file is .safetensors or .pkl here; use load_generator for .pt")
    return StyleGAN2Generator(network, name or path.stem, source=describe_checkpoint(path, layout), path=path)


__all__ = [
    "StyleGAN2Generator",
    "from_nvidia",
    "from_rosinality",
    "from_safetensors",
    "load_stylegan2_file",
    "save_safetensors",
]
