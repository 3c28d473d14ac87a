"""Distilling the teachers into the predictor: data, training loop, and agreement metrics.

Training data are LatentDatasets sampled with the ``teachers`` scorer: the images are synthesized again from the
stored codes (same generator, same bytes), the teachers' scores are the targets, and a NaN row (no face found)
is a negative for the face output. Mirrored copies (with pose negated) are used as augmentation for pose,
smile, eyeglasses and the face output: mirroring flips yaw and leaves those alone. Age and gender learn from
un-mirrored faces only, because the teachers' age and gender are not mirror-symmetric on 64-px faces.

A predictor is distilled for one generator (all its runs must come from it) and is for that generator only: the
model card and the weights' metadata name it, and ``PredictorScorer.generator`` reads it back.
:func:`train_predictor` is the whole ``facesteer train-predictor`` command: data, training, evaluation, card.
"""

from __future__ import annotations

import math
import os
import platform
import shlex
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from facesteer.attributes.predictor import (
    ATTRIBUTES,
    DEFAULT_PREDICTOR_GENERATOR,
    GENERATOR_KEY,
    TARGET_SCALE,
    AttributeNet,
    decode_outputs,
    generator_id,
    images_to_tensor,
)
from facesteer.errors import FacesteerError
from facesteer.files import atomic_path, write_json, write_safetensors
from facesteer.generators import load_generator_for
from facesteer.latents import LatentDataset
from facesteer.stats import auroc


def load_teacher_runs(runs: list[str | os.PathLike[str]], progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 64, 64, 3) uint8 and teacher scores (N, 5) float32 of the given teacher-scored runs."""
    images, scores = [], []
    for run in runs:
        dataset = LatentDataset(run)
        if dataset.manifest["scorer"] is None or dataset.manifest["scorer"]["name"] != "teachers":
            raise FacesteerError(f"{run} was not scored by the teachers; sample it with --scorer teachers")
        if dataset.attributes != list(ATTRIBUTES):
            raise FacesteerError(f"{run} has attributes {dataset.attributes}, expected {list(ATTRIBUTES)}")
        generator = load_generator_for(dataset.manifest["generator"])
        if generator.resolution != 64:
            raise FacesteerError(f"the predictor takes 64x64 faces; {generator.name} makes {generator.resolution}")
        codes = dataset.codes("z")
        batch = 1024
        for lo in tqdm(range(0, len(codes), batch), desc=f"synthesizing {Path(run).name}", disable=not progress):
            images.append(generator.synthesize(np.asarray(codes[lo : lo + batch])))
        scores.append(np.asarray(dataset.scores()))
    return np.concatenate(images), np.concatenate(scores).astype(np.float32)


def runs_generator(
    runs: list[str | os.PathLike[str]], generator: str | None = None, eval_run: str | os.PathLike[str] | None = None
) -> str:
    """The generator (:func:`~facesteer.attributes.predictor.generator_id`) that all the training runs and the
    evaluation run were sampled with, which a predictor trained on them is for.

    Args:
        runs: the training runs (their manifests name their generator).
        generator: the generator asked for (a registered name or a checkpoint path); default: the runs' own.
        eval_run: the held-out run, which must come from the same generator.

    Raises:
        FacesteerError: the runs come from different generators, or from another one than ``generator``.
    """
    if not runs:
        raise FacesteerError("give at least one teacher-scored run to learn from (`data`)")
    found = {str(run): generator_id(LatentDataset(run).manifest["generator"]) for run in runs}
    names = sorted(set(found.values()))
    if len(names) > 1:
        listing = "; ".join(f"{run}: {name}" for run, name in found.items())
        raise FacesteerError(
            f"the `data` runs were sampled with different generators ({listing}); a predictor is distilled for "
            "one generator: give runs of one generator"
        )
    wanted = generator_id(generator) if generator is not None else names[0]
    if eval_run is not None:
        found[str(eval_run)] = generator_id(LatentDataset(eval_run).manifest["generator"])
    for run, name in found.items():
        if name != wanted:
            raise FacesteerError(
                f"{run} was sampled with generator {name}, not {wanted}; a predictor for {wanted} learns from and "
                f"is evaluated on runs of {wanted} only (sample them with --generator {wanted} --scorer teachers)"
            )
    return wanted


def _targets(scores: torch.Tensor) -> dict[str, torch.Tensor]:
    face = ~torch.isnan(scores).any(dim=1)
    filled = torch.nan_to_num(scores)
    return {
        "face": face.float(),
        "pose": (filled[:, 0] - TARGET_SCALE["pose"][0]) / TARGET_SCALE["pose"][1],
        "smile": filled[:, 1].clamp(0, 1),
        "age": (filled[:, 2] - TARGET_SCALE["age"][0]) / TARGET_SCALE["age"][1],
        "gender": filled[:, 3].clamp(0, 1),
        "eyeglasses": filled[:, 4].clamp(0, 1),
    }


#: attributes whose teacher is not mirror-symmetric on 64-px faces (a face and its mirror get different ages,
#: r = 0.78, bench/teacher_repeatability.py): the student learns them from un-mirrored faces only, so it copies
#: the teacher, asymmetry included
MIRROR_VARIANT = ("age", "gender")


def distillation_loss(raw: torch.Tensor, scores: torch.Tensor, mirrored: torch.Tensor | None = None) -> torch.Tensor:
    """Face BCE on every row, plus the five attribute losses on the rows where the teachers found a face:
    mean squared error for standardised pose and age, BCE with the teachers' soft targets for the rest.
    Age and gender use only the rows that were not mirrored (``mirrored``: (N,) bool, None = none were)."""
    target = _targets(scores)
    loss = F.binary_cross_entropy_with_logits(raw[:, 5], target["face"])
    face = target["face"] > 0
    upright = face if mirrored is None else face & ~mirrored
    losses = {
        "pose": (0, face, "mse"),
        "smile": (1, face, "bce"),
        "age": (2, upright, "mse"),
        "gender": (3, upright, "bce"),
        "eyeglasses": (4, face, "bce"),
    }
    for name, (column, rows, kind) in losses.items():
        if rows.any():
            if kind == "mse":
                loss = loss + F.mse_loss(raw[rows, column], target[name][rows])
            else:
                loss = loss + F.binary_cross_entropy_with_logits(raw[rows, column], target[name][rows])
    return loss


def train_network(
    images: np.ndarray,
    scores: np.ndarray,
    epochs: int = 8,
    batch_size: int = 256,
    learning_rate: float = 3e-3,
    seed: int = 0,
    progress: bool = True,
) -> tuple[AttributeNet, dict[str, Any]]:
    """Train an AttributeNet on (images, teacher scores) with AdamW and a cosine learning-rate schedule.

    Deterministic for a given seed (and thread count): the initial weights, the order of batches and the
    mirror augmentation all come from ``torch.Generator`` objects seeded by ``seed``.
    """
    torch.manual_seed(seed)
    network = AttributeNet()
    order_rng = torch.Generator().manual_seed(seed + 1)
    optimizer = torch.optim.AdamW(network.parameters(), lr=learning_rate, weight_decay=1e-4)
    steps = epochs * math.ceil(len(images) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=steps, pct_start=0.1)
    all_scores = torch.from_numpy(scores)
    history, started = [], time.perf_counter()
    bar = tqdm(total=steps, desc="training predictor", unit="batch", disable=not progress)
    network.train()
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=order_rng)
        total = 0.0
        for lo in range(0, len(images), batch_size):
            index = order[lo : lo + batch_size]
            x = images_to_tensor(images[index.numpy()])
            y = all_scores[index].clone()
            mirror = torch.rand(len(index), generator=order_rng) < 0.5
            x[mirror] = x[mirror].flip(dims=(3,))
            y[mirror, 0] = -y[mirror, 0]
            loss = distillation_loss(network(x), y, mirror)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(index)
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
        history.append(total / len(images))
    bar.close()
    network.eval()
    return network, {
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "train_images": len(images),
        "loss_per_epoch": history,
        "seconds": time.perf_counter() - started,
        "threads": torch.get_num_threads(),
    }


@torch.inference_mode()
def predict(network: AttributeNet, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Scores (N, 5) of images (N, 64, 64, 3) uint8 from a network, NaN where it predicts no face."""
    network.eval()
    return np.concatenate(
        [
            decode_outputs(network(images_to_tensor(images[i : i + batch_size])))
            for i in range(0, len(images), batch_size)
        ]
    )


def agreement(teacher: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """How well predicted scores agree with the teachers' on the same images (both (N, 5), NaN = no face).

    AUROC of the predictor's value against the teacher's binary call (gender >= 0.5, eyeglasses >= 0.5,
    smile > 0.5, pose > 0), Pearson r for yaw and age, and the face-found agreement rate; the attribute
    metrics use the rows where both found a face.
    """
    teacher_face = ~np.isnan(teacher).any(axis=1)
    predicted_face = ~np.isnan(predicted).any(axis=1)
    both = teacher_face & predicted_face
    t, p = teacher[both], predicted[both]
    return {
        "images": len(teacher),
        "both_found": int(both.sum()),
        "face_found_agreement": float(np.mean(teacher_face == predicted_face)),
        "gender_auroc": auroc(t[:, 3] >= 0.5, p[:, 3]),
        "eyeglasses_auroc": auroc(t[:, 4] >= 0.5, p[:, 4]),
        "smile_auroc": auroc(t[:, 1] > 0.5, p[:, 1]),
        "pose_sign_auroc": auroc(t[:, 0] > 0, p[:, 0]),
        "pose_pearson": float(np.corrcoef(t[:, 0], p[:, 0])[0, 1]),
        "age_pearson": float(np.corrcoef(t[:, 2], p[:, 2])[0, 1]),
    }


def save_predictor(network: AttributeNet, path: str | os.PathLike[str], card: dict[str, Any]) -> Path:
    """Write the weights as fp16 safetensors and a model card (``.md``) and its data (``.json``) beside them.

    The card's ``"generator"`` (the generator whose faces the predictor was distilled on; ``dcgan-digiface64``
    where the card names none) goes into the card and into the weights file's metadata, so the weights name their
    generator even without the card.
    """

    path = Path(path)
    if GENERATOR_KEY not in card:
        card = {**card, GENERATOR_KEY: DEFAULT_PREDICTOR_GENERATOR}
    state = {
        k: v.detach().to(torch.float16).contiguous()
        for k, v in network.state_dict().items()
        if v.dtype.is_floating_point
    }
    state |= {k: v.detach().contiguous() for k, v in network.state_dict().items() if not v.dtype.is_floating_point}
    write_safetensors(path, state, {GENERATOR_KEY: str(card[GENERATOR_KEY])})
    write_json(path.with_suffix(".json"), card)
    with atomic_path(path.with_suffix(".md")) as temporary:
        temporary.write_text(model_card_markdown(card))
    return path


#: the agreement each metric must reach (issue 4); the model card marks which are met
AGREEMENT_GOALS = {
    "gender_auroc": ("gender AUROC (teacher >= 0.5)", 0.95),
    "eyeglasses_auroc": ("eyeglasses AUROC (teacher >= 0.5)", 0.95),
    "smile_auroc": ("smile AUROC (teacher > 0.5)", 0.95),
    "pose_sign_auroc": ("pose sign AUROC", 0.95),
    "pose_pearson": ("yaw Pearson r", 0.9),
    "age_pearson": ("age Pearson r", 0.85),
    "face_found_agreement": ("face-found agreement", 0.95),
}


def run_details(runs: list[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """Name, seed and size of each teacher-scored run (for the model card). The size is the rows written so far,
    the rows training reads: a run still being sampled counts only its complete rows."""
    details = []
    for run in runs:
        dataset = LatentDataset(run)
        details.append({"run": str(run), "seed": dataset.manifest["seed"], "num": dataset.rows_complete})
    return details


def model_card_markdown(card: dict[str, Any]) -> str:
    """The model card: generator, data, command, duration, held-out agreement with the teachers and what falls
    short. A card without ``"generator"`` is for ``dcgan-digiface64`` (all cards written before the field were)."""
    training = card["training"]
    generator = card.get(GENERATOR_KEY, DEFAULT_PREDICTOR_GENERATOR)
    runs = card.get("train_run_details") or [{"run": run} for run in card["train_runs"]]
    run_lines = [
        f"- `{item['run']}`: " + (f"{item['num']:,} faces, seed {item['seed']}" if "num" in item else "(no manifest)")
        for item in runs
    ]
    lines = [
        "# facesteer attribute predictor (`predictor`)",
        "",
        "A multi-task CNN (`facesteer.attributes.predictor.AttributeNet`, "
        f"{card['parameters']:,} parameters, fp16 safetensors) that predicts the teachers' pose, smile, age, "
        f"gender and eyeglasses, and whether they find a face, from a 64x64 face of `{generator}`.",
        "",
        f"For generator: `{generator}` only. It has seen no other faces, so on others (real photos, other "
        "generators) its scores may be meaningless: `facesteer sample --scorer predictor` refuses other "
        "generators (`--force` scores anyway, with a warning). For another generator use `--scorer teachers`, or "
        "distil a predictor for it with `facesteer train-predictor --generator NAME` from teacher-scored runs of "
        "that generator.",
        "",
        "## Data",
        "",
        f"Training: {training['train_images']:,} faces of `{generator}` labelled by the `teachers` scorer, "
        "each also seen mirrored with its pose negated; age and gender learn from the un-mirrored faces only (the "
        "teachers' age and gender are not mirror-symmetric). Each run is a dataset sampled with the teachers as "
        "scorer (`facesteer sample --scorer teachers`; its manifest.json keeps the seed and size):",
        "",
        *run_lines,
        "",
        "## Command",
        "",
        f"```\n{card['command']}\n```",
        "",
        f"{training['epochs']} epochs, batch {training['batch_size']}, AdamW (one-cycle, peak lr "
        f"{training['learning_rate']}), seed {training['seed']}; {training['seconds'] / 60:.1f} min on "
        f"{card['hardware']} ({training['threads']} threads). Training loss per epoch: "
        + ", ".join(f"{loss:.3f}" for loss in training.get("loss_per_epoch", []))
        + ".",
        "",
        "Speed: `python bench/scorer.py` times it against the teachers (figures in bench/RESULTS.md).",
        "",
    ]
    if card.get("evaluation"):
        metrics = card["evaluation"]
        lines += [
            "## Agreement with the teachers on held-out faces",
            "",
            f"{metrics['images']:,} faces never used in training (run {card['evaluation_run']}); the attribute "
            f"metrics use the {metrics['both_found']:,} where both found a face.",
            "",
            "| metric | value | goal | met |",
            "|---|---|---|---|",
        ]
        short = []
        for key, (label, goal) in AGREEMENT_GOALS.items():
            met = metrics[key] >= goal
            lines.append(f"| {label} | {metrics[key]:.3f} | >= {goal} | {'yes' if met else 'no'} |")
            if not met:
                short.append(f"{label} {metrics[key]:.3f} (goal {goal})")
        lines += ["", f"Short of the goals: {'; '.join(short)}." if short else "All goals met.", ""]
    lines += [
        "Limits: trained only on this generator's faces; on other faces (real photos, other GANs) it is "
        "not validated. Its scores imitate the teachers, errors included.",
        "",
    ]
    return "\n".join(lines)


def train_predictor(
    data_runs: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    eval_run: str | os.PathLike[str] | None = None,
    epochs: int = 8,
    batch_size: int = 256,
    learning_rate: float = 3e-3,
    seed: int = 0,
    generator: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Distil the teachers into a predictor for one generator and write its weights and model card
    (``facesteer train-predictor``).

    Args:
        data_runs: teacher-scored runs to learn from, all sampled with one generator.
        out: the weights file (``.safetensors``); the card goes beside it (``.json``, ``.md``).
        eval_run: a held-out teacher-scored run of the same generator, for the card's agreement table.
        epochs, batch_size, learning_rate, seed: see :func:`train_network`.
        generator: the generator the predictor is for (registered name or checkpoint path); default: the one
            the runs were sampled with. Runs of another generator are refused.
        progress: show progress bars.

    Returns:
        The model card (as written to the ``.json``).
    """
    out = Path(out)
    if out.suffix != ".safetensors":
        raise FacesteerError(f"`out` must end in .safetensors, got {out}")
    made_for = runs_generator(data_runs, generator, eval_run)
    images, scores = load_teacher_runs(data_runs, progress)
    network, training = train_network(images, scores, epochs, batch_size, learning_rate, seed, progress)
    card: dict[str, Any] = {
        "parameters": sum(p.numel() for p in network.parameters()),
        GENERATOR_KEY: made_for,
        "train_runs": [str(d) for d in data_runs],
        "train_run_details": run_details(data_runs),
        "command": "facesteer train-predictor "
        + shlex.join(
            [arg for d in data_runs for arg in ("--data", str(d))]
            + ["--generator", made_for]
            + (["--eval", str(eval_run)] if eval_run is not None else [])
            + ["--epochs", str(epochs), "--batch-size", str(batch_size), "--lr", str(learning_rate)]
            + ["--seed", str(seed), "--out", str(out)]
        ),
        "hardware": f"{platform.machine()} CPU, torch {torch.__version__}",
        "training": training,
    }
    if eval_run is not None:
        held_images, held_scores = load_teacher_runs([eval_run], progress)
        card["evaluation_run"] = str(eval_run)
        card["evaluation"] = agreement(held_scores, predict(network, held_images))
    save_predictor(network, out, card)
    return card
