"""Artifact correction: the realism classifier behind `quality`, its scorer, and moving codes with `fix`.

A tiny random StyleGAN2 and a folder of flat-colour "photos" exercise the plumbing (the classifier learns to
tell them apart at once); the shipped quality models' figures are in their cards and bench/RESULTS.md."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from facesteer.attributes import load_scorer
from facesteer.attributes.quality import QualityScorer, shipped_quality
from facesteer.boundaries import Boundary
from facesteer.editing import fix_codes
from facesteer.errors import FacesteerError
from facesteer.generators import load_generator
from facesteer.generators.stylegan2 import save_safetensors
from facesteer.generators.stylegan2_network import StyleGAN2Config, StyleGAN2Network
from facesteer.training.quality import train_quality

from .conftest import one_line_error


@pytest.fixture(scope="module")
def tiny_stylegan(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    network = StyleGAN2Network(StyleGAN2Config.small(16, channel_base=256, channel_max=16, z_dim=8, w_dim=8))
    return save_safetensors(network, tmp_path_factory.mktemp("gen") / "tiny.safetensors", half=False)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Sixty flat-colour pictures: nothing like the generator's samples."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(60):
        colour = rng.integers(0, 256, 3, dtype=np.uint8)
        Image.fromarray(np.broadcast_to(colour, (20, 20, 3)).copy()).save(folder / f"{i:03d}.png")
    return folder


def test_fix_moves_only_the_low_quality_codes():
    codes = np.array([[-2.0, 0.0], [0.5, 1.0], [3.0, -1.0]])
    moved, which = fix_codes(codes, np.array([1.0, 0.0]), alpha=2.0, below=1.0)
    assert which.tolist() == [True, True, False]
    np.testing.assert_allclose(moved, [[0.0, 0.0], [2.5, 1.0], [3.0, -1.0]])
    everything, which = fix_codes(codes, np.array([[2.0, 0.0]]), alpha=1.0)  # the direction is normalised
    assert which.all() and np.allclose(everything[:, 0], codes[:, 0] + 1)
    with pytest.raises(FacesteerError, match=">= 0"):
        fix_codes(codes, np.array([1.0, 0.0]), alpha=-1.0)


def test_realism_classifier_trains_and_scores_its_generator(tiny_stylegan, photos, tmp_path):
    generator = load_generator(str(tiny_stylegan))
    out = tmp_path / "quality-tiny.safetensors"
    card = train_quality(generator, photos, out, epochs=10, batch_size=16, seed=0, progress=False)
    assert card["generator"] == "tiny" and card["photos"] == {"train": 54, "held_out": 6}
    assert card["held_out_accuracy"] >= 0.9  # flat colours vs generated textures: trivially separable
    assert json.loads(out.with_suffix(".json").read_text()) == card and out.with_suffix(".md").is_file()

    scorer = QualityScorer(weights=out)
    assert scorer.generator == "tiny" and scorer.attributes == ("quality",)
    real = np.stack([np.asarray(Image.open(p).convert("RGB").resize((16, 16))) for p in sorted(photos.iterdir())])
    fake = generator.synthesize(generator.sample_z(20, seed=9))
    assert scorer.score(real).shape == (60, 1) and scorer.score(real).mean() > scorer.score(fake).mean()
    with pytest.raises(FacesteerError, match="judges samples of tiny, not of other"):
        QualityScorer("other", weights=out)
    train_quality(generator, photos, tmp_path / "again.safetensors", epochs=10, batch_size=16, seed=0, progress=False)
    again, first = load_file(str(tmp_path / "again.safetensors")), load_file(str(out))
    assert again.keys() == first.keys() and all(torch.equal(again[k], first[k]) for k in first)  # seeded


def test_quality_scorer_needs_a_model_for_the_generator():
    assert shipped_quality() == ["stylegan2-anime64", "stylegan2-utkface64"]
    with pytest.raises(FacesteerError, match="no quality model for dcgan-digiface64"):
        load_scorer("quality", generator="dcgan-digiface64")


def test_fix_cli_writes_before_and_after(tiny_stylegan, run, tmp_path):
    boundary = tmp_path / "quality.npy"
    Boundary(np.eye(1, 8, 0, dtype=np.float32), "quality", space="z").save(boundary)
    common = ["fix", "--generator", str(tiny_stylegan), "--boundary", str(boundary), "--num", "4"]
    result = run(*common, "--alpha", "2", "--below", "0", "--out", str(tmp_path / "fix.png"))
    assert result.returncode == 0, result.stderr
    z = load_generator(str(tiny_stylegan)).sample_z(4, seed=0)
    assert f"{int((z[:, 0] < 0).sum())} of 4 faces moved" in " ".join(result.stdout.split())
    assert Image.open(tmp_path / "fix.png").size == (2 + 4 * 18, 2 * (2 + 18) + 6)
    one_line_error(run(*common, "--alpha", "-1", "--out", str(tmp_path / "x.png")), "--alpha")
    Boundary(np.eye(1, 8, 0, dtype=np.float32), "quality", space="w").save(tmp_path / "w.npy")
    result = run("fix", "--boundary", str(tmp_path / "w.npy"), "--out", str(tmp_path / "y.png"))  # default DCGAN
    one_line_error(result, "has no 'w' space")


@pytest.mark.slow
def test_evaluate_fix_on_a_shipped_generator(run, tmp_path):
    """The measurement behind the README's artifact-correction table, on a few faces (Inception is slow on CPU)."""
    from .conftest import UTKFACE

    if not UTKFACE.is_dir():
        pytest.skip(f"UTKFace photos not found at {UTKFACE}")
    generator = load_generator("stylegan2-utkface64")
    boundary = tmp_path / "quality.npy"
    normal = np.eye(1, generator.z_dim, 0, dtype=np.float32)  # the plumbing, not a trained boundary
    Boundary(normal, "quality", space="z", generator="stylegan2-utkface64").save(boundary)
    result = run("evaluate-fix", "--generator", "stylegan2-utkface64", "--boundary", str(boundary), "--data",
                 str(UTKFACE), "--reference-num", "100", "--num", "40", "--identity-num", "8", "--workers", "1",
                 "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert [row["alpha"] for row in rows] == [0.0, 1.0, 2.0, 3.0]
    assert all(row["fid"] > 0 and 0 <= row["faces_found"] <= 1 for row in rows)
    assert "identity_kept" not in rows[0] and all(row["identity_faces"] <= 8 for row in rows[1:])
