"""StyleGAN2 training: DiffAugment, the discriminator's shapes, exact resumption, export, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from facesteer.errors import FacesteerError
from facesteer.generators import load_generator
from facesteer.generators.stylegan2_network import Discriminator, StyleGAN2Config, minibatch_stddev
from facesteer.training.augment import cutout, diff_augment, translation
from facesteer.training.stylegan2 import Trainer, TrainingOptions

from .conftest import one_line_error


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """Eight small images of different sizes (the loader crops and resizes)."""
    folder = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(1)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    return folder


def tiny_options(data: Path, kimg: float, **overrides) -> TrainingOptions:
    options = dict(
        data=str(data), resolution=16, kimg=kimg, batch_size=4, channel_base=128, channel_max=16, z_dim=8, w_dim=8,
        mapping_layers=2, snapshot_kimg=0.008, fid_num=0, r1_interval=2,
    )  # fmt: skip
    return TrainingOptions(**(options | overrides))


def test_translation_moves_whole_pixels_and_fills_zeros():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8) + 1
    generator = torch.Generator().manual_seed(3)
    shifted = translation(x, generator, ratio=0.25)
    shifts = torch.randint(-2, 3, (2, 2), generator=torch.Generator().manual_seed(3))
    for i, (dx, dy) in enumerate(shifts.tolist()):
        expected = torch.zeros(3, 8, 8)
        ys, xs = slice(max(dy, 0), 8 + min(dy, 0)), slice(max(dx, 0), 8 + min(dx, 0))
        expected[:, ys, xs] = x[i, :, slice(max(-dy, 0), 8 - max(dy, 0)), slice(max(-dx, 0), 8 - max(dx, 0))]
        assert torch.equal(shifted[i], expected)


def test_cutout_zeroes_one_square_per_image():
    x = torch.ones(16, 3, 16, 16)
    out = cutout(x, torch.Generator().manual_seed(0), ratio=0.5)
    zeros = (out[:, 0] == 0).sum(dim=(1, 2))
    assert (zeros <= 64).all() and (zeros >= 16).all()  # an 8x8 square, clipped at the border
    assert torch.equal(out[:, 0], out[:, 1])


def test_diff_augment_is_seeded_and_differentiable():
    x = torch.rand(4, 3, 16, 16, requires_grad=True)
    a = diff_augment(x, torch.Generator().manual_seed(5))
    b = diff_augment(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_discriminator_shapes_and_minibatch_stddev():
    config = StyleGAN2Config.small(32, channel_base=256, channel_max=16)
    assert Discriminator(config)(torch.randn(6, 3, 32, 32)).shape == (6,)
    x = torch.randn(8, 5, 4, 4)
    y = minibatch_stddev(x, group_size=4)
    assert y.shape == (8, 6, 4, 4)
    assert torch.equal(y[:, :5], x)
    expected = x.reshape(4, 2, 5, 4, 4).std(dim=0, unbiased=False).mean(dim=(1, 2, 3))
    torch.testing.assert_close(y[:2, 5, 0, 0], expected, atol=1e-5, rtol=1e-5)


def test_resumed_run_equals_uninterrupted_run(faces, tmp_path):
    straight = Trainer(tiny_options(faces, kimg=0.016), tmp_path / "straight", progress=False)
    straight.train()
    Trainer(tiny_options(faces, kimg=0.008), tmp_path / "resumed", progress=False).train()
    resumed = Trainer(tiny_options(faces, kimg=0.016), tmp_path / "resumed", progress=False)
    assert resumed.step == 2
    resumed.train()
    a = load_file(str(tmp_path / "straight" / "checkpoint.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "checkpoint.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    log = [json.loads(line) for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4]


def test_a_run_continued_to_more_kimg_equals_one_trained_there(faces, tmp_path):
    """The average generator's ramp-up followed --kimg, which a resumed run may raise: G_ema differed."""
    options = {"snapshot_kimg": 0.048}
    Trainer(tiny_options(faces, kimg=0.096, **options), tmp_path / "straight", progress=False).train()
    Trainer(tiny_options(faces, kimg=0.048, **options), tmp_path / "continued", progress=False).train()
    Trainer(tiny_options(faces, kimg=0.096, **options), tmp_path / "continued", progress=False).train()
    a = load_file(str(tmp_path / "straight" / "checkpoint.safetensors"))
    b = load_file(str(tmp_path / "continued" / "checkpoint.safetensors"))
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_training_time_adds_up_across_resumes(faces, tmp_path):
    """The logged seconds are the training time of every session together, whatever the machine's speed: a fake
    clock that advances 2.5 s per reading stands in for the real one."""

    def clock(readings=iter(range(1000))) -> float:
        return 2.5 * next(readings)

    Trainer(tiny_options(faces, kimg=0.008), tmp_path / "run", progress=False, clock=clock).train()
    resumed = Trainer(tiny_options(faces, kimg=0.016), tmp_path / "run", progress=False, clock=clock)
    assert resumed.seconds == 2.5  # the first session: started at reading 0, snapshot at reading 1
    resumed.train()
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["seconds"] for r in log] == [2.5, 5.0] and resumed.seconds == 5.0


def test_exported_generator_loads_and_a_changed_run_is_refused(faces, tmp_path):
    Trainer(tiny_options(faces, kimg=0.008), tmp_path / "run", progress=False).train()
    generator = load_generator(str(tmp_path / "run" / "generator.safetensors"))
    images = generator.synthesize(generator.sample_z(3, seed=0))
    assert images.shape == (3, 16, 16, 3)
    assert [p.name for p in (tmp_path / "run" / "samples").glob("*.png")] == ["kimg00000.008.png"]
    with pytest.raises(FacesteerError, match="other options \\(seed\\)"):
        Trainer(tiny_options(faces, kimg=0.008, seed=1), tmp_path / "run", progress=False)


def test_a_first_run_that_fails_leaves_its_folder_reusable(faces, tmp_path):
    """training.json was written before the data was read: the corrected command was refused as another run."""
    (tmp_path / "empty").mkdir()
    with pytest.raises(FacesteerError, match=r"need at least one batch|no images|no image"):
        Trainer(tiny_options(tmp_path / "empty", kimg=0.008), tmp_path / "run", progress=False)
    with pytest.raises(FacesteerError, match="channels must give 1"):  # channel_base 8: 8 // 16 = 0 channels at 16 px
        Trainer(tiny_options(faces, kimg=0.008, channel_base=8), tmp_path / "run", progress=False)
    (tmp_path / "run").mkdir(exist_ok=True)
    (tmp_path / "run" / ".data-16.npy.abc.tmp").write_bytes(b"cut short")  # a cache write killed midway
    Trainer(tiny_options(faces, kimg=0.008), tmp_path / "run", progress=False).train()  # the corrected command
    assert (tmp_path / "run" / "generator.safetensors").is_file()
    (tmp_path / "a-file").write_text("")
    with pytest.raises(FacesteerError, match="is a file, not a folder"):
        Trainer(tiny_options(faces, kimg=0.008), tmp_path / "a-file", progress=False)


def test_snapshots_closer_than_a_tenth_of_a_kimg_keep_their_own_grids(faces, tmp_path):
    Trainer(tiny_options(faces, kimg=0.012, snapshot_kimg=0.004), tmp_path / "run", progress=False).train()
    grids = sorted(p.name for p in (tmp_path / "run" / "samples").glob("*.png"))
    assert grids == ["kimg00000.004.png", "kimg00000.008.png", "kimg00000.012.png"]


def test_train_gan_cli(run, faces, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # FID statistics of the data
    out = tmp_path / "cli-run"
    args = ["train-gan", "--data", str(faces), "--out", str(out), "--resolution", "16", "--kimg", "0.008",
            "--batch-size", "4", "--channel-base", "128", "--channel-max", "16", "--z-dim", "8", "--w-dim", "8",
            "--mapping-layers", "2", "--snapshot-kimg", "0.008", "--fid-num", "3", "--device", "cpu", "-q"]  # fmt: skip
    result = run(*args)
    assert result.returncode == 0, result.stderr
    assert "trained to 0.0 kimg, FID" in result.stdout
    assert (out / "best.safetensors").is_file()
    one_line_error(run(*args[:-1], "--augment", "rotate"), "unknown --augment rotate")
    one_line_error(run(*args[:-1], "--resolution", "24"), "power of two")


def test_export_writes_weights_and_a_model_card(faces, tmp_path, monkeypatch):
    from facesteer.training.stylegan2 import export_trained_generator

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    Trainer(tiny_options(faces, kimg=0.008), tmp_path / "run", progress=False).train()
    card = export_trained_generator(
        tmp_path / "run", "stylegan2-tiny16", tmp_path / "ship", fid_num=3, progress=False, fid_reference_num=5
    )
    assert card["fid"] > 0 and card["kimg"] == 0.008 and card["fid_num"] == 3 and card["fid_reference_images"] == 5
    text = (tmp_path / "ship" / "stylegan2-tiny16.md").read_text()
    assert "FID: **" in text and "--resolution 16" in text and "5 images spread evenly over the 8" in text
    generator = load_generator(str(tmp_path / "ship" / "stylegan2-tiny16.safetensors"))
    assert generator.resolution == 16
    with pytest.raises(FacesteerError, match="the run folder itself"):
        export_trained_generator(tmp_path / "run", "training", tmp_path / "run", fid_num=3, progress=False)
    (tmp_path / "run" / "log.jsonl").unlink()  # killed between the export and the log line of its first snapshot
    with pytest.raises(FacesteerError, match="not a complete training run"):
        export_trained_generator(tmp_path / "run", "x", tmp_path / "ship", fid_num=3, progress=False)
