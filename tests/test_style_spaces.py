"""The InterFaceGAN pipeline on a style-based generator: w.npy / wp.npy in runs, boundaries and edits in W,
and the Z-vs-W side-by-side evaluation. A tiny random StyleGAN2 and a colour 'scorer' exercise the plumbing;
the real numbers come from trained generators and the teachers (see the README)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from facesteer.errors import FacesteerError
from facesteer.evaluation.interfacegan import evaluate_run
from facesteer.generators import load_generator
from facesteer.generators.stylegan2 import save_safetensors
from facesteer.generators.stylegan2_network import StyleGAN2Config, StyleGAN2Network
from facesteer.latents import LatentDataset, sample_dataset

from .conftest import one_line_error


class ColourScorer:
    """Mean red, green and blue of the image centre: a deterministic stand-in for an attribute model."""

    name = "colour"
    attributes = ("red", "green", "blue")

    def score(self, images: np.ndarray) -> np.ndarray:
        h = images.shape[1]
        return images[:, h // 4 : 3 * h // 4, h // 4 : 3 * h // 4].mean(axis=(1, 2)).astype(np.float32) / 255

    def config(self) -> dict[str, Any]:
        return {"name": self.name}

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def tiny_stylegan(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    network = StyleGAN2Network(StyleGAN2Config.small(16, channel_base=256, channel_max=16, z_dim=8, w_dim=8))
    return save_safetensors(network, tmp_path_factory.mktemp("gen") / "tiny.safetensors", half=False)


def test_sample_stores_w_and_wp(tiny_stylegan, tmp_path):
    generator = load_generator(str(tiny_stylegan))
    generator.set_truncation(0.7)
    dataset = sample_dataset(generator, ColourScorer(), tmp_path / "run", 40, seed=2, progress=False, store_wp=True)
    assert dataset.spaces == ["z", "w", "wp"]
    z, w, wp = dataset.codes("z"), dataset.codes("w"), dataset.codes("wp")
    assert w.shape == (40, 8) and wp.shape == (40, generator.num_ws, 8)
    np.testing.assert_allclose(w, generator.map(np.asarray(z), "w"), atol=1e-6)
    w_avg = generator.network.mapping.w_avg.numpy()
    np.testing.assert_allclose(wp[:, 3], w_avg + 0.7 * (w - w_avg), atol=1e-5)  # truncated W+
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["generator"]["truncation_psi"] == 0.7 and manifest["generator"]["path"] == str(tiny_stylegan)


def test_boundaries_train_and_edit_in_wp(tiny_stylegan, tmp_path):
    from facesteer.editing import shift
    from facesteer.training.run_boundaries import train_run_boundary

    generator = load_generator(str(tiny_stylegan))
    dataset = sample_dataset(generator, ColourScorer(), tmp_path / "run", 200, seed=4, progress=False, store_wp=True)
    boundary = train_run_boundary(dataset, "red", space="wp", ratio=0.1)
    assert boundary.normal.shape == (1, generator.num_ws * 8) and boundary.space == "wp"
    codes = np.asarray(dataset.codes("wp")[:3])
    moved = shift(codes, boundary.normal, 2.0)
    np.testing.assert_allclose(moved - codes, np.broadcast_to(2.0 * boundary.normal.reshape(1, -1, 8), codes.shape),
                               atol=1e-5)  # fmt: skip
    assert generator.synthesize(moved, "wp").shape == (3, 16, 16, 3)


def test_sample_wp_needs_a_style_generator(run, tmp_path):
    one_line_error(run("sample", "--num", "2", "--scorer", "none", "--wp", "--out", str(tmp_path / "r")), "W+")


def test_evaluate_trains_and_compares_z_and_w(tiny_stylegan, tmp_path):
    generator = load_generator(str(tiny_stylegan))
    sample_dataset(generator, ColourScorer(), tmp_path / "run", 400, seed=1, progress=False)
    result = evaluate_run(tmp_path / "run", ColourScorer(), edit_codes=20, grid_faces=2, ratio=0.1, progress=False)
    assert result["spaces"] == ["z", "w"]
    for space in ("z", "w"):
        entry = result["by_space"][space]
        assert set(entry["accuracy"]) == {"red", "green", "blue"}
        assert all(0.5 <= v["validation"] <= 1.0 for v in entry["accuracy"].values())
        assert np.array(entry["edit_effects"]["plain"]).shape == (3, 3)
    boundaries = tmp_path / "run" / "boundaries"
    assert sorted(p.name for p in boundaries.glob("*.npy")) == sorted(
        [f"{a}.npy" for a in ("red", "green", "blue")] + [f"{a}_w.npy" for a in ("red", "green", "blue")]
    )
    assert json.loads((boundaries / "red_w.json").read_text())["space"] == "w"
    # the W boundary moves the attribute it was trained on: red goes up along the red boundary
    assert result["by_space"]["w"]["edit_effects"]["plain"][0][0] > 0
    report = (tmp_path / "run" / "report.md").read_text()
    assert "### Spaces side by side" in report and "| red |" in report
    assert (tmp_path / "run" / "figures" / "edit_red_w.png").is_file()
    assert LatentDataset(tmp_path / "run").spaces == ["z", "w"]


def test_edit_cli_in_w_and_on_a_wp_layer_range(tiny_stylegan, run, tmp_path):
    from facesteer.training.run_boundaries import train_run_boundary

    generator = load_generator(str(tiny_stylegan))
    dataset = sample_dataset(generator, ColourScorer(), tmp_path / "run", 200, seed=4, progress=False)
    train_run_boundary(dataset, "red", space="w", ratio=0.1).save(tmp_path / "red_w.npy")
    common = ["edit", "--boundary", str(tmp_path / "red_w.npy"), "--generator", str(tiny_stylegan), "--num", "2"]
    result = run(*common, "--out", str(tmp_path / "w.png"))
    assert result.returncode == 0, result.stderr
    result = run(*common, "--space", "wp", "--layers", "0", "2", "--out", str(tmp_path / "wp.png"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "w.png").is_file() and (tmp_path / "wp.png").is_file()
    one_line_error(
        run(*common, "--space", "wp", "--layers", "0", "9", "--out", str(tmp_path / "x.png")), "layers 0 9 out of range"
    )
    one_line_error(run(*common, "--space", "z", "--out", str(tmp_path / "x.png")), "trained in 'w'")


def test_w_boundaries_are_never_applied_as_z_ones(tiny_stylegan, run, tmp_path):
    """z_dim = w_dim here (as in both shipped StyleGAN2s), so only the boundary's space can tell them apart."""
    generator = load_generator(str(tiny_stylegan))
    sample_dataset(generator, ColourScorer(), tmp_path / "run", 200, seed=3, progress=False)
    result = run("train-boundary", str(tmp_path / "run"), "--all", "--space", "w", "--ratio", "0.1")
    assert result.returncode == 0, result.stderr
    boundaries = tmp_path / "run" / "boundaries"
    assert sorted(p.name for p in boundaries.glob("*.npy")) == ["blue_w.npy", "green_w.npy", "red_w.npy"]

    evaluate_run(tmp_path / "run", ColourScorer(), edit_codes=10, grid_faces=1, ratio=0.1, progress=False)
    assert json.loads((boundaries / "red.json").read_text())["space"] == "z"  # z boundaries trained in z
    assert json.loads((boundaries / "red_w.json").read_text())["space"] == "w"

    for suffix in (".npy", ".json"):  # a W boundary under a Z boundary's name is refused, not applied
        (boundaries / f"red{suffix}").write_bytes((boundaries / f"red_w{suffix}").read_bytes())
    with pytest.raises(FacesteerError, match="trained in 'w' space; it cannot move 'z' codes"):
        evaluate_run(tmp_path / "run", ColourScorer(), edit_codes=10, grid_faces=1, ratio=0.1, progress=False)


def test_rank_orders_samples_by_signed_distance(tiny_stylegan, run, tmp_path):
    generator = load_generator(str(tiny_stylegan))
    dataset = sample_dataset(generator, ColourScorer(), tmp_path / "run", 300, seed=5, progress=False)
    result = run("train-boundary", str(tmp_path / "run"), "--all", "--space", "w", "--ratio", "0.1")
    assert result.returncode == 0, result.stderr
    boundary = tmp_path / "run" / "boundaries" / "red_w.npy"
    result = run("rank", str(tmp_path / "run"), "--boundary", str(boundary), "--num", "5", "--json")
    assert result.returncode == 0, result.stderr
    ranked = json.loads(result.stdout)
    distances = np.asarray(dataset.codes("w"), np.float64) @ np.load(boundary)[0].astype(np.float64)
    order = np.argsort(distances)
    assert ranked["space"] == "w" and ranked["indices"] == order[[0, 75, 150, 224, 299]].tolist()
    np.testing.assert_allclose(ranked["distances"], distances[ranked["indices"]], rtol=1e-6)
    red = dataset.scores("red")
    assert red[ranked["indices"][-1]] > red[ranked["indices"][0]]  # the most positive side is redder
    strip = Image.open(ranked["out"])
    assert strip.size[0] == 2 + 5 * (2 * 16 + 2)  # five faces enlarged twice, side by side

    z_boundary = tmp_path / "run" / "boundaries" / "red.npy"
    result = run(
        "train-boundary", str(tmp_path / "run"), "--attribute", "red", "--ratio", "0.1", "--out", str(z_boundary)
    )
    assert result.returncode == 0, result.stderr
    for suffix in (".npy", ".json"):  # a Z boundary saved under the W name: ranked in z, as its sidecar says
        (tmp_path / f"red_w{suffix}").write_bytes((tmp_path / "run" / "boundaries" / f"red{suffix}").read_bytes())
    result = run("rank", str(tmp_path / "run"), "--boundary", str(tmp_path / "red_w.npy"), "--num", "3", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["space"] == "z"
    np.save(tmp_path / "short.npy", np.ones((1, 5), np.float32))
    one_line_error(run("rank", str(tmp_path / "run"), "--boundary", str(tmp_path / "short.npy")), "dimension 5")
