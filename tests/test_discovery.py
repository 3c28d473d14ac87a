"""SeFa, GANSpace and the Directions files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facesteer.discovery import Directions, ganspace, sefa
from facesteer.discovery.sefa import factorize_weight
from facesteer.errors import FacesteerError
from facesteer.generators import load_generator
from facesteer.generators.pggan import PGGANNetwork

from .conftest import one_line_error
from .test_interfacegan_models import FIXTURE as PGGAN_FIXTURE


@pytest.fixture(scope="module")
def utkface64():
    return load_generator("stylegan2-utkface64")


def test_factorize_weight_finds_the_directions_a_layer_amplifies_most():
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((6, 40))
    directions, values = factorize_weight(weight)
    np.testing.assert_allclose(directions @ directions.T, np.eye(6), atol=1e-10)  # orthonormal rows
    assert np.all(np.diff(values) <= 0)
    columns = weight / np.linalg.norm(weight, axis=0)
    gains = np.linalg.norm(columns.T @ directions.T, axis=0) ** 2  # |A^T n|^2 for every direction
    np.testing.assert_allclose(gains, values, rtol=1e-10)  # each eigenvalue is its direction's gain
    random = rng.standard_normal((1000, 6))
    random /= np.linalg.norm(random, axis=1, keepdims=True)
    assert (np.linalg.norm(columns.T @ random.T, axis=0) ** 2).max() <= values[0] + 1e-9  # none beats the first


def test_factorize_weight_normalises_columns_and_drops_dead_ones():
    weight = np.array([[1.0, 0.0, 0.0, 100.0], [0.0, 0.0, 1.0, 0.0]])  # a huge column must not dominate
    directions, values = factorize_weight(weight)
    np.testing.assert_allclose(values, [2.0, 1.0])  # unit columns e0, e1, e0: A A^T = diag(2, 1)
    np.testing.assert_allclose(np.abs(directions), np.eye(2))
    with pytest.raises(FacesteerError, match="every weight column is zero"):
        factorize_weight(np.zeros((3, 4)))


def test_dcgan_code_weights_are_its_first_layer_as_a_linear_map(generator):
    z = torch.from_numpy(generator.sample_z(3, seed=0))
    expected = generator.network.main[0](z.reshape(3, -1, 1, 1)).flatten(1)
    np.testing.assert_allclose(z.double().numpy() @ generator.code_weights(), expected.numpy(), atol=1e-4)


def test_pggan_code_weights_are_its_first_convolution_as_a_linear_map():
    with np.load(PGGAN_FIXTURE) as data:
        state = {k.split("/state/")[1]: torch.from_numpy(data[k]) for k in data.files if k.startswith("plain/state/")}
    from facesteer.generators.pggan import PGGANGenerator

    model = PGGANGenerator(PGGANNetwork(state), "pggan", "test")
    z = torch.randn(2, model.z_dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    weight = model.network.layers[0].conv_weight.double()
    expected = F.conv2d(z.reshape(2, -1, 1, 1), weight, padding=3).flatten(1)
    np.testing.assert_allclose(z.numpy() @ model.code_weights(), expected.numpy(), atol=1e-10)
    assert len(sefa(model)) == model.z_dim
    with pytest.raises(FacesteerError, match="one layer"):
        model.code_weights([1])


def test_stylegan2_code_weights_are_the_style_weights_of_the_chosen_rows(utkface64):
    synthesis = utkface64.network.synthesis
    w = torch.randn(4, utkface64.w_dim, generator=torch.Generator().manual_seed(1))
    for row, module in [(0, synthesis.layers[0]), (3, synthesis.layers[3]), (9, synthesis.torgbs[-1])]:
        affine = module.affine
        styles = (w.double().numpy() @ utkface64.code_weights([row])) * affine.weight_gain + affine.bias.numpy()
        np.testing.assert_allclose(styles, affine(w).numpy(), atol=1e-4)
    assert utkface64.code_weights([2, 3]).shape == (128, synthesis.layers[2].affine.weight.shape[0] * 2)
    with pytest.raises(FacesteerError, match="out of range"):
        utkface64.code_weights([10])


def test_sefa_on_a_style_generator_keeps_its_layers_and_is_deterministic(utkface64):
    every = sefa(utkface64)
    some = sefa(utkface64, [0, 1, 2])
    assert (every.space, every.layers, some.layers) == ("w", None, [0, 1, 2])
    assert every.vectors.shape == (128, 128)
    assert not np.allclose(np.abs(every.vectors[0]), np.abs(some.vectors[0]))  # other layers, other directions
    assert np.array_equal(sefa(utkface64).vectors, every.vectors)


def test_ganspace_chunks_cover_every_sample_and_fold_a_short_tail():
    from facesteer.discovery.ganspace import _chunks

    assert list(_chunks(10, 4, 3)) == [(0, 4), (4, 6)]  # a tail of 2 < 3 joins the chunk before it
    assert list(_chunks(10, 4, 2)) == [(0, 4), (4, 4), (8, 2)]
    assert list(_chunks(3, 4, 5)) == [(0, 3)]


def test_ganspace_in_w_matches_a_full_pca_of_the_same_codes(utkface64):
    found = ganspace(utkface64, num=3000, components=5, seed=3, chunk=1000, progress=False)
    w = utkface64.map(utkface64.sample_z(3000, seed=3), "w").astype(np.float64)
    values, vectors = np.linalg.eigh(np.cov(w, rowvar=False))
    top = vectors[:, ::-1][:, :5].T
    cosines = np.abs(np.sum(found.vectors * top, axis=1))
    assert cosines[:3].min() > 0.99  # the leading components agree with an exact PCA
    np.testing.assert_allclose(found.values, values[::-1][:5] / values.sum(), rtol=0.05)
    assert found.info["samples"] == 3000 and found.space == "w"


def test_ganspace_without_w_maps_components_back_to_z(generator):
    found = ganspace(generator, num=600, components=8, seed=0, progress=False)
    assert found.space == "z" and found.vectors.shape == (8, generator.z_dim)
    # the first component moves the first layer's activations along the first principal axis the most
    z = torch.from_numpy(generator.sample_z(50, seed=9))
    base = generator.first_layer_features(z)
    moved = [generator.first_layer_features(z + 0.5 * torch.from_numpy(v)) - base for v in found.vectors[:4]]
    assert float(moved[0].norm()) > float(moved[3].norm())
    with pytest.raises(FacesteerError, match="components must be in"):
        ganspace(generator, num=600, components=101)
    with pytest.raises(FacesteerError, match="must exceed components"):  # 3 centred samples span 2 directions
        ganspace(generator, num=3, components=3)


def test_directions_round_trip_and_refuse_bad_files(tmp_path):
    vectors = np.random.default_rng(0).standard_normal((3, 4))
    saved = Directions(vectors, "sefa", "gen", "w", layers=[0, 1], values=[3, 2, 1], info={"seed": 1})
    Directions.load(saved.save(tmp_path / "set"))
    loaded = Directions.load(tmp_path / "set" / "directions.npy")
    assert np.array_equal(loaded.vectors, saved.vectors) and loaded.layers == [0, 1] and loaded.info == {"seed": 1}
    np.testing.assert_allclose(np.linalg.norm(loaded.vectors, axis=1), 1, atol=1e-6)
    named = loaded.named(["smile", "", "age"])
    assert [named.label(k) for k in range(3)] == ["smile", "sefa-1", "age"]
    assert named.index("age") == 2 and named.index("1") == 1
    assert named.boundary("smile").attribute == "smile"
    with pytest.raises(FacesteerError, match="no direction 'pose'"):
        named.index("pose")
    with pytest.raises(FacesteerError, match="holds no directions"):
        Directions.load(tmp_path)
    (tmp_path / "set" / "directions.json").write_text("{")
    with pytest.raises(FacesteerError, match="is corrupt"):
        Directions.load(tmp_path / "set")
    with pytest.raises(FacesteerError, match="non-zero"):
        Directions(np.zeros((1, 3)), "sefa", "gen", "z")
    for key, value, message in [("layers", [-1], "layers must be"), ("values", ["x"] * 3, "values must be"),
                                ("names", [1, 2, 3], "names must be")]:  # fmt: skip
        saved.save(tmp_path / key)
        sidecar = json.loads((tmp_path / key / "directions.json").read_text())
        (tmp_path / key / "directions.json").write_text(json.dumps(sidecar | {key: value}))
        with pytest.raises(FacesteerError, match=message):
            Directions.load(tmp_path / key)


def test_discover_sefa_writes_directions_and_a_picture(run, tmp_path):
    result = run("discover", "sefa", "--out", str(tmp_path / "sefa"), "--show", "3", "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["count"] == 100 and printed["space"] == "z" and printed["method"] == "sefa"
    assert (tmp_path / "sefa" / "traversals.png").is_file()
    result = run("discover", "sefa", "-g", "stylegan2-utkface64", "--layers", "0-3", "--out", str(tmp_path / "s2"),
                 "--show", "0", "--json")  # fmt: skip
    assert json.loads(result.stdout)["layers"] == [0, 1, 2, 3]
    one_line_error(run("discover", "sefa", "--layers", "2-1", "--out", str(tmp_path / "x")), "FIRST <= LAST")
    one_line_error(run("discover", "sefa", "--layers", "1", "--out", str(tmp_path / "x")), "one layer")


# ------------------------------------------------------------------------------------------- latent discovery


@pytest.fixture(scope="module")
def tiny_style(tmp_path_factory):
    from facesteer.generators.stylegan2 import save_safetensors
    from facesteer.generators.stylegan2_network import StyleGAN2Config, StyleGAN2Network

    torch.manual_seed(0)
    network = StyleGAN2Network(StyleGAN2Config.small(16, channel_base=256, channel_max=16, z_dim=8, w_dim=8))
    return load_generator(str(save_safetensors(network, tmp_path_factory.mktemp("gen") / "tiny.safetensors")))


def discovery(generator, out, **kwargs):
    from facesteer.discovery.latent import DiscoveryOptions, LatentDiscovery

    options = DiscoveryOptions(**{"method": "sdd", "directions": 4, "steps": 4, "batch_size": 2,
                                  "checkpoint_every": 2, **kwargs})  # fmt: skip
    return LatentDiscovery(generator, options, out, progress=False)


def test_shifts_keep_their_sign_and_at_least_the_minimum():
    from facesteer.discovery.latent import sample_shifts

    k, eps = sample_shifts(10_000, 5, 6.0, 0.5, torch.Generator().manual_seed(0))
    assert set(k.tolist()) == set(range(5))
    assert eps.abs().min() >= 0.5 and eps.abs().max() <= 6.0
    assert 0.45 < float((eps > 0).float().mean()) < 0.55


@pytest.mark.parametrize("method", ["sdd", "hdp", "shp"])
def test_a_resumed_run_ends_with_the_same_matrix_as_an_uninterrupted_one(tiny_style, tmp_path, method):
    whole = discovery(tiny_style, tmp_path / "whole", method=method).train()
    discovery(tiny_style, tmp_path / "parts", method=method, steps=2).train()  # stops at step 2 ...
    resumed = discovery(tiny_style, tmp_path / "parts", method=method)  # ... and a new process picks it up
    assert resumed.step == 2
    parts = resumed.train()
    assert np.array_equal(whole.vectors, parts.vectors)
    assert whole.space == "w" and whole.vectors.shape == (4, 8)
    np.testing.assert_allclose(whole.vectors @ whole.vectors.T, np.eye(4), atol=1e-5)  # orthonormal
    discovery(tiny_style, tmp_path / "again", method=method).train()
    assert (tmp_path / "again" / "directions.npy").read_bytes() == (tmp_path / "whole" / "directions.npy").read_bytes()
    initial = discovery(tiny_style, tmp_path / "initial", method=method, steps=1).current().detach().numpy().T
    assert not np.allclose(initial, whole.vectors)  # training moved A


def test_stage_two_starts_from_an_sdd_run_and_trains_only_the_matrix(generator, tmp_path):
    first = discovery(generator, tmp_path / "sdd", steps=2).train()
    assert first.space == "z" and first.vectors.shape == (4, 100)
    run = discovery(generator, tmp_path / "dth", method="dth", start=str(tmp_path / "sdd"), steps=1)
    assert run.reconstructor is None and np.allclose(run.current().detach().numpy().T, first.vectors, atol=1e-6)
    second = run.train()
    assert not np.allclose(second.vectors, first.vectors)
    np.testing.assert_allclose(second.vectors @ second.vectors.T, np.eye(4), atol=1e-5)
    dtj = discovery(generator, tmp_path / "dtj", method="dtj", start=str(tmp_path / "sdd"), steps=1).train()
    assert dtj.method == "dtj" and not np.allclose(dtj.vectors, second.vectors)
    with pytest.raises(FacesteerError, match="starts from an SDD run"):
        discovery(generator, tmp_path / "x", method="dth", start=str(tmp_path / "dth"))
    with pytest.raises(FacesteerError, match="has 4 directions"):
        discovery(generator, tmp_path / "y", method="dth", start=str(tmp_path / "sdd"), directions=5)
    # a stage-2 run resumes from its own checkpoint even when its SDD folder is gone
    discovery(generator, tmp_path / "dth2", method="dth", start=str(tmp_path / "sdd"), steps=1).train()
    import shutil

    shutil.rmtree(tmp_path / "sdd")
    assert discovery(generator, tmp_path / "dth2", method="dth", start=str(tmp_path / "sdd"), steps=2).step == 1


def test_a_run_folder_refuses_other_options(generator, tmp_path):
    discovery(generator, tmp_path / "run", steps=1).train()
    with pytest.raises(FacesteerError, match="other options"):
        discovery(generator, tmp_path / "run", seed=1)
    (tmp_path / "run" / "checkpoint.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(FacesteerError, match="cannot read checkpoint"):
        discovery(generator, tmp_path / "run")
    from facesteer.resumable import write_checkpoint

    write_checkpoint(tmp_path / "run" / "checkpoint.safetensors", {"matrix": torch.zeros(100, 4)}, {})
    with pytest.raises(FacesteerError, match="not a checkpoint of this run"):
        discovery(generator, tmp_path / "run")
    (tmp_path / "run" / "options.json").write_text("{")
    with pytest.raises(FacesteerError, match="is corrupt"):
        discovery(generator, tmp_path / "run")


def test_discover_latent_from_the_command_line(run, tmp_path):
    result = run("discover", "latent", "--method", "sdd", "--steps", "2", "--batch-size", "2", "-k", "3",
                 "--device", "cpu", "--show", "2", "--out", str(tmp_path / "sdd"), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["count"] == 3 and printed["steps"] == 2 and printed["method"] == "sdd"
    assert (tmp_path / "sdd" / "traversals.png").is_file() and (tmp_path / "sdd" / "log.jsonl").is_file()
    one_line_error(run("discover", "latent", "--method", "dth", "--out", str(tmp_path / "x")), "needs --from")
    one_line_error(run("discover", "latent", "--method", "pca", "--out", str(tmp_path / "x")), "method must be")


def test_edit_along_a_named_direction(run, generator, tmp_path):
    from PIL import Image

    sefa(generator).named(["pose"] + [""] * 99).save(tmp_path / "set")
    result = run("edit", "--direction", "pose", "--directions", str(tmp_path / "set"), "--num", "2", "--steps", "3",
                 "--out", str(tmp_path / "pose.png"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "pose.png").size[0] > 4 * 64
    one_line_error(run("edit", "--direction", "smile", "--directions", str(tmp_path / "set"), "--out",
                       str(tmp_path / "x.png")), "no direction 'smile'")  # fmt: skip
    one_line_error(run("edit", "--out", str(tmp_path / "x.png")), "either --boundary FILE or --direction NAME")
    sefa(load_generator("stylegan2-utkface64"), [0, 1]).save(tmp_path / "early")
    one_line_error(run("edit", "-g", "stylegan2-utkface64", "--direction", "0", "--directions", str(tmp_path / "early"),
                       "--space", "w", "--out", str(tmp_path / "x.png")), "edit in wp")  # fmt: skip
    one_line_error(run("edit", "-g", "stylegan2-anime64", "--direction", "pose", "--out", str(tmp_path / "x.png")),
                   "no directions are shipped for stylegan2-anime64")  # fmt: skip


def test_a_directions_layers_apply_in_w_plus(run, utkface64, tmp_path):
    from facesteer.visualize import edit_grid

    found = sefa(utkface64, [0, 1])
    found.save(tmp_path / "early")
    result = run("edit", "-g", "stylegan2-utkface64", "--direction", "0", "--directions", str(tmp_path / "early"),
                 "--num", "1", "--steps", "2", "--out", str(tmp_path / "e.png"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    code = utkface64.map(utkface64.sample_z(1, 0), "wp")
    grid = edit_grid(utkface64, code, found.vectors[0], -3, 3, 2, space="wp", layers=[0, 1], relative=True)
    from PIL import Image

    assert np.array_equal(np.asarray(Image.open(tmp_path / "e.png").convert("RGB")), grid)


def test_boundaries_become_a_named_direction_set(run, tmp_path):
    from facesteer.boundaries import Boundary

    for index, name in enumerate(["smile", "age"]):
        conditions = ["gender"] if name == "age" else []  # a conditioned boundary keeps saying so in the set
        Boundary(np.eye(1, 100, index, dtype=np.float32), name, "z", "dcgan-digiface64", conditions).save(
            tmp_path / f"{name}.npy"
        )
    result = run("discover", "boundaries", str(tmp_path / "smile.npy"), str(tmp_path / "age.npy"),
                 "--out", str(tmp_path / "set"), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = Directions.load(tmp_path / "set")
    assert found.method == "interfacegan" and found.names == ["smile", "age"] and found.index("age") == 1
    assert [source["conditions"] for source in found.info["boundaries"]] == [[], ["gender"]]
    Boundary(np.eye(1, 8, 0, dtype=np.float32), "pose", "w", "other").save(tmp_path / "pose.npy")
    one_line_error(run("discover", "boundaries", str(tmp_path / "smile.npy"), str(tmp_path / "pose.npy"),
                       "--out", str(tmp_path / "x")), "do not make one set")  # fmt: skip


def test_the_shipped_directions_edit_the_default_generator_out_of_the_box(run, tmp_path):
    from facesteer.discovery.directions import load_direction_set

    shipped = load_direction_set(None, "dcgan-digiface64")
    assert shipped.method == "dth" and shipped.space == "z" and "smile" in shipped.names
    result = run("edit", "--direction", "smile", "--num", "1", "--steps", "3", "--out", str(tmp_path / "s.png"))
    assert result.returncode == 0, result.stderr
    assert "along smile" in result.stdout
    utk = load_direction_set(None, "stylegan2-utkface64")
    assert (utk.method, utk.space, utk.generator) == ("dth", "w", "stylegan2-utkface64") and "pose" in utk.names
