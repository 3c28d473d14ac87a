"""The predictor's architecture, loss, metrics and loading (the trained weights have their own test)."""

import numpy as np
import pytest
import torch

from facesteer.attributes.predictor import AttributeNet, PredictorScorer, decode_outputs
from facesteer.errors import FacesteerError
from facesteer.stats import auroc
from facesteer.training.distill import AGREEMENT_GOALS, agreement, distillation_loss, save_predictor


def test_auroc_matches_the_definition():
    assert auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert auroc(np.array([1, 1, 0, 0]), np.array([0.1, 0.2, 0.3, 0.4])) == 0.0
    assert auroc(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.5, 0.5])) == 0.5  # ties count half
    # brute force over all positive-negative pairs
    rng = np.random.default_rng(0)
    labels, values = rng.random(200) < 0.4, np.round(rng.random(200), 1)
    pairs = [(p > n) + 0.5 * (p == n) for p in values[labels] for n in values[~labels]]
    assert auroc(labels, values) == pytest.approx(np.mean(pairs))


def test_agreement_of_identical_scores_is_perfect():
    rng = np.random.default_rng(1)
    scores = np.column_stack(
        [rng.normal(0, 15, 300), rng.random(300), rng.normal(35, 10, 300), rng.random(300), rng.random(300)]
    ).astype(np.float32)
    scores[::7] = np.nan
    metrics = agreement(scores, scores.copy())
    assert metrics["face_found_agreement"] == 1.0 and metrics["both_found"] == 300 - len(scores[::7])
    for name in ("gender_auroc", "eyeglasses_auroc", "smile_auroc", "pose_sign_auroc", "pose_pearson", "age_pearson"):
        assert metrics[name] == pytest.approx(1.0), name


def test_network_shapes_and_decoding():
    network = AttributeNet().eval()
    with torch.no_grad():
        raw = network(torch.zeros(3, 3, 64, 64))
    assert raw.shape == (3, 6)
    raw = torch.tensor([[1.0, 0.0, 1.0, 10.0, -10.0, 5.0], [0.0, 0.0, 0.0, 0.0, 0.0, -5.0]])
    scores = decode_outputs(raw)
    np.testing.assert_allclose(scores[0], [15.0, 0.5, 47.0, 1.0, 0.0], atol=1e-4)
    assert np.isnan(scores[1]).all()  # face probability below 0.5


def test_loss_ignores_attributes_of_faceless_rows():
    raw = torch.zeros(2, 6, requires_grad=True)
    scores = torch.tensor([[10.0, 0.2, 30.0, 0.9, 0.1], [float("nan")] * 5])
    distillation_loss(raw, scores).backward()
    assert raw.grad[1, :5].abs().sum() == 0 and raw.grad[1, 5] != 0
    assert raw.grad[0].abs().min() > 0


def test_age_and_gender_learn_from_unmirrored_faces_only():
    raw = torch.zeros(2, 6, requires_grad=True)
    scores = torch.tensor([[10.0, 0.2, 30.0, 0.9, 0.1], [-10.0, 0.2, 30.0, 0.9, 0.1]])
    distillation_loss(raw, scores, mirrored=torch.tensor([False, True])).backward()
    assert raw.grad[0].abs().min() > 0
    assert raw.grad[1, [2, 3]].abs().sum() == 0  # age, gender of the mirrored row
    assert raw.grad[1, [0, 1, 4, 5]].abs().min() > 0


def test_weights_round_trip_and_bad_files(tmp_path):
    network = AttributeNet().eval()
    card = {
        "parameters": 1,
        "train_runs": [],
        "command": "x",
        "hardware": "cpu",
        "training": {
            "train_images": 0,
            "epochs": 1,
            "batch_size": 1,
            "learning_rate": 1.0,
            "seed": 0,
            "seconds": 1.0,
            "threads": 1,
        },
    }
    metrics = dict.fromkeys(AGREEMENT_GOALS, 0.99) | {"images": 10, "both_found": 9, "age_pearson": 0.5}
    card |= {"evaluation": metrics, "evaluation_run": "held"}
    path = save_predictor(network, tmp_path / "p.safetensors", card)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json", "p.md", "p.safetensors"]
    text = path.with_suffix(".md").read_text()
    assert "| age Pearson r | 0.500 | >= 0.85 | no |" in text
    assert "Short of the goals: age Pearson r 0.500 (goal 0.85)." in text
    scorer = PredictorScorer(path)
    images = np.random.default_rng(0).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    assert scorer.score(images).shape == (5, 5)
    with pytest.raises(FacesteerError, match="64x64"):
        scorer.score(np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(FacesteerError, match="not found"):
        PredictorScorer(tmp_path / "missing.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(FacesteerError, match="not a readable safetensors"):
        PredictorScorer(tmp_path / "bad.safetensors")


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    from facesteer.attributes.teachers import TeacherScorer
    from facesteer.generators import load_generator
    from facesteer.latents import sample_dataset
    from facesteer.modelfiles import MODEL_FILES, models_dir

    from .conftest import models_ready

    if not models_ready():
        pytest.skip(f"teacher model files ({', '.join(MODEL_FILES)}) not found in {models_dir()}")
    folder = tmp_path_factory.mktemp("teach") / "run"
    with TeacherScorer() as scorer:
        sample_dataset(load_generator(), scorer, folder, num=160, seed=9, progress=False)
    return folder


def test_training_is_reproducible_from_a_seed(teacher_run, tmp_path, run):
    for name in ("a", "b"):
        result = run(
            "train-predictor",
            "--data",
            str(teacher_run),
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--seed",
            "3",
            "--out",
            str(tmp_path / f"{name}.safetensors"),
        )
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    card = (tmp_path / "a.md").read_text()
    assert "160 faces" in card and "--seed 3" in card
    assert f"- `{teacher_run}`: 160 faces, seed 9" in card  # the run named with its size and seed


def test_train_predictor_refuses_runs_without_teacher_scores(tmp_path, run, generator):
    from facesteer.latents import sample_dataset

    from .conftest import one_line_error

    sample_dataset(generator, None, tmp_path / "codes", num=8, progress=False)
    one_line_error(
        run("train-predictor", "--data", str(tmp_path / "codes"), "--out", str(tmp_path / "p.safetensors")),
        "not scored by the teachers",
    )
    one_line_error(
        run("train-predictor", "--data", str(tmp_path / "codes"), "--out", str(tmp_path / "p.pt")), ".safetensors"
    )
