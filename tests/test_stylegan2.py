"""StyleGAN2: equivalence with the reference implementations, safe loading, and the z / w / wp spaces.

The fixtures in tests/fixtures/reference/ were written by running rosinality/stylegan2-pytorch and
NVlabs/stylegan2-ada-pytorch themselves on small randomly initialised generators (fixed seeds, fixed noise):
see make_reference_fixtures.py there. Each test writes the weights in the reference's own file layout and
loads that file through facesteer's public loader.
"""

from __future__ import annotations

import argparse
import ast
import collections
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from facesteer.checkpoints import load_pickle
from facesteer.errors import FacesteerError
from facesteer.generators import load_generator
from facesteer.generators.stylegan2 import StyleGAN2Generator, from_safetensors, save_safetensors
from facesteer.generators.stylegan2_network import StyleGAN2Config, StyleGAN2Network

FIXTURES = Path(__file__).parent / "fixtures" / "reference"
TOLERANCE = 1e-4


def fixture(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / name) as f:
        return {k: f[k] for k in f.files}


def state_of(data: dict[str, np.ndarray], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: torch.from_numpy(v) for k, v in data.items() if k.startswith(prefix)}


@pytest.fixture(scope="module")
def rosinality_file(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """The fixture's weights saved as rosinality's train.py / convert_weight.py save them."""
    data = fixture("stylegan2_rosinality.npz")
    path = tmp_path_factory.mktemp("rosinality") / "small.pt"
    torch.save(
        {
            "g_ema": state_of(data, "g_ema/"),
            "latent_avg": torch.from_numpy(data["latent_avg"]),
            "args": argparse.Namespace(size=32, n_mlp=3),
        },
        path,
    )
    return path, data


def max_difference(generator: StyleGAN2Generator, codes: np.ndarray, expected: np.ndarray, space: str = "z") -> float:
    with torch.no_grad():
        image = generator.synthesize_tensor(torch.from_numpy(codes), space)
    return float((image - torch.from_numpy(expected)).abs().max())


def test_rosinality_checkpoint_matches_reference(rosinality_file):
    path, data = rosinality_file
    generator = load_generator(str(path))
    assert isinstance(generator, StyleGAN2Generator)
    assert (generator.resolution, generator.z_dim, generator.num_ws) == (32, 32, 8)
    assert max_difference(generator, data["z"], data["image"]) <= TOLERANCE
    np.testing.assert_allclose(generator.map(data["z"], "w"), data["w"], atol=TOLERANCE)
    generator.set_truncation(0.5)
    assert max_difference(generator, data["z"], data["image_truncated"]) <= TOLERANCE


def test_rosinality_checkpoint_without_latent_avg_estimates_it(rosinality_file, tmp_path):
    _, data = rosinality_file
    torch.save({"g_ema": state_of(data, "g_ema/")}, tmp_path / "no_avg.pt")
    generator = load_generator(str(tmp_path / "no_avg.pt"))
    w = generator.map(data["z"], "w")
    mean_of_many = generator.map(np.random.default_rng(5).standard_normal((4096, 32)).astype(np.float32), "w").mean(0)
    # w_avg is the mean of w over 10,000 seeded samples: close to an independent estimate
    assert np.abs(generator.network.mapping.w_avg.numpy() - mean_of_many).max() < 0.1 * np.abs(w).max()
    assert max_difference(generator, data["z"], data["image"]) <= TOLERANCE  # untruncated output unchanged


def nvidia_layout_pickle(state: dict[str, torch.Tensor], init_kwargs: dict, path: Path, monkeypatch) -> None:
    """Pickle ``state`` exactly as stylegan2-ada-pytorch's persistence pickles a module tree, without its code.

    Each module pickles as ``torch_utils.persistence._reconstruct_persistent_obj(meta)``, meta holding the
    class name, the module source (a placeholder here) and the module's ``__dict__`` (parameters, buffers,
    children, constructor arguments); tensors pickle the way torch pickles them.
    """
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # pragma: no cover - a loader must never call it
        raise AssertionError("the embedded-code path was taken")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    monkeypatch.setitem(sys.modules, "torch_utils", types.ModuleType("torch_utils"))
    monkeypatch.setitem(sys.modules, "torch_utils.persistence", persistence)

    class Persistent:
        def __init__(self, class_name: str) -> None:
            self.class_name = class_name
            self.dict = {
                "training": False,
                "_parameters": collections.OrderedDict(),
                "_buffers": collections.OrderedDict(),
                "_non_persistent_buffers_set": set(),
                "_modules": collections.OrderedDict(),
                "_init_args": (),
                "_init_kwargs": {},
            }

        def __reduce__(self):
            meta = dict(
                type="class", version=4, module_src="# (source omitted)", class_name=self.class_name, state=self.dict
            )
            return (_reconstruct_persistent_obj, (meta,))

    root = Persistent("Generator")
    root.dict["_init_kwargs"] = init_kwargs
    buffers = ("w_avg", "noise_const", "resample_filter")
    for name, tensor in state.items():
        *parents, leaf = name.split(".")
        module = root
        for part in parents:
            module = module.dict["_modules"].setdefault(part, Persistent(part))
        if leaf in buffers:
            module.dict["_buffers"][leaf] = tensor
        else:
            module.dict["_parameters"][leaf] = torch.nn.Parameter(tensor)
    with open(path, "wb") as f:
        pickle.dump({"G": root, "D": None, "G_ema": root, "training_set_kwargs": {"resolution": 32}}, f)


def test_nvidia_pickle_matches_reference(tmp_path, monkeypatch):
    data = fixture("stylegan2_nvidia.npz")
    init_kwargs = ast.literal_eval(bytes(data["init_kwargs"]).decode())
    path = tmp_path / "network-snapshot.pkl"
    nvidia_layout_pickle(state_of(data, "G_ema/"), init_kwargs, path, monkeypatch)
    generator = load_generator(str(path))
    assert (generator.resolution, generator.z_dim, generator.w_dim, generator.num_ws) == (32, 24, 32, 8)
    assert generator.network.config.conv_clamp == 2.0
    assert max_difference(generator, data["z"], data["image"]) <= TOLERANCE
    np.testing.assert_allclose(generator.map(data["z"], "wp"), data["ws"], atol=TOLERANCE)
    generator.set_truncation(0.7, cutoff=3)
    assert max_difference(generator, data["z"], data["image_truncated"]) <= TOLERANCE


class RunsACommand:
    """A pickle payload that would run a shell command on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("suffix", [".pkl", ".pt"])
def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path, suffix):
    marker = tmp_path / "pwned"
    path = tmp_path / f"evil{suffix}"
    if suffix == ".pkl":
        path.write_bytes(pickle.dumps({"G_ema": RunsACommand(marker)}))
    else:
        torch.save({"g_ema": RunsACommand(marker)}, path)
    with pytest.raises(FacesteerError, match="refusing to load"):
        load_generator(str(path))
    assert not marker.exists()


def test_pickle_with_an_unknown_class_names_it(tmp_path):
    path = tmp_path / "other.pkl"
    path.write_bytes(pickle.dumps({"G_ema": argparse.Namespace(a=1)}))
    with pytest.raises(FacesteerError, match=r"argparse\.Namespace"):
        load_pickle(path)


def test_corrupt_and_missing_checkpoints(tmp_path):
    truncated = tmp_path / "cut.pkl"
    truncated.write_bytes(pickle.dumps({"G_ema": {"a": list(range(100))}})[:20])
    with pytest.raises(FacesteerError, match="corrupt or truncated"):
        load_generator(str(truncated))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(FacesteerError, match=r"junk\.pt"):
        load_generator(str(junk))
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(FacesteerError, match="unrecognised checkpoint"):
        load_generator(str(other))


def tiny_network(seed: int = 0) -> StyleGAN2Network:
    torch.manual_seed(seed)
    network = StyleGAN2Network(StyleGAN2Config.small(resolution=16, channel_base=256, channel_max=16, z_dim=8, w_dim=8))
    with torch.no_grad():
        for name, parameter in network.named_parameters():
            if name.endswith("noise_strength") or name.endswith("bias"):
                parameter.normal_(0, 0.3)
    return network.eval()


def test_safetensors_round_trip(tmp_path):
    network = tiny_network()
    path = save_safetensors(network, tmp_path / "g.safetensors", half=False)
    loaded = from_safetensors(path)
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.equal(network(z), loaded(z))
    half = load_generator(str(save_safetensors(network, tmp_path / "h.safetensors")))
    assert max_difference(half, z.numpy(), network(z).detach().numpy()) < 0.05  # fp16 weights
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(FacesteerError, match=r"bad\.safetensors"):
        load_generator(str(tmp_path / "bad.safetensors"))


def test_spaces_agree():
    generator = StyleGAN2Generator(tiny_network(), "tiny", source="test")
    z = generator.sample_z(5, seed=3)
    w = generator.map(z, "w")
    wp = generator.map(z, "wp")
    assert w.shape == (5, 8) and wp.shape == (5, generator.num_ws, 8)
    from_z = generator.synthesize(z, "z")
    assert np.array_equal(from_z, generator.synthesize(w, "w"))
    assert np.array_equal(from_z, generator.synthesize(wp, "wp"))
    assert from_z.shape == (5, 16, 16, 3) and from_z.dtype == np.uint8


def test_truncation_moves_toward_w_avg_on_the_cutoff_layers_only():
    generator = StyleGAN2Generator(tiny_network(), "tiny", source="test")
    z = generator.sample_z(4, seed=1)
    full = generator.map(z, "wp")
    generator.set_truncation(0.5, cutoff=2)
    truncated = generator.map(z, "wp")
    w_avg = generator.network.mapping.w_avg.numpy()
    np.testing.assert_allclose(truncated[:, :2], w_avg + 0.5 * (full[:, :2] - w_avg), atol=1e-6)
    np.testing.assert_array_equal(truncated[:, 2:], full[:, 2:])
    with pytest.raises(FacesteerError, match="psi"):
        generator.set_truncation(1.5)
    with pytest.raises(FacesteerError, match="cutoff"):
        generator.set_truncation(0.7, cutoff=99)


def test_wrong_code_shapes_are_named():
    generator = StyleGAN2Generator(tiny_network(), "tiny", source="test")
    with pytest.raises(FacesteerError, match=r"space 'wp' of tiny must have shape \(N, 6, 8\)"):
        generator.synthesize(np.zeros((2, 8), np.float32), "wp")
    with pytest.raises(FacesteerError, match="no latent space 'x'"):
        generator.synthesize(np.zeros((2, 8), np.float32), "x")
