"""Train the inversion encoder (:mod:`facesteer.inversion.encoder`), resumably.

Each step draws ``batch_size`` codes (from (seed, step): a resumed run draws what an uninterrupted one would),
synthesizes their images, and encodes them. The loss, per picture:

- latent: squared error of the codes relative to the space's total variance (generated pairs only: their code
  is known);
- pixel: mean squared error of G(E(x)) and x;
- perceptual: LPIPS-VGG of G(E(x)) and x;
- realism: minus the ``quality`` logit of G(E(x)) (the realism classifier stands in for NFE's discriminator
  term, which needs a discriminator: facesteer ships none), where the generator has a quality model;
- prior: the latent prior's penalty of E(x).

The first ``latent_steps`` steps use the latent loss alone (cheap: no backward pass through the generator);
after that every term, and, with ``data``, each batch also holds ``real_per_step`` of the generator's training
photos, which have no code and so only the image and prior terms.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from facesteer.attributes.quality import QualityScorer, quality_weights
from facesteer.datasets import list_images, load_images
from facesteer.errors import FacesteerError
from facesteer.files import check_out_folder, write_json
from facesteer.generators.base import Generator, weights_identity
from facesteer.generators.ops import uint8_to_unit
from facesteer.inversion.encoder import Encoder, save_encoder
from facesteer.inversion.prior import LatentPrior
from facesteer.perceptual import load_lpips
from facesteer.resumable import read_checkpoint, restore_state, state_tensors, write_checkpoint


@dataclass(frozen=True)
class EncoderOptions:
    """What a training run is; ``steps`` and ``checkpoint_every`` may change when a run is resumed."""

    steps: int = 2000
    latent_steps: int = 1000
    batch_size: int = 16
    real_per_step: int = 8
    learning_rate: float = 1e-3
    latent: float = 1.0
    pixel: float = 1.0
    perceptual: float = 1.0
    realism: float = 0.01
    prior: float = 0.01
    seed: int = 0
    checkpoint_every: int = 100

    def identity(self) -> dict[str, Any]:
        """What must match for a run to be resumed."""
        return {k: v for k, v in asdict(self).items() if k not in ("steps", "checkpoint_every")}


def _step_codes(generator: Generator, options: EncoderOptions, step: int) -> np.ndarray:
    return generator.sample_z(options.batch_size, options.seed, start=step * options.batch_size)


def _real_batch(photos: np.ndarray, options: EncoderOptions, step: int) -> np.ndarray:
    rng = np.random.default_rng([options.seed, step, 1])
    return photos[rng.choice(len(photos), size=options.real_per_step, replace=False)]


def _truncate_log(path: Path, step: int) -> None:
    """Keep the log lines of steps up to ``step`` (those a checkpoint holds)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut short by a kill
    path.write_text("".join(line + "\n" for line in kept))


def train_encoder(
    generator: Generator,
    out: str | os.PathLike[str],
    options: EncoderOptions,
    data: str | os.PathLike[str] | None = None,
    real_limit: int = 5000,
    progress: bool = True,
) -> Path:
    """Train (or resume) an encoder of ``generator`` in folder ``out``; returns the weights file.

    ``out`` holds ``checkpoint.safetensors`` (encoder, Adam, step), ``options.json``, ``log.jsonl`` and, at the
    end, ``encoder.safetensors`` (the shippable weights with their card).
    """
    out = Path(out)
    options_file, checkpoint_file, log_file = out / "options.json", out / "checkpoint.safetensors", out / "log.jsonl"
    wanted = {**options.identity(), "generator": generator.name, "data": str(data) if data else None}
    check_out_folder(out)
    if options_file.is_file():
        try:
            recorded = json.loads(options_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise FacesteerError(f"{options_file} is corrupt: remove the folder or choose another `out`") from None
        if recorded != wanted:
            raise FacesteerError(f"{out} holds another training run (options differ): choose another `out`")
    photos = None
    if data is not None:  # read (and refused) before anything is written
        paths = list_images(data)[:real_limit]
        photos = load_images(paths, generator.resolution, progress=progress, desc="reading photos")
        if len(photos) < options.real_per_step:
            raise FacesteerError(f"{data} holds {len(photos)} photos, fewer than `real_per_step`")

    torch.manual_seed(options.seed)
    space = generator.edit_space
    code_dim = generator.space_shape(space)[0]
    prior = LatentPrior.fit(generator, space)
    # the latent error is measured in the space itself, relative to its total variance (1 = predicting the mean):
    # whitened, W's ~80 near-constant directions (variances down to 1e-3 of the largest, invisible in the image)
    # would weigh as much as the ones that draw the face, and the loss stays at ~1 while the face is learnt
    total_variance = prior.cholesky.square().sum()
    encoder = Encoder(generator.resolution, code_dim)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=options.learning_rate)
    step = 0
    if checkpoint_file.is_file():
        tensors, metadata = read_checkpoint(checkpoint_file)
        restore_state(tensors, {"encoder": encoder}, {"adam": optimizer})
        step = int(metadata["step"])
        if step > options.steps:
            raise FacesteerError(f"{out} has trained {step} steps already, more than `steps` {options.steps}: give "
                                 f"`steps` {step} or more, or choose another `out`")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    write_json(options_file, wanted)
    _truncate_log(log_file, step)  # steps logged after the last checkpoint are run again

    lpips = load_lpips() if options.perceptual > 0 else None
    realism = None
    if options.realism > 0 and quality_weights(generator.name).is_file():
        realism = QualityScorer(generator.name).network

    started = time.perf_counter()
    bar = tqdm(total=options.steps, initial=step, desc="encoder", unit="step", disable=not progress)
    with log_file.open("a") as log:
        while step < options.steps:
            z = torch.from_numpy(_step_codes(generator, options, step))
            with torch.no_grad():
                codes = z if space == "z" else generator.mapping(z)
                targets = generator.synthesize_tensor(codes, space)
            encoder.train()
            predicted = encoder(targets)
            terms = {"latent": (prior.unwhiten(predicted) - codes).square().sum(dim=1) / total_variance}
            image_phase = step >= options.latent_steps
            if image_phase:
                inputs, whitened = targets, predicted
                if photos is not None:
                    real = uint8_to_unit(_real_batch(photos, options, step))
                    inputs, whitened = torch.cat([targets, real]), torch.cat([predicted, encoder(real)])
                decoded = prior.unwhiten(whitened)
                images = generator.synthesize_tensor(decoded, space)
                terms["pixel"] = (images - inputs).square().flatten(1).mean(dim=1)
                if lpips is not None:
                    terms["perceptual"] = lpips(images, inputs)
                if realism is not None:
                    terms["realism"] = -realism(images)
                terms["prior"] = prior.penalty(decoded)
            loss = sum(getattr(options, name) * value.mean() for name, value in terms.items())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            record = {"step": step, **{name: round(float(value.detach().mean()), 5) for name, value in terms.items()}}
            log.write(json.dumps(record) + "\n")
            bar.update(1)
            bar.set_postfix(latent=record["latent"], pixel=record.get("pixel", "-"))
            if step % options.checkpoint_every == 0 or step == options.steps:
                log.flush()
                write_checkpoint(checkpoint_file, state_tensors({"encoder": encoder}, {"adam": optimizer}),
                                 {"step": str(step)})  # fmt: skip
    bar.close()
    # the card holds only what defines the run, so the same run writes the same bytes (times go to time.json)
    write_json(out / "time.json", {"seconds_last_session": round(time.perf_counter() - started, 1), "step": step})
    card = {
        "generator": generator.name,
        "generator_weights": weights_identity(generator.config()),
        "space": space,
        "steps": options.steps,
        "options": options.identity(),
        "data": str(data) if data and options.steps > options.latent_steps else None,  # photos used by these weights
        "command": f"facesteer train-encoder --generator {generator.name} --steps {options.steps} "
        f"--latent-steps {options.latent_steps} --batch-size {options.batch_size} "
        f"--real-per-step {options.real_per_step} --lr {options.learning_rate:g} --seed {options.seed}"
        + (f" --data {data}" if data else ""),
    }
    return save_encoder(out / "encoder.safetensors", encoder.eval(), prior, card)
