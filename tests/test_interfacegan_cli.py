"""The InterFaceGAN commands end to end on a small real run (default generator, real teachers)."""

import json

import numpy as np
import pytest
from PIL import Image

from facesteer.boundaries import Boundary
from facesteer.latents import LatentDataset

from .conftest import SHARED, one_line_error, requires_models

PUBLISHED_AGE = SHARED / "models" / "interfacegan-boundaries" / "original" / "stylegan_ffhq_age_boundary.npy"


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """300 scored samples, sampled once for the module."""
    from facesteer.attributes.teachers import TeacherScorer
    from facesteer.generators import load_generator
    from facesteer.latents import sample_dataset

    folder = tmp_path_factory.mktemp("run") / "r"
    with TeacherScorer() as scorer:
        sample_dataset(load_generator(), scorer, folder, num=300, seed=0, progress=False)
    return folder


@requires_models
def test_train_condition_correlate_edit_evaluate(run, small_run, tmp_path):
    result = run("train-boundary", str(small_run), "--all", "--ratio", "0.15", "--json")
    assert result.returncode == 0, result.stderr
    trained = json.loads(result.stdout)
    assert set(trained) == {"pose", "smile", "age", "gender", "eyeglasses"}
    # pose and smile are the clearest attributes of these faces: well above chance even at 300 samples
    assert trained["pose"]["validation_accuracy"] > 0.75 and trained["smile"]["validation_accuracy"] > 0.75
    folder = small_run / "boundaries"
    pose = Boundary.load(folder / "pose.npy")
    assert pose.normal.shape == (1, 100) and pose.generator == "dcgan-digiface64"

    out = tmp_path / "age_c.npy"
    result = run(
        "condition",
        str(folder / "age.npy"),
        "--on",
        str(folder / "gender.npy"),
        str(folder / "pose.npy"),
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    conditioned = Boundary.load(out)
    assert conditioned.conditions == ["gender", "pose"]
    for other in ("gender", "pose"):
        assert abs(float(conditioned.normal[0] @ Boundary.load(folder / f"{other}.npy").normal[0])) < 1e-5
    repeated = tmp_path / "age_c2.npy"  # --on repeated: every file counts (the option kept only the last)
    result = run("condition", str(folder / "age.npy"), "--on", str(folder / "gender.npy"), "--on",
                 str(folder / "pose.npy"), "--out", str(repeated))  # fmt: skip
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(Boundary.load(repeated).normal, conditioned.normal)
    # conditioning again would undo the first projection while the sidecar still listed it
    one_line_error(run("condition", str(out), "--on", str(folder / "smile.npy"), "--out", str(tmp_path / "x.npy")),
                   "already conditioned on gender, pose")  # fmt: skip
    one_line_error(run("evaluate", str(small_run), "--scorer", "extended", "--workers", "1"),
                   "was scored for pose, smile, age, gender, eyeglasses")  # fmt: skip

    result = run("correlate", *(str(folder / f"{a}.npy") for a in ("pose", "smile", "age")), "--json")
    matrix = np.array(json.loads(result.stdout)["cosine"])
    assert matrix.shape == (3, 3) and np.allclose(np.diag(matrix), 1) and np.allclose(matrix, matrix.T)

    grid = tmp_path / "grid.png"
    result = run("edit", "--boundary", str(folder / "smile.npy"), "--num", "2", "--steps", "5", "--out", str(grid))
    assert result.returncode == 0, result.stderr
    assert Image.open(grid).size[1] > 2 * 64

    result = run("evaluate", str(small_run), "--edit-codes", "12", "--identity-codes", "2", "--workers", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    kept = report["by_space"]["z"]["identity_kept"]
    assert set(kept) == {"plain", "conditioned"} and set(kept["plain"]) == set(report["attributes"])
    for rows in kept["plain"].values():
        assert [row["alpha"] for row in rows] == [1.0, 2.0, 3.0]
        assert all(row["faces"] <= 4 and (row["faces"] == 0 or 0 <= row["kept"] <= 1 - row["lost"]) for row in rows)
    assert "## 5. Identity kept" in (small_run / "report.md").read_text()
    assert (small_run / "figures" / "identity_kept.png").is_file()
    plain = np.array(report["edit_effects_standardized"]["plain"])
    assert plain.shape == (5, 5)
    assert plain[0, 0] > 0.1  # editing pose changes the measured pose, in the boundary's direction
    assert (small_run / "report.md").is_file() and (small_run / "figures" / "edit_effects_plain.png").is_file()


@requires_models
def test_custom_scores(run, small_run, tmp_path):
    codes = np.load(small_run / "z.npy")
    custom = codes[:, 3] + 0.1 * codes[:, 7]  # a made-up attribute: its boundary must point along dims 3 and 7
    np.save(tmp_path / "mine.npy", custom.reshape(-1, 1))
    out = tmp_path / "mine_boundary.npy"
    result = run(
        "train-boundary",
        str(small_run),
        "--attribute",
        "mine",
        "--scores",
        str(tmp_path / "mine.npy"),
        "--ratio",
        "0.2",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    normal = Boundary.load(out).normal[0]
    assert abs(normal[3]) == np.abs(normal).max() and normal[3] > 0


@requires_models
@pytest.mark.parametrize(
    ("scores", "message"),
    [
        (np.arange(299.0), "differ in length"),
        (np.r_[np.arange(299.0), np.inf], "infinite"),
        (np.full(300, 0.5), "are equal"),
        (np.zeros((300, 2)), "shape"),
        (np.r_[np.arange(10.0), np.full(290, np.nan)], "too few valid samples"),
    ],
)
def test_bad_custom_scores_exit_2(run, small_run, tmp_path, scores, message):
    np.save(tmp_path / "bad.npy", scores)
    result = run(
        "train-boundary",
        str(small_run),
        "--attribute",
        "x",
        "--scores",
        str(tmp_path / "bad.npy"),
        "--out",
        str(tmp_path / "x.npy"),
    )
    one_line_error(result, message)
    assert not (tmp_path / "x.npy").exists()


@requires_models
def test_bad_boundary_commands_exit_2(run, small_run, tmp_path):
    one_line_error(run("train-boundary", str(small_run), "--attribute", "beauty"), "no attribute 'beauty'")
    one_line_error(run("train-boundary", str(small_run)), "--attribute NAME or --all")
    one_line_error(run("train-boundary", str(tmp_path)), "not a facesteer latent dataset")
    one_line_error(run("correlate", str(tmp_path / "missing.npy")), "not found")
    if PUBLISHED_AGE.is_file():
        one_line_error(
            run("edit", "--boundary", str(PUBLISHED_AGE), "--out", str(tmp_path / "g.png")),
            "dimension 512",
            "dimension 100",
        )
        pose = small_run / "boundaries" / "pose.npy"
        if pose.is_file():
            one_line_error(run("correlate", str(pose), str(PUBLISHED_AGE)), "different dimensions")


@requires_models
def test_demo_labels_with_the_predictor_and_checks_with_the_teachers(run, tmp_path):
    out = tmp_path / "demo"
    result = run(
        "demo", "--out", str(out), "--num", "400", "--edit-codes", "8", "--identity-codes", "0", "--workers", "1"
    )
    assert result.returncode == 0, result.stderr
    assert LatentDataset(out).manifest["scorer"]["name"] == "predictor"
    report = (out / "report.md").read_text()
    assert "labelled by `predictor`" in report and "measured by `teachers`" in report
    assert sorted(p.stem for p in (out / "boundaries").glob("*.npy")) == [
        "age",
        "eyeglasses",
        "gender",
        "pose",
        "smile",
    ]
