"""Latent discovery with a reconstructor, and the two-stage disentanglement (PLoS ONE 2023).

Five methods learn a direction matrix A (d x K, unit orthonormal columns) in W (style-based generators, as the
paper) or Z (the default DCGAN):

- ``sdd`` (stage 1; Voynov & Babenko, ICML 2020): pick a direction k ~ U{0..K-1} and a shift eps = 6 U[-1, 1]
  with |eps| raised to at least 0.5; a reconstructor R sees the stacked pair G(w), G(w + eps A_k) and predicts
  k (cross-entropy) and eps (mean absolute error, weight 0.25). A and R train together (Adam, lr 1e-4).
- ``shp``: the Hessian penalty alone, A from a random start, no reconstructor.
- ``hdp``: both at once, CE + 0.25 MAE + 0.5 HP.
- ``dth`` (stage 2): start from an SDD run's A and train only A on the Hessian penalty (Adam; the paper's lr
  0.01 scrambles A here, so 1e-3 by default), scaled by gamma = 0.1.
- ``dtj``: stage 2 with OroJaR in place of the Hessian penalty.

The penalties are taken with respect to the direction coefficients, as the two-stage code does: with
c = eps e_k (the shift of the step), f(c) = G(w + A c), so they measure whether the K directions act
independently on the image. Stage 1 (sdd, hdp) re-orthonormalises A's columns after each step (QR with the
signs kept). The penalty-only methods (shp, dth, dtj) train a rotation of their start instead,
A = expm(S - S^T) A0, as the two-stage code's "ortho" deformator does: a penalty alone would shrink A to zero,
and after a projection back to unit columns a gradient step that mostly shrinks A barely turns it.

A step's randomness (codes, k, eps, Rademacher draws) depends only on (seed, step), and checkpoints hold A, R
and the optimiser's moments, so a run resumed from its checkpoint ends with the same A as one never stopped.
Where the paper uses ResNet-18 on 256-px pairs, the reconstructor here is a four-layer CNN on pairs of at most
64 px (the shipped generators' size); the paper trains 10^5 steps per method on a GPU.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from facesteer.discovery.directions import Directions
from facesteer.discovery.hessian_penalty import hessian_penalty
from facesteer.discovery.orojar import orojar_penalty
from facesteer.errors import FacesteerError
from facesteer.files import write_json
from facesteer.generators.base import Generator, weights_identity
from facesteer.resumable import read_checkpoint, restore_state, state_tensors, write_checkpoint

METHODS = ("sdd", "shp", "hdp", "dth", "dtj")
STAGE_TWO = ("dth", "dtj")
CHECKPOINT = "checkpoint.safetensors"
OPTIONS = "options.json"


@dataclass(frozen=True)
class DiscoveryOptions:
    """How a run trains; stored in ``OUT/options.json`` and checked on resume.

    Attributes:
        method: one of :data:`METHODS`.
        directions: K, the columns of A (default min(32, d)).
        steps: optimisation steps (the paper: 100,000).
        batch_size: codes per step.
        learning_rate: Adam's for A and R in stage 1 (sdd, hdp).
        penalty_learning_rate: Adam's for the rotation of A (shp, dth, dtj). The paper's 0.01 scrambles A here:
            from an SDD run of the default generator, 80 DTH steps at 0.01 raised a fixed-noise probe of the
            penalty from 2.03 to 5.58 (the rotation's random walk outruns its noisy gradient); 1e-3 lowered it
            to 1.73 (bench/RESULTS.md, "Latent discovery").
        shift_scale, min_shift: eps = shift_scale * U[-1, 1], |eps| >= min_shift.
        regression_weight: weight of the shift's mean absolute error.
        joint_penalty_weight: the Hessian penalty's weight in hdp.
        gamma: the penalty's weight in dth and dtj.
        penalty_draws, penalty_epsilon: the penalties' k and epsilon.
        seed: everything random derives from it.
        checkpoint_every: steps between checkpoints.
        start: stage 2: the SDD run folder whose A is the starting point.
    """

    method: str
    directions: int | None = None
    steps: int = 100_000
    batch_size: int = 32
    learning_rate: float = 1e-4
    penalty_learning_rate: float = 1e-3
    shift_scale: float = 6.0
    min_shift: float = 0.5
    regression_weight: float = 0.25
    joint_penalty_weight: float = 0.5
    gamma: float = 0.1
    penalty_draws: int = 2
    penalty_epsilon: float = 0.1
    seed: int = 0
    checkpoint_every: int = 100
    start: str | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise FacesteerError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if (self.method in STAGE_TWO) != (self.start is not None):
            need = "needs `start`, an SDD run's folder" if self.method in STAGE_TWO else "starts afresh (no `start`)"
            raise FacesteerError(f"{self.method} {need}")
        if self.steps < 1 or self.batch_size < 1 or self.checkpoint_every < 1:
            raise FacesteerError("steps, batch size and checkpoint interval must be >= 1")


class Reconstructor(nn.Module):
    """The stacked image pair (N, 6, R, R) in [-1, 1] -> (logits over the K directions (N, K), shift (N,))."""

    def __init__(self, directions: int, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 6
        for out in (width, 2 * width, 4 * width, 8 * width):
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.logits = nn.Linear(channels, directions)
        self.shift = nn.Linear(channels, 1)

    def forward(self, pair: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if pair.shape[-1] > 64:
            pair = F.adaptive_avg_pool2d(pair, 64)
        features = self.features(pair).mean(dim=(2, 3))
        return self.logits(features), self.shift(features)[:, 0]


def orthonormalize(matrix: torch.Tensor) -> torch.Tensor:
    """Orthonormal columns spanning the same space, each as close to its original as QR allows (signs kept)."""
    q, r = torch.linalg.qr(matrix)
    signs = torch.sign(torch.diagonal(r))
    return q * torch.where(signs == 0, torch.ones_like(signs), signs)


def step_generator(seed: int, step: int) -> torch.Generator:
    """The random stream of one step: a function of (seed, step) only, so resuming changes nothing."""
    state = np.random.SeedSequence([seed, step]).generate_state(2, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


def sample_shifts(batch: int, directions: int, scale: float, minimum: float, rng: torch.Generator):
    """(k (N,) int64, eps (N,) float32): eps = scale * U[-1, 1] with |eps| raised to at least ``minimum``."""
    k = torch.randint(0, directions, (batch,), generator=rng)
    eps = scale * (2 * torch.rand(batch, generator=rng) - 1)
    eps = torch.where(eps >= 0, eps.clamp(min=minimum), eps.clamp(max=-minimum))
    return k, eps


class LatentDiscovery:
    """One run of a method: ``train()`` to ``options.steps``, checkpointing into ``out`` and resuming from it.

    Args:
        generator: the frozen generator (moved to ``device``).
        options: the run's options (must match ``out/options.json`` when resuming).
        out: the run folder.
        device: ``cpu`` or ``cuda``.
        clock: seconds counter for the logged training time.
    """

    def __init__(
        self,
        generator: Generator,
        options: DiscoveryOptions,
        out: str | Path,
        device: str = "cpu",
        progress: bool = True,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.generator, self.options, self.out = generator.to(device), options, Path(out)
        self.device, self.progress, self.clock = device, progress, clock
        self.space = generator.edit_space
        self.dim = generator.space_shape(self.space)[0]
        self.count = options.directions or min(32, self.dim)
        if not 1 <= self.count <= self.dim:
            raise FacesteerError(f"directions must be in 1..{self.dim} for {generator.name}, got {self.count}")
        torch.manual_seed(options.seed)  # the reconstructor's initial weights
        self.base = self._initial_matrix().to(device).contiguous()  # one memory layout, fresh or resumed
        if options.method in ("sdd", "hdp"):  # A itself, orthonormalised after every step
            self.matrix = nn.Parameter(self.base.clone())
            self.reconstructor: Reconstructor | None = Reconstructor(self.count).to(device)
            trained, rate = [self.matrix, *self.reconstructor.parameters()], options.learning_rate
        else:  # A = expm(S - S^T) A0: a rotation of the start, orthonormal by construction (the two-stage code's
            # "ortho" deformator), so a penalty that would shrink A can only turn it
            self.rotation = nn.Parameter(torch.zeros(self.dim, self.dim, device=device))
            self.reconstructor = None
            trained, rate = [self.rotation], options.penalty_learning_rate
        self.optimizer = torch.optim.Adam(trained, lr=rate)
        self.step, self.seconds = 0, 0.0
        self.out.mkdir(parents=True, exist_ok=True)
        self._check_or_write_options()
        self._resume()

    # ------------------------------------------------------------------------------------------ set-up

    def _initial_matrix(self) -> torch.Tensor:
        if self.options.start is None or (self.out / CHECKPOINT).is_file():  # a resumed run reads A from it
            rng = torch.Generator().manual_seed(self.options.seed)
            return orthonormalize(torch.randn(self.dim, self.count, generator=rng))
        if self.options.start is None:
            rng = torch.Generator().manual_seed(self.options.seed)
            return orthonormalize(torch.randn(self.dim, self.count, generator=rng))
        start = Directions.load(self.options.start)
        if start.method != "sdd" or start.generator != self.generator.name or start.space != self.space:
            raise FacesteerError(
                f"stage 2 starts from an SDD run of {self.generator.name} in {self.space.upper()}; "
                f"{self.options.start} is {start.method} of {start.generator} in {start.space.upper()}"
            )
        if len(start) != self.count:
            raise FacesteerError(f"{self.options.start} has {len(start)} directions, this run wants {self.count}")
        return torch.from_numpy(start.vectors.T.copy()).float()

    def _identity(self) -> dict[str, Any]:
        """What a resumed run must share with the checkpoint: everything but the length and the checkpoint
        interval (a finished run can be continued to more steps)."""
        options = {k: v for k, v in asdict(self.options).items() if k not in ("steps", "checkpoint_every")}
        return {**options, "directions": self.count, "generator": self.generator.config()}

    def _check_or_write_options(self) -> None:
        path = self.out / OPTIONS
        if path.is_file():
            try:
                recorded = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise FacesteerError(f"{path} is corrupt: {error}") from None
            if recorded != json.loads(json.dumps(self._identity())):
                raise FacesteerError(f"{self.out} holds a run with other options or generator; use a new `out`")
        else:
            write_json(path, self._identity())

    def _modules(self) -> dict[str, nn.Module]:
        return {"reconstructor": self.reconstructor} if self.reconstructor else {}

    def current(self) -> torch.Tensor:
        """A (d, K): the trained matrix, or the start turned by the trained rotation."""
        if self.reconstructor is not None:
            return self.matrix
        return torch.linalg.matrix_exp(self.rotation - self.rotation.T) @ self.base

    def save_checkpoint(self) -> None:
        tensors = state_tensors(self._modules(), {"optimizer": self.optimizer})
        if self.reconstructor is not None:
            tensors["matrix"] = self.matrix.detach().cpu().contiguous()
        else:
            tensors["rotation"] = self.rotation.detach().cpu().contiguous()
            tensors["base"] = self.base.detach().cpu().contiguous()
        write_checkpoint(self.out / CHECKPOINT, tensors, {"step": str(self.step), "seconds": str(self.seconds)})

    def _resume(self) -> None:
        if not (self.out / CHECKPOINT).is_file():
            return
        tensors, metadata = read_checkpoint(self.out / CHECKPOINT)
        expected = {"matrix": (self.dim, self.count)} if self.reconstructor else {
            "rotation": (self.dim, self.dim), "base": (self.dim, self.count)}  # fmt: skip
        for name, shape in expected.items():
            if tensors.get(name) is None or tuple(tensors[name].shape) != shape:
                raise FacesteerError(f"{self.out / CHECKPOINT} does not hold this run's {name} {shape}")
        try:
            with torch.no_grad():
                if self.reconstructor is not None:
                    self.matrix.copy_(tensors.pop("matrix"))
                else:
                    self.rotation.copy_(tensors.pop("rotation"))
                    self.base = tensors.pop("base").to(self.device)
            restore_state(tensors, self._modules(), {"optimizer": self.optimizer}, self.device)
            self.step, self.seconds = int(metadata["step"]), float(metadata["seconds"])
        except (KeyError, ValueError, RuntimeError) as error:
            raise FacesteerError(f"{self.out / CHECKPOINT} is not a checkpoint of this run: {error}") from None

    # ---------------------------------------------------------------------------------------- training

    def _codes(self, step: int) -> torch.Tensor:
        batch = self.options.batch_size
        z = self.generator.sample_z(batch, self.options.seed, start=step * batch)
        codes = self.generator.map(z, self.space)
        return torch.from_numpy(codes).to(self.device)

    def _penalty(self, codes: torch.Tensor, coefficients: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """The method's penalty of c -> G(w + A c) at the step's coefficients."""
        matrix = self.current()

        def image(c: torch.Tensor) -> torch.Tensor:
            repeats = len(c) // len(codes)
            return self.generator.synthesize_tensor(codes.repeat(repeats, 1) + c @ matrix.T, self.space)

        penalty = orojar_penalty if self.options.method == "dtj" else hessian_penalty
        return penalty(image, coefficients, k=self.options.penalty_draws, epsilon=self.options.penalty_epsilon,
                       reduction="mean", generator=rng)  # fmt: skip

    def train_step(self) -> dict[str, float]:
        """One optimisation step; in stage 1 (sdd, hdp) A's columns are then orthonormalised again."""
        options, rng = self.options, step_generator(self.options.seed, self.step)
        codes = self._codes(self.step)
        k, eps = sample_shifts(len(codes), self.count, options.shift_scale, options.min_shift, rng)
        k, eps = k.to(self.device), eps.to(self.device)
        stats: dict[str, float] = {}
        loss = torch.zeros((), device=self.device)
        if self.reconstructor is not None:
            with torch.no_grad():
                original = self.generator.synthesize_tensor(codes, self.space)
            shifted = self.generator.synthesize_tensor(codes + eps[:, None] * self.current().T[k], self.space)
            logits, predicted = self.reconstructor(torch.cat([original, shifted], dim=1))
            classification = F.cross_entropy(logits, k)
            regression = (predicted - eps).abs().mean()
            loss = classification + options.regression_weight * regression
            stats |= {"accuracy": float((logits.argmax(1) == k).float().mean()),
                      "classification": classification.item(), "regression": regression.item()}  # fmt: skip
        if options.method != "sdd":
            coefficients = F.one_hot(k, self.count).float() * eps[:, None]
            penalty = self._penalty(codes, coefficients, rng)
            weight = {"hdp": options.joint_penalty_weight, "shp": 1.0}.get(options.method, options.gamma)
            loss = loss + weight * penalty
            stats["penalty"] = penalty.item()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.reconstructor is not None:
            with torch.no_grad():
                self.matrix.copy_(orthonormalize(self.matrix))
        self.step += 1
        return stats | {"loss": loss.item()}

    def directions(self) -> Directions:
        """A's columns as a direction set (in the order of the matrix's columns)."""
        info = {
            "steps": self.step,
            "seconds": round(self.seconds, 1),
            "options": asdict(self.options),
            "generator_weights": weights_identity(self.generator.config()),
        }
        return Directions(self.current().detach().cpu().numpy().T, self.options.method, self.generator.name,
                          self.space, info=info)  # fmt: skip

    def train(self) -> Directions:
        """Train to ``options.steps``, checkpointing every ``checkpoint_every`` steps and at the end; writes
        ``OUT/directions.npy`` / ``.json`` and appends the mean losses of each interval to ``OUT/log.jsonl``."""
        options = self.options
        started, seconds_before = self.clock(), self.seconds
        running: dict[str, list[float]] = {}
        bar = tqdm(total=options.steps, initial=self.step, desc=f"discovery ({options.method})", unit="step",
                   disable=not self.progress)  # fmt: skip
        while self.step < options.steps:
            for key, value in self.train_step().items():
                running.setdefault(key, []).append(value)
            bar.update(1)
            bar.set_postfix(loss=f"{running['loss'][-1]:.3f}")
            if self.step % options.checkpoint_every == 0 or self.step == options.steps:
                self.seconds = seconds_before + self.clock() - started
                self.save_checkpoint()
                record = {"step": self.step, "seconds": round(self.seconds, 2)}
                record |= {k: float(np.mean(v)) for k, v in running.items()}
                with (self.out / "log.jsonl").open("a") as log:
                    log.write(json.dumps(record) + "\n")
                running = {}
        bar.close()
        directions = self.directions()
        directions.save(self.out)
        return directions
