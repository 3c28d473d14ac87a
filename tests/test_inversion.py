"""Inversion: the blur, the prior, optimisation (batched = one by one, and it reconstructs a generated face), the
encoder (save/load, resume), and the invert / train-encoder / edit-photo commands."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from facesteer.boundaries import Boundary
from facesteer.errors import FacesteerError
from facesteer.generators import load_generator
from facesteer.generators.ops import uint8_to_unit
from facesteer.images import load_image, save_png
from facesteer.inversion import InversionOptions, convert_codes, invert, mean_code
from facesteer.inversion.encoder import Encoder, load_encoder, save_encoder
from facesteer.inversion.optimize import FACESTEER_RECIPE, Recipe, gaussian_blur, optimize_codes
from facesteer.inversion.prior import LatentPrior
from facesteer.training.encoder import EncoderOptions, train_encoder
from tests.conftest import SHARED, one_line_error, requires_models

CELEBA = SHARED / "data" / "celeba-sample"
requires_celeba = pytest.mark.skipif(not CELEBA.is_dir(), reason=f"celeba-sample not found at {CELEBA}")
PIXELS_ONLY = Recipe("pixels", "w", 40, 0.05, perceptual=0.0, prior=0.0)


@pytest.fixture(scope="module")
def style():
    return load_generator("stylegan2-utkface64")


def test_blur_keeps_constants_and_spreads_a_point_as_a_gaussian():
    flat = torch.full((1, 3, 16, 16), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 1.0), flat)
    point = torch.zeros(1, 1, 15, 15)
    point[0, 0, 7, 7] = 1
    blurred = gaussian_blur(point, 1.0)[0, 0]
    assert blurred.sum() == pytest.approx(1.0, abs=1e-6)
    assert blurred[7, 8] / blurred[7, 7] == pytest.approx(np.exp(-0.5), rel=1e-5)
    wide = gaussian_blur(point, 2.0)[0, 0]  # exp(-d^2 / (2 sigma^2)): one pixel off at sigma 2 is exp(-1/8)
    assert wide[7, 8] / wide[7, 7] == pytest.approx(np.exp(-1 / 8), rel=1e-5)
    assert wide[7, 9] / wide[7, 7] == pytest.approx(np.exp(-4 / 8), rel=1e-5)
    assert gaussian_blur(point, 0.0) is point


def test_reconstruction_loss_sums_its_weighted_terms():
    from facesteer.inversion.optimize import reconstruction_loss

    rng = torch.Generator().manual_seed(0)
    images, targets = (torch.rand(2, 3, 16, 16, generator=rng) * 2 - 1 for _ in range(2))
    codes = torch.randn(2, 8, generator=rng)
    squared = (images - targets).square().flatten(1)
    # NFE's kind: summed squared error (of the blurred images) and a plain squared norm of the code
    nfe = Recipe("t", "z", 1, 0.1, pixel=2.0, pixel_reduction="sum", perceptual=0.0, prior=0.5, prior_kind="norm")
    expected = 2.0 * squared.sum(dim=1) + 0.5 * codes.square().sum(dim=1)
    torch.testing.assert_close(reconstruction_loss(nfe, images, targets, codes, None, None), expected)
    blurred = (gaussian_blur(images, 1.0) - gaussian_blur(targets, 1.0)).square().flatten(1).sum(dim=1)
    torch.testing.assert_close(reconstruction_loss(nfe.with_changes(blur_sigma=1.0), images, targets, codes, None,
                                                   None), 2.0 * blurred + 0.5 * codes.square().sum(dim=1))  # fmt: skip
    # facesteer's kind: mean squared error, a perceptual distance, and the whitened prior (here: a Cholesky factor
    # of 2 I, so the penalty is the mean of (code / 2)^2)
    distance = lambda a, b: (a - b).abs().flatten(1).mean(dim=1)  # noqa: E731  (a stand-in for LPIPS)
    prior = LatentPrior("w", torch.zeros(8), 2 * torch.eye(8))
    ours = Recipe("t", "w", 1, 0.1, pixel=3.0, perceptual=0.25, prior=0.1)
    expected = 3.0 * squared.mean(dim=1) + 0.25 * distance(images, targets) + 0.1 * (codes / 2).square().mean(dim=1)
    torch.testing.assert_close(reconstruction_loss(ours, images, targets, codes, prior, distance), expected)
    with pytest.raises(FacesteerError, match="needs a latent prior"):
        reconstruction_loss(ours, images, targets, codes, None, distance)
    with pytest.raises(FacesteerError, match="needs a perceptual distance"):
        reconstruction_loss(ours, images, targets, codes, prior, None)


def test_prior_whitens_the_generators_own_codes(style):
    prior = LatentPrior.fit(style, "w", num=4000)
    w = torch.from_numpy(style.map(style.sample_z(2000, seed=5), "w"))
    assert 0.9 < float(prior.penalty(w).mean()) < 1.1  # held-out codes: about 1 per coordinate
    torch.testing.assert_close(prior.unwhiten(prior.whiten(w)), w, atol=1e-4, rtol=1e-4)
    wp_prior = LatentPrior("wp", prior.mean, prior.cholesky)
    torch.testing.assert_close(wp_prior.penalty(style.broadcast(w[:4])), prior.penalty(w[:4]))  # rows agree
    # the centre with row 0 moved 3 whitened units along coordinate 0: 9 from the distance, and 2.7^2 + 9 x 0.3^2
    # from the rows' spread around their mean, over 10 rows x 128 coordinates
    moved = style.broadcast(prior.mean[None]).clone()
    moved[0, 0] += 3 * prior.cholesky[:, 0]
    assert float(wp_prior.penalty(moved)[0]) == pytest.approx((9 + 2.7**2 + 9 * 0.3**2) / (10 * 128), rel=1e-4)
    z_prior = LatentPrior.fit(style, "z")
    assert torch.equal(z_prior.whiten(w), w)
    with pytest.raises(FacesteerError, match="differ"):
        LatentPrior("w", torch.zeros(3), torch.eye(4))


def test_codes_convert_forward_only(style):
    z = torch.from_numpy(style.sample_z(2, 0))
    assert convert_codes(style, z, "z", "wp").shape == (2, style.num_ws, style.w_dim)
    with pytest.raises(FacesteerError, match="cannot turn w codes into z"):
        convert_codes(style, convert_codes(style, z, "z", "w"), "w", "z")


def test_a_batch_inverts_as_each_picture_alone(style):
    targets = uint8_to_unit(style.synthesize(style.sample_z(3, seed=9)))
    start = mean_code(style, "w", 3)
    recipe = PIXELS_ONLY.with_changes(steps=5)
    together, _ = optimize_codes(style, targets, start, recipe)
    alone = torch.cat([optimize_codes(style, targets[i : i + 1], start[i : i + 1], recipe)[0] for i in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_optimisation_reconstructs_a_generated_face(style):
    truth = style.sample_z(2, seed=3)
    pictures = style.synthesize(truth)
    result = invert(pictures, style, "optim", PIXELS_ONLY)
    error_before = np.abs(style.synthesize(mean_code(style, "w", 2).numpy(), "w").astype(float) - pictures).mean()
    error_after = np.abs(result.reconstructions.astype(float) - pictures).mean()
    assert result.losses[-1] < 0.5 * result.losses[0]
    assert error_after < 0.6 * error_before
    assert result.codes.shape == (2, style.w_dim) and result.space == "w"
    with pytest.raises(FacesteerError, match="aligned uint8"):
        invert(pictures[:, :32], style, "optim", PIXELS_ONLY)
    with pytest.raises(FacesteerError, match="needs a perceptual"):
        optimize_codes(style, uint8_to_unit(pictures), mean_code(style, "w", 2), FACESTEER_RECIPE.with_changes(steps=1))


def test_encoder_files_round_trip_and_are_checked(tmp_path, style):
    torch.manual_seed(0)
    network = Encoder(64, style.w_dim).eval()
    prior = LatentPrior.fit(style, "w", num=1000)
    path = save_encoder(tmp_path / "e.safetensors", network, prior, {"generator": style.name})
    loaded = load_encoder(style, path)
    images = uint8_to_unit(style.synthesize(style.sample_z(2, 0)))
    torch.testing.assert_close(loaded.encode(images), prior.unwhiten(network(images)).detach())
    with pytest.raises(FacesteerError, match="for stylegan2-utkface64, not for dcgan-digiface64"):
        load_encoder(load_generator("dcgan-digiface64"), path)
    anonymous = save_encoder(tmp_path / "anonymous.safetensors", network, prior, {})
    with pytest.raises(FacesteerError, match="encodes pictures for None"):
        load_encoder(style, anonymous)  # a card must name its generator
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(FacesteerError, match="cannot read"):
        load_encoder(style, tmp_path / "bad.safetensors")
    with pytest.raises(FacesteerError, match="train-encoder"):
        load_encoder(style, tmp_path / "absent.safetensors")


def test_hybrid_starts_from_the_encoders_code(style):
    encoder = load_encoder(style)  # the shipped one: its codes are far from the mean code optimisation starts at
    pictures = style.synthesize(style.sample_z(2, seed=4))
    recipe = PIXELS_ONLY.with_changes(steps=1)
    start = invert(pictures, style, "encoder", recipe, encoder).codes
    hybrid = invert(pictures, style, "hybrid", recipe, encoder).codes
    # Adam's first step moves every coordinate by at most its rate (here about exactly it)
    moved = np.abs(hybrid - start)
    assert 0.5 * recipe.learning_rate < moved.max() <= 1.01 * recipe.learning_rate
    assert np.abs(start - mean_code(style, "w", 2).numpy()).max() > 10 * recipe.learning_rate


def test_edit_codes_moves_each_code_by_each_alpha(style):
    from facesteer.photo_editing import edit_codes

    rng = np.random.default_rng(1)
    normal = rng.normal(size=(1, style.w_dim))
    normal /= np.linalg.norm(normal)
    boundary = Boundary(normal.astype(np.float32), "age", "w", style.name)
    w = style.map(style.sample_z(2, seed=2), "w")
    edits = edit_codes(style, w, "w", boundary, [-2.0, 1.5])
    assert edits.shape == (2, 2, 64, 64, 3)
    for k, alpha in enumerate((-2.0, 1.5)):
        expected = style.synthesize((w.astype(np.float64) + alpha * normal).astype(np.float32), "w")
        assert np.abs(edits[:, k].astype(int) - expected).max() <= 1  # (float32 vs float64 rounding of the code)
    assert not np.array_equal(edits[:, 0], edits[:, 1])
    # z codes with a W boundary are edited as their w (NFE's recipe inverts in z)
    z = style.sample_z(2, seed=2)
    from_z = edit_codes(style, z, "z", boundary, [-2.0, 1.5])
    np.testing.assert_array_equal(from_z, edits)


def test_encoder_training_resumes_to_the_same_bytes(tmp_path):
    from facesteer.files import file_sha256

    dcgan = load_generator("dcgan-digiface64")
    photos = tmp_path / "photos"
    for i, face in enumerate(dcgan.synthesize(dcgan.sample_z(4, seed=7))):
        save_png(photos / f"{i}.png", face)
    # two latent-only steps, then two with the image terms and real photos; checkpoints every 3 steps, so the
    # resumed run repeats step 4 after a checkpoint at 3
    options = EncoderOptions(steps=4, latent_steps=2, batch_size=4, real_per_step=2, checkpoint_every=3, perceptual=0)
    straight = train_encoder(dcgan, tmp_path / "straight", options, data=photos, progress=False)
    first = train_encoder(dcgan, tmp_path / "resumed", replace(options, steps=3), data=photos, progress=False)
    with (first.parent / "log.jsonl").open("a") as log:  # a step logged after the checkpoint, then killed
        log.write('{"step": 4, "latent": 0.5}\n')
    resumed = train_encoder(dcgan, tmp_path / "resumed", options, data=photos, progress=False)
    assert file_sha256(straight) == file_sha256(resumed)
    steps = [json.loads(line)["step"] for line in (resumed.parent / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    assert "pixel" in (resumed.parent / "log.jsonl").read_text().splitlines()[-1]
    encoder = load_encoder(dcgan, straight)
    assert encoder.card["generator"] == "dcgan-digiface64" and encoder.space == "z"
    with pytest.raises(FacesteerError, match="another training run"):
        train_encoder(dcgan, tmp_path / "straight", replace(options, seed=1), data=photos)
    with pytest.raises(FacesteerError, match="image folder"):
        train_encoder(dcgan, tmp_path / "typo", options, data=tmp_path / "no-such-folder")
    assert not (tmp_path / "typo").exists()  # nothing written before the data was read
    # a finished run asked for fewer steps would ship its weights under a card naming the wrong count
    with pytest.raises(FacesteerError, match="trained 4 steps already"):
        train_encoder(dcgan, tmp_path / "straight", replace(options, steps=3), data=photos)
    assert file_sha256(straight) == file_sha256(resumed)
    assert "--lr 0.001" in encoder.card["command"]  # the card's command reproduces the run
    # a first leg shorter than the latent steps (to be resumed later with more): no photo reached its weights
    first_leg = train_encoder(dcgan, tmp_path / "leg", replace(options, latent_steps=4), data=photos, progress=False)
    assert load_encoder(dcgan, first_leg).card["data"] is None and encoder.card["data"] == str(photos)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(FacesteerError, match="is a file, not a folder"):
        train_encoder(dcgan, tmp_path / "a-file", options, data=photos)


@requires_models
@requires_celeba
def test_invert_and_edit_photo_commands(tmp_path, run, style):
    photo = str(sorted(CELEBA.glob("*.jpg"))[0])
    torch.manual_seed(0)
    encoder = save_encoder(tmp_path / "e.safetensors", Encoder(64, style.w_dim), LatentPrior.fit(style, "w", num=500),
                           {"generator": style.name})  # fmt: skip
    result = run("invert", photo, "-g", style.name, "--method", "hybrid", "--encoder", str(encoder), "--recipe",
                 "facesteer", "--space", "wp", "--steps", "2", "--out", str(tmp_path / "inv"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "inv" / "codes.npy").shape == (1, style.num_ws, style.w_dim)
    assert load_image(next((tmp_path / "inv").glob("*.png"))).shape[:2] == (
        64 + 4,
        128 + 6,
    )  # aligned | reconstruction, padded
    summary = json.loads((tmp_path / "inv" / "inversion.json").read_text())
    assert summary["method"] == "hybrid" and summary["space"] == "wp" and summary["recipe"]["steps"] == 2

    rng = np.random.default_rng(0)
    Boundary(rng.normal(size=(1, style.w_dim)), "age", "w", style.name).save(tmp_path / "age.npy")
    Boundary(rng.normal(size=(1, style.w_dim)), "gender", "w", style.name).save(tmp_path / "gender.npy")
    grid = tmp_path / "grid.png"
    result = run("edit-photo", photo, photo, "-g", style.name, "-b", str(tmp_path / "age.npy"), "-c",
                 str(tmp_path / "gender.npy"), "-a", "-2", "-a", "2", "--method", "encoder", "--encoder",
                 str(encoder), "--out", str(grid))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "keeping gender" in " ".join(result.stdout.split())  # rich wraps long lines
    assert load_image(grid).shape[:2] == (2 * 64 + 3 * 2, 4 * 64 + 5 * 2)  # 2 rows x (original, rebuilt, 2 edits)


@requires_models
@requires_celeba
def test_edit_photos_edits_along_the_boundary_made_orthogonal_to_its_conditions(style):
    from facesteer.alignment import load_framing
    from facesteer.photo_editing import edit_codes, edit_photos

    rng = np.random.default_rng(3)
    unit = lambda v: (v / np.linalg.norm(v)).astype(np.float32)  # noqa: E731
    age = Boundary(unit(rng.normal(size=(1, style.w_dim))), "age", "w", style.name)
    gender = Boundary(unit(age.normal + unit(rng.normal(size=(1, style.w_dim)))), "gender", "w", style.name)  # cos 0.7
    photo = sorted(CELEBA.glob("*.jpg"))[0]
    how = InversionOptions(method="encoder").resolve(style)
    result = edit_photos([photo], style, load_framing(style.name), age, [-2.0, 2.0], [gender], how)
    assert abs((result.boundary.normal @ gender.normal.T).item()) < 1e-5  # the gender part projected out
    assert 0.5 < (result.boundary.normal @ age.normal.T).item() < 0.9
    expected = edit_codes(style, result.inversion.codes, "w", result.boundary, [-2.0, 2.0])
    np.testing.assert_array_equal(result.edits, expected)
    assert not np.array_equal(result.edits, edit_codes(style, result.inversion.codes, "w", age, [-2.0, 2.0]))


@requires_models
def test_invert_refuses_a_picture_without_a_face(tmp_path, run):
    wall = tmp_path / "wall.png"
    save_png(wall, np.full((96, 96, 3), 180, np.uint8))
    one_line_error(run("invert", str(wall), "-g", "stylegan2-utkface64", "--method", "optim", "--steps", "1",
                       "--out", str(tmp_path / "out")), "no face found", "wall.png")  # fmt: skip
    assert not (tmp_path / "out").exists()
    one_line_error(run("invert", str(wall), "-g", "stylegan2-utkface64", "--method", "teleport", "--out",
                       str(tmp_path / "out")), "unknown inversion method")  # fmt: skip


def test_lpips_to_precomputed_targets_equals_lpips(style):
    from facesteer.perceptual import load_lpips

    lpips = load_lpips()
    a = uint8_to_unit(style.synthesize(style.sample_z(2, 0)))
    b = uint8_to_unit(style.synthesize(style.sample_z(2, 1)))
    torch.testing.assert_close(lpips.distance_to(a, lpips.tapped(b)), lpips(a, b), atol=1e-6, rtol=1e-5)
    # one Adam step moves every coordinate by about lr whatever its gradient's size, so the runs agree to float
    # rounding only at the first step's loss; after that they stay within a small fraction of the steps taken
    recipe = PIXELS_ONLY.with_changes(steps=3, perceptual=1.0)
    cached, cached_losses = optimize_codes(style, b, mean_code(style, "w", 2), recipe, perceptual=lpips)
    plain, plain_losses = optimize_codes(
        style, b, mean_code(style, "w", 2), recipe, perceptual=lambda x, y: lpips(x, y)
    )
    assert cached_losses[0] == pytest.approx(plain_losses[0], rel=1e-6)
    torch.testing.assert_close(cached, plain, atol=0.1 * recipe.learning_rate, rtol=0)


def test_psnr_and_ssim_closed_forms():
    from scipy.ndimage import gaussian_filter

    from facesteer.evaluation.inversion import psnr, ssim

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    assert np.all(np.isinf(psnr(image, image))) and np.allclose(ssim(image, image), 1.0)
    assert psnr(image, image + 1)[0] == pytest.approx(10 * np.log10(255**2), abs=1e-9)  # every pixel off by 1
    # flat images a and b: no variance, so SSIM is the luminance term alone, (2ab + c1) / (a^2 + b^2 + c1)
    a, b, c1 = 100.0, 140.0, (0.01 * 255) ** 2
    flat_a, flat_b = np.full((1, 16, 16, 3), a, np.uint8), np.full((1, 16, 16, 3), b, np.uint8)
    assert ssim(flat_a, flat_b)[0] == pytest.approx((2 * a * b + c1) / (a**2 + b**2 + c1), rel=1e-12)
    # structure: a negative image is anti-correlated, so SSIM is below 0 (luminance alone would keep it positive)
    assert ssim(image, 255 - image)[0] < 0
    # Wang et al.'s definition with scipy's Gaussian (sigma 1.5, 11 taps) over the windows inside the image
    other = rng.integers(0, 255, (1, 32, 32, 3), dtype=np.uint8) // 2 + image[:1] // 2
    x, y = image[0].astype(np.float64), other[0].astype(np.float64)
    blur = lambda v: gaussian_filter(v, sigma=(1.5, 1.5, 0), truncate=5 / 1.5)[5:-5, 5:-5]  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c2 = (0.03 * 255) ** 2
    reference = ((2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean()
    assert ssim(image[:1], other)[0] == pytest.approx(reference, rel=1e-9)


def test_recipes_and_encoders_are_checked_before_any_work(tmp_path, run, style):
    from facesteer.inversion import encoder_for, resolve_recipe

    assert resolve_recipe(style, "hybrid").space == "w"
    assert resolve_recipe(load_generator("dcgan-digiface64"), "optim").space == "z"  # it has no W
    assert resolve_recipe(style, "optim", "nfe").steps == 1000
    with pytest.raises(FacesteerError, match="`method` optim"):
        resolve_recipe(style, "hybrid", "nfe")
    with pytest.raises(FacesteerError, match="unknown recipe"):
        resolve_recipe(style, "optim", "magic")
    with pytest.raises(FacesteerError, match="no encoder is shipped for dcgan-digiface64: use `method` optim"):
        encoder_for(load_generator("dcgan-digiface64"), "hybrid")
    assert encoder_for(style, "optim") is None
    # options the method would ignore are refused, not silently dropped
    with pytest.raises(FacesteerError, match="uses no encoder"):
        encoder_for(style, "optim", tmp_path / "e.safetensors")
    with pytest.raises(FacesteerError, match="runs no optimisation"):
        resolve_recipe(style, "encoder", steps=50)
    with pytest.raises(FacesteerError, match="runs no optimisation"):
        resolve_recipe(style, "encoder", learning_rate=0.1)
    # a Z boundary cannot edit W codes: refused at once, before aligning or inverting anything
    Boundary(np.ones((1, style.z_dim)), "age", "z", style.name).save(tmp_path / "age_z.npy")
    photo = tmp_path / "photo.png"
    save_png(photo, np.zeros((64, 64, 3), np.uint8))  # no face: alignment would fail if it were reached
    one_line_error(run("edit-photo", str(photo), "-g", style.name, "-b", str(tmp_path / "age_z.npy"), "--method",
                       "optim", "--out", str(tmp_path / "grid.png")), "trained in 'z' space")  # fmt: skip
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    save_png(tmp_path / "a" / "x.png", np.zeros((8, 8, 3), np.uint8))
    save_png(tmp_path / "b" / "x.png", np.zeros((8, 8, 3), np.uint8))
    one_line_error(run("invert", str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png"), "-g", style.name,
                       "--method", "optim", "--out", str(tmp_path / "inv")), "share the name 'x'")  # fmt: skip


# ---- pivotal tuning (method pti)


def test_tuning_makes_the_pivot_draw_the_picture_and_leaves_the_generator_alone(style):
    from facesteer.inversion.tuning import TuningRecipe, tune_generator

    picture = style.synthesize(style.sample_z(1, seed=21))  # a face another code draws
    pivot = mean_code(style, "w", 1)
    before = {k: v.clone() for k, v in style.network.state_dict().items()}
    recipe = TuningRecipe(steps=15, learning_rate=5e-3, perceptual=0.0)
    tuned, losses = tune_generator(style, uint8_to_unit(picture), pivot, "w", recipe)
    error = lambda g: np.abs(g.synthesize(pivot.numpy(), "w").astype(float) - picture).mean()  # noqa: E731
    assert error(tuned) < 0.5 * error(style)
    assert losses[-1] < 0.5 * losses[0] and len(losses) == 15
    for key, value in style.network.state_dict().items():  # the shared generator is untouched
        assert torch.equal(value, before[key]), key
    assert not any(p.requires_grad for p in tuned.tunable_parameters())
    again, _ = tune_generator(style, uint8_to_unit(picture), pivot, "w", recipe)
    assert np.array_equal(again.synthesize(pivot.numpy(), "w"), tuned.synthesize(pivot.numpy(), "w"))  # no dice
    with pytest.raises(FacesteerError, match="one picture"):
        tune_generator(style, uint8_to_unit(np.concatenate([picture, picture])), pivot, "w", recipe)
    with pytest.raises(FacesteerError, match="needs LPIPS"):
        tune_generator(style, uint8_to_unit(picture), pivot, "w", TuningRecipe(steps=1))
    with pytest.raises(FacesteerError, match="steps >= 1"):
        TuningRecipe(steps=0)


def test_tuning_loss_is_mse_plus_lpips_over_the_recipes_taps(style):
    from facesteer.inversion.tuning import DEFAULT_TUNING, TuningRecipe, tune_generator
    from facesteer.perceptual import load_lpips

    lpips = load_lpips()
    picture = uint8_to_unit(style.synthesize(style.sample_z(1, seed=21)))
    pivot = mean_code(style, "w", 1)
    with torch.no_grad():
        image = style.synthesize_tensor(pivot, "w")
        mse = (image - picture).square().mean()
        expected = {taps: float(mse + lpips.distance_to(image, lpips.tapped(picture, taps)).sum()) for taps in (3, 5)}
    for taps in (DEFAULT_TUNING.perceptual_taps, 5):  # 3 (to relu3_3) by default; 5 is LPIPS itself
        _, losses = tune_generator(style, picture, pivot, "w", TuningRecipe(steps=1, perceptual_taps=taps), lpips)
        assert losses[0] == pytest.approx(expected[taps], rel=1e-5)
    assert expected[3] != pytest.approx(expected[5], rel=1e-3)
    assert DEFAULT_TUNING.perceptual_taps == 3
    with pytest.raises(FacesteerError, match="LPIPS taps"):
        TuningRecipe(perceptual_taps=6)


def test_locality_regulariser_keeps_the_tuned_copy_near_the_original_around_the_pivot(style):
    from facesteer.inversion.tuning import TuningRecipe, tune_generator
    from facesteer.perceptual import load_lpips

    picture = uint8_to_unit(style.synthesize(style.sample_z(1, seed=21)))
    pivot = mean_code(style, "w", 1)
    plain = TuningRecipe(steps=15, learning_rate=5e-3, perceptual=0.0)
    local = TuningRecipe(steps=15, learning_rate=5e-3, perceptual=0.0, locality=1.0, locality_seed=3)
    # at step 1 the copy is the original, so the neighbour's term (its target: the original's image of it) is 0
    with torch.no_grad():
        expected = float((style.synthesize_tensor(pivot, "w") - picture).square().mean())
    tuned_plain, _ = tune_generator(style, picture, pivot, "w", plain)
    tuned_local, losses = tune_generator(style, picture, pivot, "w", local)
    assert losses[0] == pytest.approx(expected, rel=1e-5)
    assert not any(p.requires_grad for p in tuned_local.tunable_parameters())
    # away from the pivot (codes halfway to fresh random ones) the regularised copy stays nearer the original
    fresh = pivot.numpy() + 0.5 * (style.map(style.sample_z(8, seed=99), "w") - pivot.numpy())
    drift = lambda g: np.abs(g.synthesize(fresh, "w").astype(float) - style.synthesize(fresh, "w")).mean()  # noqa: E731
    assert drift(tuned_local) < 0.8 * drift(tuned_plain)
    target = style.synthesize(style.sample_z(1, seed=21)).astype(float)
    error = lambda g: np.abs(g.synthesize(pivot.numpy(), "w").astype(float) - target).mean()  # noqa: E731
    assert error(tuned_local) < error(style)  # and the pivot still moves toward the picture
    # with LPIPS and a W+ pivot the neighbour's term (features and all) enters from the second step on
    lpips, wide = load_lpips(), pivot[:, None, :].expand(-1, style.space_shape("wp")[0], -1).clone()
    losses = {weight: tune_generator(style, picture, wide, "wp", TuningRecipe(steps=2, locality=weight), lpips)[1]
              for weight in (0.0, 1.0)}  # fmt: skip
    assert losses[1.0][0] == pytest.approx(losses[0.0][0], rel=1e-6)  # the copy is still the original
    assert losses[1.0][1] > losses[0.0][1] + 0.01  # one step on, the neighbour has moved: its term counts
    # the first step's gradient is the pivot's alone (the neighbour's term is 0 at its minimum), so the second
    # step's loss is the pivot's plus the weight times the neighbour's: linear in the weight
    half = tune_generator(style, picture, wide, "wp", TuningRecipe(steps=2, locality=0.5), lpips)[1]
    assert losses[1.0][1] - losses[0.0][1] == pytest.approx(2 * (half[1] - losses[0.0][1]), rel=1e-3)
    other_seed = tune_generator(style, picture, wide, "wp", TuningRecipe(steps=2, locality=1.0, locality_seed=4),
                                lpips)[1]  # fmt: skip
    assert other_seed[1] != pytest.approx(losses[1.0][1], rel=1e-4)  # another neighbour
    with pytest.raises(FacesteerError, match="locality weight"):
        TuningRecipe(locality=-0.1)


def test_pti_inverts_and_edits_each_picture_with_its_own_tuned_generator(tmp_path, style):
    from facesteer.inversion.tuning import TuningRecipe
    from facesteer.photo_editing import edit_codes, save_inversion

    torch.manual_seed(0)
    prior = LatentPrior.fit(style, "w", num=500)
    encoder = load_encoder(style, save_encoder(tmp_path / "e.safetensors", Encoder(64, style.w_dim), prior,
                                               {"generator": style.name}))  # fmt: skip
    pictures = style.synthesize(style.sample_z(2, seed=5))
    tuning = TuningRecipe(steps=3, learning_rate=5e-3, perceptual=0.0)
    result = invert(pictures, style, "pti", FACESTEER_RECIPE, encoder, tuning=tuning)
    plain = invert(pictures, style, "encoder", FACESTEER_RECIPE, encoder)
    np.testing.assert_array_equal(result.codes, plain.codes)  # the pivot is the encoder's code
    assert result.generators is not None and len(result.generators) == 2 and len(result.tuning_losses) == 3
    error = lambda images, i: np.abs(images[i].astype(float) - pictures[i]).mean()  # noqa: E731
    for i in range(2):  # each reconstruction is drawn by its own tuned copy, which was tuned to its own picture
        drawn = result.generator_for(i, style).synthesize(result.codes[i : i + 1], "w")
        np.testing.assert_array_equal(drawn[0], result.reconstructions[i])
        assert error(result.reconstructions, i) < 0.8 * error(plain.reconstructions, i)
    boundary = Boundary(np.ones((1, style.w_dim)), "age", "w", style.name)
    edits = edit_codes(result.generators[1], result.codes[1:], "w", boundary, [0.0])
    np.testing.assert_array_equal(edits[0, 0], result.reconstructions[1])  # alpha 0 = the reconstruction

    save_inversion(tmp_path / "inv", ["a.png", "b.png"], pictures, result, {"method": "pti"})
    reloaded = load_generator(str(tmp_path / "inv" / "b.generator.safetensors"))
    codes = np.load(tmp_path / "inv" / "codes.npy")
    np.testing.assert_array_equal(reloaded.synthesize(codes[1:], "w")[0], result.reconstructions[1])


def test_pti_is_refused_where_its_generators_cannot_be_written(tmp_path, run, style):
    from facesteer.inversion import resolve_tuning
    from facesteer.photo_editing import check_tuned_saveable

    dcgan = load_generator("dcgan-digiface64")
    with pytest.raises(FacesteerError, match="not a StyleGAN2"):
        check_tuned_saveable(dcgan)
    with pytest.raises(FacesteerError, match="implemented for StyleGAN2 generators, not dcgan-digiface64"):
        resolve_tuning(dcgan, "pti")
    with pytest.raises(FacesteerError, match="applies to `method` pti, not hybrid"):
        invert(dcgan.synthesize(dcgan.sample_z(1, 0)), dcgan, "hybrid", tuning=resolve_tuning(style, "pti"))
    photo = tmp_path / "photo.png"
    save_png(photo, np.zeros((64, 64, 3), np.uint8))  # no face: the refusal must come before alignment
    for command in ("invert", "edit-photo"):
        extra = ["-b", "unused.npy"] if command == "edit-photo" else []
        one_line_error(run(command, str(photo), "-g", "dcgan-digiface64", "--method", "pti", *extra, "--out",
                           str(tmp_path / "inv")), "not dcgan-digiface64")  # fmt: skip
    one_line_error(run("invert", str(photo), "-g", "stylegan2-utkface64", "--method", "pti", "--steps", "0",
                       "--out", str(tmp_path / "inv")), "steps >= 1")  # fmt: skip
    assert not (tmp_path / "inv").exists()


def test_the_inversion_options_resolve_once_and_say_what_ran(tmp_path):
    style = load_generator("stylegan2-utkface64")
    hybrid = InversionOptions(steps=7).resolve(style)
    assert (hybrid.method, hybrid.recipe.space, hybrid.recipe.steps, hybrid.tuning) == ("hybrid", "w", 7, None)
    assert hybrid.encoder is not None and hybrid.summary()["recipe"]["steps"] == 7
    pti = InversionOptions(method="pti", steps=5).resolve(style)
    assert pti.summary() == {"method": "pti", "space": pti.recipe.space, "tuning": pti.tuning.__dict__}
    assert pti.tuning.steps == 5 and pti.recipe.steps != 5  # pti's steps are the tuning's
    with pytest.raises(FacesteerError, match="uses no encoder"):
        InversionOptions(method="optim", encoder_file=tmp_path / "e.safetensors").resolve(style)
