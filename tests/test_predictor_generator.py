"""The predictor is distilled on the faces of one generator and refuses the others (unless forced); its model card
names that generator, and `train-predictor --generator` makes one for another generator.

A tiny random StyleGAN2 at 64x64 (the predictor's input size) with a few channels stands for "another
generator", and a deterministic fake scorer that calls itself ``teachers`` labels the training runs, so these
tests need no teacher model files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from facesteer.attributes.predictor import (
    DEFAULT_PREDICTOR_GENERATOR,
    PredictorScorer,
    check_scorer_fits,
    packaged_weights,
)
from facesteer.errors import FacesteerError
from facesteer.generators import load_generator
from facesteer.generators.stylegan2 import save_safetensors
from facesteer.generators.stylegan2_network import StyleGAN2Config, StyleGAN2Network
from facesteer.latents import LatentDataset, sample_dataset
from facesteer.training.distill import model_card_markdown

from .conftest import one_line_error


class FakeTeachers:
    """A deterministic stand-in for the teachers: plausible scores from the image colours, NaN for every 5th."""

    name = "teachers"
    attributes = ("pose", "smile", "age", "gender", "eyeglasses")

    def score(self, images: np.ndarray) -> np.ndarray:
        mean = images.reshape(len(images), -1, 3).mean(axis=1) / 255
        scores = np.column_stack(
            [(mean[:, 0] - 0.5) * 60, mean[:, 1], 20 + 40 * mean[:, 2], mean[:, 0], 1 - mean[:, 1]]
        ).astype(np.float32)
        scores[images[:, 0, 0, 0] % 5 == 0] = np.nan
        return scores

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "fake": True}

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def tiny64(tmp_path_factory) -> Path:
    """A random StyleGAN2 file making 64x64 faces, with very few channels (fast on a CPU)."""
    torch.manual_seed(0)
    config = StyleGAN2Config.small(64, channel_base=128, channel_max=8, z_dim=8, w_dim=8, mapping_layers=2)
    return save_safetensors(StyleGAN2Network(config), tmp_path_factory.mktemp("gen") / "tiny64.safetensors", half=False)


@pytest.fixture(scope="module")
def tiny_run(tiny64, tmp_path_factory) -> Path:
    """A 'teacher'-scored run of the tiny generator."""
    folder = tmp_path_factory.mktemp("runs") / "tiny-teach"
    sample_dataset(load_generator(str(tiny64)), FakeTeachers(), folder, num=64, seed=1, progress=False)
    return folder


def test_sample_with_the_predictor_refuses_another_generator(run, tiny64, tmp_path):
    out = tmp_path / "run"
    result = run("sample", "--num", "4", "--scorer", "predictor", "--generator", str(tiny64), "--out", str(out), "-q")
    one_line_error(result, "dcgan-digiface64", "--scorer teachers", "train-predictor --generator", "--force")
    assert not out.exists()  # refused before anything was written


def test_force_samples_another_generator_with_a_warning(run, tiny64, tmp_path):
    out = tmp_path / "run"
    args = ("sample", "--num", "4", "--scorer", "predictor", "--generator", str(tiny64), "--out", str(out), "-q")
    result = run(*args, "--force")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("facesteer: warning:")]
    assert len(warnings) == 1 and "dcgan-digiface64" in warnings[0] and "meaningless" in warnings[0], result.stderr
    dataset = LatentDataset(out)
    assert dataset.rows_complete == 4 and dataset.manifest["scorer"]["name"] == "predictor"


def test_the_rule_lives_in_the_library(tiny64, generator, tmp_path):
    other, predictor = load_generator(str(tiny64)), PredictorScorer()
    with pytest.raises(FacesteerError, match="dcgan-digiface64"):
        sample_dataset(other, predictor, tmp_path / "refused", num=2, progress=False)
    assert not (tmp_path / "refused").exists()
    with pytest.raises(FacesteerError, match="dcgan-digiface64"):
        check_scorer_fits(other.config(), predictor)  # a manifest's generator entry works too (evaluate)
    assert "meaningless" in check_scorer_fits(other, predictor, force=True)
    assert check_scorer_fits(generator, predictor) is None
    assert check_scorer_fits(other, FakeTeachers()) is None  # only the predictor is for one generator
    assert check_scorer_fits(other, None) is None


def test_sample_with_the_predictor_and_its_generator_works(run, tmp_path):
    result = run("sample", "--num", "3", "--scorer", "predictor", "--out", str(tmp_path / "run"), "-q")
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stderr


def test_the_shipped_card_names_its_generator():
    card = json.loads(packaged_weights().with_suffix(".json").read_text())
    assert card["generator"] == "dcgan-digiface64" == DEFAULT_PREDICTOR_GENERATOR
    markdown = packaged_weights().with_suffix(".md").read_text()
    assert markdown == model_card_markdown(card)  # the .md is rendered from the .json
    assert "For generator: `dcgan-digiface64`" in markdown
    assert PredictorScorer().generator == "dcgan-digiface64"


def test_weights_without_a_named_generator_are_for_the_default_one(tmp_path):
    from safetensors.torch import load_file, save_file

    save_file(load_file(str(packaged_weights())), str(tmp_path / "old.safetensors"))  # no metadata, no card
    assert PredictorScorer(tmp_path / "old.safetensors").generator == "dcgan-digiface64"


def test_train_predictor_refuses_runs_of_different_generators(run, tiny_run, generator, tmp_path):
    dcgan_run = tmp_path / "dcgan-teach"
    sample_dataset(generator, FakeTeachers(), dcgan_run, num=8, progress=False)
    out = str(tmp_path / "p.safetensors")
    one_line_error(
        run("train-predictor", "--data", str(dcgan_run), "--data", str(tiny_run), "--out", out),
        "different generators",
        "dcgan-digiface64",
    )
    one_line_error(
        run("train-predictor", "--data", str(tiny_run), "--generator", "dcgan-digiface64", "--out", out),
        str(tiny_run),
        "dcgan-digiface64",
    )
    one_line_error(
        run("train-predictor", "--data", str(dcgan_run), "--eval", str(tiny_run), "--out", out), str(tiny_run)
    )
    assert not (tmp_path / "p.safetensors").exists()


def test_a_predictor_trained_for_another_generator_is_for_that_generator(run, tiny64, tiny_run, tmp_path):
    out = tmp_path / "p.safetensors"
    tiny_name = str(tiny64.resolve())
    result = run(
        "train-predictor", "--data", str(tiny_run), "--generator", str(tiny64), "--epochs", "1",
        "--batch-size", "32", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["generator"] == tiny_name
    assert f"For generator: `{tiny_name}`" in out.with_suffix(".md").read_text()
    assert f"--generator {tiny_name}" in card["command"]
    scorer = PredictorScorer(out)
    assert scorer.generator == tiny_name
    out.with_suffix(".json").unlink()  # the generator is also in the weights file's own metadata
    assert PredictorScorer(out).generator == tiny_name

    other = load_generator(str(tiny64))
    assert check_scorer_fits(other, scorer) is None
    dataset = sample_dataset(other, scorer, tmp_path / "scored", num=4, progress=False)
    assert dataset.scores().shape == (4, 5)
    args = ("sample", "--num", "4", "--scorer", "predictor", "--predictor-weights", str(out), "-q")
    result = run(*args, "--generator", str(tiny64), "--out", str(tmp_path / "cli"))
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr
    one_line_error(run(*args, "--out", str(tmp_path / "refused")), tiny_name, "dcgan-digiface64")


def test_train_predictor_defaults_to_the_generator_of_its_runs(run, tiny64, tiny_run, tmp_path):
    out = tmp_path / "p.safetensors"
    result = run("train-predictor", "--data", str(tiny_run), "--epochs", "1", "--batch-size", "64", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert PredictorScorer(out).generator == str(tiny64.resolve())
