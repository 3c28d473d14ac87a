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


def tiny_options(data: Path | list[Path], kimg: float, **overrides) -> TrainingOptions:
    options = dict(
        data=[str(d) for d in data] if isinstance(data, list) else str(data), resolution=16, kimg=kimg,
        batch_size=4, channel_base=128, channel_max=16, z_dim=8, w_dim=8, mapping_layers=2, snapshot_kimg=0.008,
        fid_num=0, r1_interval=2,
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
    one_line_error(run(*args[:-1], "--discriminator", "big"), "--discriminator must be one of")
    projected = run(*args[:3], "--data", str(faces), *args[5:], "--discriminator", "projected", "--features",
                    "alexnet", "--feature-resolution", "64", "--out", str(tmp_path / "two-folders"))  # fmt: skip
    assert projected.returncode == 0, projected.stderr
    stored = json.loads((tmp_path / "two-folders" / "training.json").read_text())
    assert stored["data"] == [str(faces)] * 2 and stored["discriminator"] == "projected"


def test_export_writes_weights_and_a_model_card(faces, tmp_path, monkeypatch):
    from facesteer.training.stylegan2 import export_trained_generator

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    Trainer(tiny_options(faces, kimg=0.008), tmp_path / "run", progress=False).train()
    card = export_trained_generator(tmp_path / "run", "stylegan2-tiny16", tmp_path / "ship", fid_num=3,
                                    progress=False, fid_reference_num=5, quality_num=8)  # fmt: skip
    assert card["fid"] > 0 and card["kimg"] == 0.008 and card["fid_num"] == 3 and card["fid_reference_images"] == 5
    measured = card["quality"]
    assert measured["generated"] == measured["real"] == 8 and 0 <= measured["inception_precision"] <= 1
    assert measured["faces_found"] == 0  # 16-px noise: dlib's distance is not defined, and the card says so
    text = (tmp_path / "ship" / "stylegan2-tiny16.md").read_text()
    assert "FID: **" in text and "--resolution 16" in text and "5 images spread evenly over the 8" in text
    assert "face space\n  **n/a**" in text and "dlib finds a face in\n  0.0% of the faces" in text
    generator = load_generator(str(tmp_path / "ship" / "stylegan2-tiny16.safetensors"))
    assert generator.resolution == 16
    with pytest.raises(FacesteerError, match="the run folder itself"):
        export_trained_generator(tmp_path / "run", "training", tmp_path / "run", fid_num=3, progress=False)
    (tmp_path / "run" / "log.jsonl").unlink()  # killed between the export and the log line of its first snapshot
    with pytest.raises(FacesteerError, match="not a complete training run"):
        export_trained_generator(tmp_path / "run", "x", tmp_path / "ship", fid_num=3, progress=False)


# ------------------------------------------------------------------------------------- projected discriminator


def test_projected_run_resumes_exactly_and_checkpoints_no_trunk(faces, tmp_path):
    """A run with both discriminators resumes to the same bytes; the frozen ImageNet trunk is read from its package,
    never stored (it would add 56 MB to every checkpoint), and it does not move."""
    options = {"discriminator": "both", "features": "vgg16"}
    straight = Trainer(tiny_options(faces, kimg=0.016, **options), tmp_path / "straight", progress=False)
    trunk_before = {k: v.clone() for k, v in straight.features.state_dict().items()}
    straight.train()
    Trainer(tiny_options(faces, kimg=0.008, **options), tmp_path / "resumed", progress=False).train()
    Trainer(tiny_options(faces, kimg=0.016, **options), tmp_path / "resumed", progress=False).train()
    a = load_file(str(tmp_path / "straight" / "checkpoint.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "checkpoint.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert any(k.startswith("P.heads.") for k in a) and any(k.startswith("opt_P.") for k in a)
    assert any(k.startswith("D.") for k in a) and not any("features" in k for k in a)
    for key, value in straight.features.state_dict().items():
        assert torch.equal(value, trunk_before[key]), key
    projections = {k: v for k, v in a.items() if k.startswith("P.projections.")}
    fresh = Trainer(tiny_options(faces, kimg=0.016, **options), tmp_path / "other", progress=False)
    for key, value in fresh.P.projections.state_dict().items():  # fixed: the seed's random projections, untrained
        assert torch.equal(projections[f"P.projections.{key}"], value), key
    log = [json.loads(line) for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert all("loss_P" in r and "loss_D" in r and r["cpu_seconds"] >= 0 for r in log)


def test_projected_alone_trains_only_its_heads(faces, tmp_path):
    trainer = Trainer(
        tiny_options(faces, kimg=0.004, discriminator="projected", features="alexnet", feature_resolution=64),
        tmp_path / "run",
        progress=False,
    )
    assert trainer.D is None and trainer.opt_D is None
    heads = {k: v.clone() for k, v in trainer.P.heads.state_dict().items()}
    projections = {k: v.clone() for k, v in trainer.P.projections.state_dict().items()}
    generator = [p.clone() for p in trainer.G.parameters()]
    stats = trainer.train_step()
    assert set(stats) == {"loss_P", "loss_G"}
    assert any(not torch.equal(v, heads[k]) for k, v in trainer.P.heads.state_dict().items())
    assert all(torch.equal(v, projections[k]) for k, v in trainer.P.projections.state_dict().items())
    assert any(not torch.equal(a, b) for a, b in zip(generator, trainer.G.parameters(), strict=True))


def test_a_branch_starts_from_another_run_s_networks_and_carries_on(faces, tmp_path):
    """`init_from`: a projected run's generator judged from then on by both discriminators (StyleGAN2's new)."""
    projected = {"discriminator": "projected", "features": "alexnet", "feature_resolution": 64}
    first = Trainer(tiny_options(faces, kimg=0.008, **projected), tmp_path / "first", progress=False)
    first.train()
    start = tmp_path / "first" / "portable.safetensors"
    both = {**projected, "discriminator": "both"}
    branch = Trainer(tiny_options(faces, kimg=0.016, init_from=str(start), **both), tmp_path / "branch", progress=False)
    assert branch.step == first.step and branch.cpu_seconds == first.cpu_seconds  # the curve goes on
    for name in ("G", "G_ema", "P"):
        theirs, ours = getattr(first, name).state_dict(), getattr(branch, name).state_dict()
        for key, value in theirs.items():  # as the portable file keeps them: fp16
            expected = value.half().float() if value.is_floating_point() else value
            assert torch.equal(ours[key], expected), (name, key)
    fresh_d = Trainer(tiny_options(faces, kimg=0.016, **both), tmp_path / "fresh", progress=False).D.state_dict()
    assert all(torch.equal(v, fresh_d[k]) for k, v in branch.D.state_dict().items())  # StyleGAN2's D starts afresh
    branch.train()
    assert branch.images_seen == 16 and json.loads((tmp_path / "branch" / "training.json").read_text())["init_from"]
    resumed = Trainer(
        tiny_options(faces, kimg=0.016, init_from=str(start), **both), tmp_path / "branch", progress=False
    )
    assert resumed.step == branch.step  # from its own checkpoint now, not from init_from again

    with pytest.raises(FacesteerError, match="holds networks of another architecture"):
        Trainer(tiny_options(faces, kimg=0.016, init_from=str(start), channel_max=8, **projected), tmp_path / "c",
                progress=False)  # fmt: skip


def test_projected_logits_per_head():
    from facesteer.training.projected import FeatureNetwork, ProjectedHeads, tap_sizes

    features = FeatureNetwork("vgg16")
    sizes = tap_sizes(features, 64)
    assert sizes == (32, 16, 8)  # relu2_2, relu3_3, relu4_3 of a 64 px image
    heads = ProjectedHeads(features.spec, sizes)
    images = torch.rand(3, 3, 64, 64) * 2 - 1
    assert heads(features(images)).shape == (3, 3 * 5 * 5)  # each head down to 8x8, then a 4x4 conv: 5x5 logits
    images.requires_grad_(True)
    heads(features(images)).sum().backward()  # the generator's gradient reaches the images through the trunk
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is None for p in features.parameters())


def test_bf16_features_are_close_to_fp32():
    from facesteer.training.projected import FeatureNetwork

    images = torch.rand(2, 3, 32, 32) * 2 - 1
    full, half = FeatureNetwork("vgg16")(images), FeatureNetwork("vgg16", precision="bf16")(images)
    for a, b in zip(full, half, strict=True):
        assert b.dtype == torch.float32
        assert (a - b).abs().mean() < 0.05 * a.abs().mean()


def test_alexnet_is_pinned_and_converted(tmp_path):
    from facesteer.perceptual import convert_alexnet, trunk_features

    trunk = trunk_features("alexnet")
    assert trunk[0].weight.shape == (64, 3, 11, 11) and trunk[10].weight.shape == (256, 256, 3, 3)
    # ImageNet's first layer: oriented edge and colour filters, far from the random init's flat spectrum
    assert trunk[0].weight.abs().mean() > 0.01 and not torch.equal(
        trunk[0].weight, trunk_features("alexnet")[0].weight * 0
    )
    other = tmp_path / "alexnet.ckpt"
    other.write_bytes(b"not it")
    with pytest.raises(FacesteerError, match="sha256"):
        convert_alexnet(other)


def test_several_data_folders_and_a_run_from_before_them(faces, tmp_path):
    more = tmp_path / "more"
    more.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 40 * i, dtype=np.uint8)).save(more / f"m{i}.png")
    trainer = Trainer(tiny_options([faces, more], kimg=0.004), tmp_path / "two", progress=False)
    assert len(trainer.images) == 11
    assert json.loads((tmp_path / "two" / "training.json").read_text())["data"] == [str(faces), str(more)]
    # a run folder written before --data took several folders and before the discriminator options
    Trainer(tiny_options(faces, kimg=0.004), tmp_path / "old", progress=False).train()
    stored = json.loads((tmp_path / "old" / "training.json").read_text())
    stored["data"] = str(faces)
    for name in ("discriminator", "features", "feature_resolution", "projected_lr"):
        stored.pop(name)
    (tmp_path / "old" / "training.json").write_text(json.dumps(stored))
    assert Trainer(tiny_options(faces, kimg=0.008), tmp_path / "old", progress=False).step == 1
    with pytest.raises(FacesteerError, match="other options \\(discriminator\\)"):
        Trainer(tiny_options(faces, kimg=0.008, discriminator="both"), tmp_path / "old", progress=False)


def test_discriminator_options_are_checked():
    with pytest.raises(FacesteerError, match="`discriminator` must be one of"):
        TrainingOptions(data="x", discriminator="big")
    with pytest.raises(FacesteerError, match="unknown feature network 'inception'"):
        TrainingOptions(data="x", discriminator="projected", features="inception")
    with pytest.raises(FacesteerError, match="`precision` must be"):
        TrainingOptions(data="x", precision="fp8")


def test_a_run_resumes_from_its_portable_file_alone(faces, tmp_path):
    """What a run commits to move machines: fp16 networks and the RNG, no optimiser state (a warm restart)."""
    options = {"discriminator": "both", "features": "alexnet", "feature_resolution": 32}
    first = Trainer(tiny_options(faces, kimg=0.008, **options), tmp_path / "run", progress=False)
    first.train()
    portable = load_file(str(tmp_path / "run" / "portable.safetensors"))
    full = load_file(str(tmp_path / "run" / "checkpoint.safetensors"))
    assert not any(k.startswith("opt_") for k in portable)
    assert {k for k in full if not k.startswith("opt_")} == set(portable)
    assert all(v.dtype != torch.float32 for v in portable.values())
    size = lambda tensors: sum(v.numel() * v.element_size() for v in tensors.values())  # noqa: E731
    assert size(portable) < size(full) / 2  # fp16, no moments (the frozen projections have none)
    (tmp_path / "run" / "checkpoint.safetensors").unlink()
    for cache in (tmp_path / "run").glob("data-*.npy"):
        cache.unlink()
    moved = Trainer(tiny_options(faces, kimg=0.016, **options), tmp_path / "run", progress=False)
    assert moved.step == first.step == 2 and moved.opt_G.state_dict()["state"] == {}
    for live, saved in zip(moved.G.parameters(), first.G.parameters(), strict=True):
        assert torch.equal(live, saved.half().float())
    assert torch.equal(moved.rng.get_state(), first.rng.get_state())
    moved.train()
    assert moved.step == 4 and (tmp_path / "run" / "checkpoint.safetensors").is_file()


def test_bf16_autocast_trains_float32_weights(faces, tmp_path):
    """--precision bf16 runs the forward passes in bfloat16; the weights, moments and average stay float32, and it
    is deterministic."""
    runs = [
        Trainer(tiny_options(faces, kimg=0.008, precision=p), tmp_path / p, progress=False) for p in ("fp32", "bf16")
    ]
    for trainer in runs:
        trainer.train()
    again = Trainer(tiny_options(faces, kimg=0.008, precision="bf16"), tmp_path / "again", progress=False)
    again.train()
    fp32, bf16 = (load_file(str(tmp_path / p / "checkpoint.safetensors")) for p in ("fp32", "bf16"))
    assert all(v.dtype != torch.bfloat16 for v in bf16.values())
    assert any(not torch.equal(fp32[k], bf16[k]) for k in fp32 if k.startswith("G."))
    repeated = load_file(str(tmp_path / "again" / "checkpoint.safetensors"))
    assert all(torch.equal(repeated[k], v) for k, v in bf16.items())
