"""PGGAN and StyleGAN in InterFaceGAN's .pth layouts: equivalence with genforce/interfacegan's own models on
random weights.

The fixtures were written by running that repository's PGGANGeneratorModel and StyleGANGeneratorModel
(tests/fixtures/reference/make_reference_fixtures.py --interfacegan PATH): for each, a plain variant and one
with fused upsampling and lod = 1; StyleGAN with truncation psi 0.7 on the first 3 layers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facesteer.errors import FacesteerError
from facesteer.generators import load_generator
from facesteer.generators.pggan import PGGANGenerator
from facesteer.generators.stylegan import StyleGANGenerator

FIXTURE = Path(__file__).parent / "fixtures" / "reference" / "pggan_interfacegan.npz"
STYLEGAN_FIXTURE = Path(__file__).parent / "fixtures" / "reference" / "stylegan_interfacegan.npz"


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


@pytest.mark.parametrize("variant", ["plain", "fused_lod1"])
def test_stylegan_pth_matches_interfacegan(variant, tmp_path):
    with np.load(STYLEGAN_FIXTURE) as data:
        prefix = f"{variant}/state/"
        state = {k[len(prefix) :]: torch.from_numpy(data[k]) for k in data.files if k.startswith(prefix)}
        expected = {k: data[f"{variant}/{k}"] for k in ("z", "w", "wp", "image")}
    torch.save(state, tmp_path / "stylegan_small.pth")
    generator = load_generator(str(tmp_path / "stylegan_small.pth"))
    assert isinstance(generator, StyleGANGenerator)
    assert (generator.z_dim, generator.w_dim, generator.num_ws, generator.resolution) == (32, 32, 6, 16)
    assert (generator.truncation_psi, generator.truncation_cutoff) == (0.7, 3)  # read from the file
    np.testing.assert_allclose(generator.map(expected["z"], "w"), expected["w"], atol=1e-5)
    np.testing.assert_allclose(generator.map(expected["z"], "wp"), expected["wp"], atol=1e-5)
    for space, codes in (("z", expected["z"]), ("w", expected["w"]), ("wp", expected["wp"])):
        with torch.no_grad():
            images = generator.synthesize_tensor(torch.from_numpy(codes), space)
        assert float((images - torch.from_numpy(expected["image"])).abs().max()) <= 1e-4, space


def test_commands_keep_the_files_own_truncation_unless_told(tmp_path, run):
    """sample, edit and fid set psi 1 by default, so the same file drew other faces there than in generate."""
    import json

    from facesteer.generators import apply_truncation

    with np.load(STYLEGAN_FIXTURE) as data:
        prefix = "plain/state/"
        state = {k[len(prefix) :]: torch.from_numpy(data[k]) for k in data.files if k.startswith(prefix)}
    path = tmp_path / "stylegan_small.pth"
    torch.save(state, path)
    result = run("sample", "-g", str(path), "--num", "4", "--scorer", "none", "--out", str(tmp_path / "run"), "-q")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())["generator"]
    assert (manifest["truncation_psi"], manifest["truncation_cutoff"]) == (0.7, 3)  # the file's, not psi 1
    generator = load_generator(str(path))
    assert (apply_truncation(generator, 0.5).truncation_psi, generator.truncation_cutoff) == (0.5, 3)  # its layers
    assert (apply_truncation(generator, 1.0).truncation_psi, generator.truncation_cutoff) == (1.0, None)
    assert (apply_truncation(generator, None).truncation_psi, generator.truncation_cutoff) == (1.0, None)
