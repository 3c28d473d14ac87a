"""PGGAN in InterFaceGAN's .pth layout: equivalence with genforce/interfacegan's own model on random weights.

The fixture was written by running that repository's PGGANGeneratorModel (tests/fixtures/reference/
make_stylegan2_fixtures.py --interfacegan PATH): a plain variant and one with fused upsampling and lod = 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facesteer.errors import FacesteerError
from facesteer.generators import load_generator
from facesteer.generators.pggan import PGGANGenerator

FIXTURE = Path(__file__).parent / "fixtures" / "reference" / "pggan_interfacegan.npz"


@pytest.mark.parametrize("variant", ["plain", "fused_lod1"])
def test_pggan_pth_matches_interfacegan(variant, tmp_path):
    with np.load(FIXTURE) as data:
        prefix = f"{variant}/state/"
        state = {k[len(prefix) :]: torch.from_numpy(data[k]) for k in data.files if k.startswith(prefix)}
        z, expected = data[f"{variant}/z"], data[f"{variant}/image"]
    torch.save(state, tmp_path / "pggan_small.pth")  # InterFaceGAN's converted files are plain state dicts
    generator = load_generator(str(tmp_path / "pggan_small.pth"))
    assert isinstance(generator, PGGANGenerator)
    assert (generator.z_dim, generator.resolution) == (32, 16)
    with torch.no_grad():
        images = generator.synthesize_tensor(torch.from_numpy(z))
    assert float((images - torch.from_numpy(expected)).abs().max()) <= 1e-4
    # codes are normalized to norm sqrt(d) first, so scaling a code does not change its face
    assert np.array_equal(generator.synthesize(z[:1]), generator.synthesize(3 * z[:1]))


def test_pggan_with_missing_tensors_is_named(tmp_path):
    with np.load(FIXTURE) as data:
        state = {k.split("/state/")[1]: torch.from_numpy(data[k]) for k in data.files if k.startswith("plain/state/")}
    del state["layer3.wscale.bias"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(FacesteerError, match=r"layer3\.wscale\.bias"):
        load_generator(str(tmp_path / "broken.pth"))
