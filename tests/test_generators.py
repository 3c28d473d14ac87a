from pathlib import Path

import numpy as np
import pytest
import torch

from facesteer.errors import FacesteerError
from facesteer.generators import load_generator, load_generator_for
from facesteer.generators.base import gaussian_rows
from facesteer.generators.dcgan import DCGANNetwork, shipped_weights


def test_row_depends_only_on_seed_and_index():
    whole = gaussian_rows(200, 100, seed=7)
    assert whole.dtype == np.float32 and whole.shape == (200, 100)
    np.testing.assert_array_equal(gaussian_rows(50, 100, seed=7, start=60), whole[60:110])
    np.testing.assert_array_equal(gaussian_rows(1, 100, seed=7, start=199), whole[199:])
    assert not np.array_equal(gaussian_rows(10, 100, seed=8), whole[:10])
    assert abs(whole.mean()) < 0.05 and abs(whole.std() - 1) < 0.05


def test_default_generator_is_deterministic(generator):
    z = generator.sample_z(8, seed=3)
    first = generator.synthesize(z)
    assert first.shape == (8, 64, 64, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, load_generator().synthesize(generator.sample_z(8, seed=3)))
    np.testing.assert_array_equal(generator.synthesize(z, batch_size=8), generator.synthesize(z, batch_size=8))


def test_default_generator_makes_varied_faces_not_noise(generator):
    images = generator.synthesize(generator.sample_z(16, seed=0)).astype(np.float32)
    # different codes give different faces; a face is smooth (neighbouring pixels agree), noise is not
    assert images.std(axis=0).mean() > 20
    horizontal_step = np.abs(np.diff(images, axis=2)).mean()
    assert horizontal_step < 12, horizontal_step


def test_network_matches_the_packaged_state_dict_layout():
    state = shipped_weights()
    result = DCGANNetwork().load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_output_matches_the_reference_package_module(generator):
    """Our module, fed the packaged weights, equals gan-face-generate's own Generator in eval mode."""
    models = pytest.importorskip("gan_face_generate.models", reason="gan-face-generate's models.py not importable")
    reference = models.Generator(ngpu=0, nc=3, nz=100, ngf=64)
    state = shipped_weights()
    reference.load_state_dict(state)
    reference.eval()
    z = generator.sample_z(4, seed=11)
    with torch.no_grad():
        expected = reference(torch.from_numpy(z)[:, :, None, None])
        ours = generator.synthesize_tensor(torch.from_numpy(z))
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)


def test_wrong_code_shape_is_refused(generator):
    with pytest.raises(FacesteerError, match=r"shape \(N, 100\)"):
        generator.synthesize(np.zeros((2, 99), np.float32))
    with pytest.raises(FacesteerError, match="no latent space 'w'"):
        generator.synthesize(np.zeros((2, 100), np.float32), space="w")


def test_unknown_generator_and_checkpoint_path(tmp_path):
    with pytest.raises(FacesteerError, match="unknown generator 'nope'"):
        load_generator("nope")
    bad = tmp_path / "bad.pth"
    torch.save({"something": torch.zeros(1)}, bad)
    with pytest.raises(FacesteerError, match="netG_state_dict"):
        load_generator(str(bad))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(FacesteerError, match="cannot read"):
        load_generator(str(garbage))


def test_the_shipped_weights_are_gan_face_generate_s():
    import importlib.util

    spec = importlib.util.find_spec("gan_face_generate")
    if spec is None:
        pytest.skip("gan-face-generate is not installed (make install puts it in to compare)")
    package = Path(next(iter(spec.submodule_search_locations))) / "weights.tar"
    theirs = torch.load(package, map_location="cpu", weights_only=True)["netG_state_dict"]
    ours = shipped_weights()
    assert theirs.keys() == ours.keys()
    assert all(torch.equal(theirs[key], ours[key]) and theirs[key].dtype == ours[key].dtype for key in ours)


def test_altered_shipped_weights_are_refused(tmp_path, monkeypatch):
    import facesteer.generators.dcgan as dcgan

    altered = bytearray(dcgan.generator_file("dcgan-digiface64").read_bytes())
    altered[-1] ^= 1
    (tmp_path / "dcgan-digiface64.safetensors").write_bytes(altered)
    monkeypatch.setattr(dcgan, "generator_file", lambda name: tmp_path / f"{name}.safetensors")
    with pytest.raises(FacesteerError, match="altered"):
        load_generator("dcgan-digiface64")


@pytest.mark.parametrize("file_name", ["mine.pt", "dcgan-digiface64.pt"])
def test_dcgan_from_a_file_reloads_that_file_not_the_packaged_weights(tmp_path, file_name):
    checkpoint = {"netG_state_dict": shipped_weights()}
    state = checkpoint["netG_state_dict"]
    state["main.0.weight"] = state["main.0.weight"] * 0.5  # other weights than the packaged ones
    path = tmp_path / file_name
    torch.save({"netG_state_dict": state}, path)

    custom = load_generator(str(path))
    assert custom.config()["path"] == str(path.resolve()) and "sha256" in custom.config()["weights"]
    reloaded = load_generator_for(custom.config())  # what a run made with it does
    z = custom.sample_z(4, seed=0)
    np.testing.assert_array_equal(reloaded.synthesize(z), custom.synthesize(z))
    assert not np.array_equal(custom.synthesize(z), load_generator().synthesize(z))
    assert custom.name == ("mine" if file_name == "mine.pt" else "file:dcgan-digiface64.pt")


def test_a_run_finds_its_generator_after_the_checkout_moves_and_refuses_changed_weights(tmp_path):
    shipped = load_generator("stylegan2-utkface64").config()
    moved = shipped | {"path": "/an/old/checkout/src/facesteer/weights/stylegan2-utkface64.safetensors"}
    assert load_generator_for(moved).name == "stylegan2-utkface64"  # the same weights (sha256) in the registry

    state = {"netG_state_dict": shipped_weights()}
    path = tmp_path / "mine.pt"
    torch.save(state, path)
    config = load_generator(str(path)).config()
    state["netG_state_dict"]["main.0.weight"] *= 0.5  # the file is overwritten after the run was made
    torch.save(state, path)
    with pytest.raises(FacesteerError, match="no longer holds the weights"):
        load_generator_for(config)


def test_a_run_gets_back_the_truncation_it_was_sampled_with(monkeypatch):
    """A file may load with its own truncation (InterFaceGAN's StyleGAN: psi 0.7 on 8 layers); a run sampled at
    psi 1.0 must get 1.0 back, not the file's."""
    import facesteer.generators as generators

    truncated = load_generator("stylegan2-utkface64")
    truncated.set_truncation(0.5, 4)
    again = load_generator_for(truncated.config())
    assert (again.truncation_psi, again.truncation_cutoff) == (0.5, 4)

    untruncated = load_generator("stylegan2-utkface64").config()
    loader = generators.load_generator

    def loads_truncated(name=None):  # a generator whose file carries psi 0.7 on 8 layers
        generator = loader(name)
        generator.set_truncation(0.7, 8)
        return generator

    monkeypatch.setattr(generators, "load_generator", loads_truncated)
    again = load_generator_for(untruncated)
    assert (again.truncation_psi, again.truncation_cutoff) == (1.0, None)
