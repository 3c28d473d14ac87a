"""The StyleGAN2s facesteer trained and ships: registered, cards complete, deterministic, and making faces."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facesteer.generators import load_generator, registry
from facesteer.shipped import WEIGHTS_DIR

from .conftest import requires_models

SHIPPED = ["stylegan2-anime64", "stylegan2-utkface64"]


@pytest.mark.parametrize("name", SHIPPED)
def test_registered_with_a_complete_card(name):
    assert name in registry()
    card = json.loads((WEIGHTS_DIR / f"{name}.json").read_text())
    assert card["name"] == name and card["options"]["resolution"] == 64
    assert card["fid"] > 0 and card["fid_num"] >= 2000 and card["fid_reference_images"] >= 2000
    assert card["kimg"] > 0 and card["seconds"] > 0 and card["hardware"]
    assert (WEIGHTS_DIR / f"{name}.safetensors").stat().st_size <= 20 * 2**20
    text = (WEIGHTS_DIR / f"{name}.md").read_text()
    assert f"{card['fid']:.2f}" in text and "kimg" in text


@pytest.mark.parametrize("name", SHIPPED)
def test_same_seed_same_bytes_and_varied_faces(name):
    generator = load_generator(name)
    assert (generator.resolution, generator.z_dim) == (64, 128)
    images = generator.synthesize(generator.sample_z(8, seed=3))
    again = load_generator(name).synthesize(generator.sample_z(8, seed=3))
    assert images.shape == (8, 64, 64, 3) and images.dtype == np.uint8
    assert np.array_equal(images, again)
    assert images.reshape(8, -1).std(axis=0).mean() > 20  # not one face eight times


@requires_models
def test_teachers_find_faces_in_the_utkface_generator(teachers):
    generator = load_generator("stylegan2-utkface64")
    scores = teachers.score(generator.synthesize(generator.sample_z(32, seed=0)))
    found = ~np.isnan(scores).all(axis=1)
    assert found.mean() >= 0.9, f"faces found in {found.sum()} of 32"
    age, gender = scores[found, 2], scores[found, 3]
    assert age.std() > 3 and gender.min() < 0.3 and gender.max() > 0.7  # young and old, women and men
