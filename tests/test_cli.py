import json

import numpy as np
from PIL import Image

from facesteer.attributes.anime import ANIME_ATTRIBUTES

from .conftest import UTKFACE, one_line_error, requires_models


def test_info_json_lists_generators_scorers_and_model_files(run):
    result = run("info", "--json")
    assert result.returncode == 0, result.stderr
    content = json.loads(result.stdout)
    names = [g["name"] for g in content["generators"]]
    assert names == ["dcgan-digiface64", "stylegan2-anime64", "stylegan2-utkface64"]  # the default first
    assert {f["name"] for f in content["model_files"]} == {"face_landmarker.task", "glasses_fp16.tflite"}
    extended = {"face_width", "face_height", "race_white", "race_black", "race_asian", "race_indian", "au1", "au6",
                "au9", "au12", "au25_26"}  # fmt: skip
    anime = set(ANIME_ATTRIBUTES)
    assert {a["name"] for a in content["attributes"]} == {
        "pose",
        "smile",
        "age",
        "gender",
        "eyeglasses",
    } | extended | anime


def test_info_reports_missing_model_files(run, tmp_path):
    result = run("info", "--json", "--models", str(tmp_path))
    statuses = {f["name"]: f["status"] for f in json.loads(result.stdout)["model_files"]}
    assert statuses == {"face_landmarker.task": "missing", "glasses_fp16.tflite": "missing"}


def test_generate_writes_a_grid(run, tmp_path):
    out = tmp_path / "grid.png"
    result = run("generate", "--num", "6", "--seed", "0", "--columns", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    grid = np.asarray(Image.open(out))
    assert grid.shape == (2 * 66 + 2, 3 * 66 + 2, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]


def test_bad_arguments_give_one_line_and_exit_2(run, tmp_path):
    one_line_error(run("generate", "--num", "abc", "--out", str(tmp_path / "x.png")), "--num")
    one_line_error(run("generate", "--num", "0", "--out", str(tmp_path / "x.png")), "--num")
    one_line_error(run("generate"), "--out")
    (tmp_path / "file").write_text("")
    one_line_error(run("generate", "--out", str(tmp_path / "file" / "x.png")), "cannot write")
    one_line_error(run("generate", "--generator", "nope", "--out", str(tmp_path / "x.png")), "nope")
    one_line_error(run("sample", "--num", "5", "--out", str(tmp_path / "s"), "--scorer", "oracle"), "oracle")
    one_line_error(run("no-such-command"), "no-such-command")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_library_errors_name_parameters_and_the_cli_shows_their_flags(run, tmp_path):
    from facesteer.errors import FacesteerError
    from facesteer.generators import load_generator
    from facesteer.inversion import InversionOptions

    style = load_generator("stylegan2-utkface64")
    try:
        InversionOptions(method="encoder", learning_rate=0.1).resolve(style)
    except FacesteerError as error:  # the Python API's words are its parameters' names
        assert "drop `steps` and `learning_rate`" in str(error)
    picture = tmp_path / "p.png"
    Image.new("RGB", (64, 64)).save(picture)
    result = run("invert", str(picture), "-g", "stylegan2-utkface64", "--method", "encoder", "--lr", "0.1",
                 "--out", str(tmp_path / "o"))  # fmt: skip
    one_line_error(result, "--method encoder runs no optimisation: drop --steps and --lr, or use --method hybrid")
    result = run("train-race", "--data", str(tmp_path), "--out", str(tmp_path / "race.pt"))
    one_line_error(result, "--out must end in .safetensors")


def test_missing_model_file_names_it_and_where_to_put_it(run, tmp_path, monkeypatch):
    result = run("sample", "--num", "4", "--out", str(tmp_path / "s"), "--models", str(tmp_path))
    one_line_error(result, "face_landmarker.task", str(tmp_path), "Get it from")
    monkeypatch.setenv("FACESTEER_MODELS", str(tmp_path))
    result = run("sample", "--num", "4", "--out", str(tmp_path / "s"))
    one_line_error(result, "face_landmarker.task", str(tmp_path))


@requires_models
def test_sample_refuses_another_seed(run, tmp_path):
    out = tmp_path / "run"
    assert run("sample", "--num", "8", "--seed", "0", "--out", str(out), "-q").returncode == 0
    one_line_error(run("sample", "--num", "8", "--seed", "1", "--out", str(out), "-q"), "different run", "seed")


@requires_models
def test_check_scorer_json(run, tmp_path):
    result = run("check-scorer", "--data", str(UTKFACE), "--num", "20", "--json")
    assert result.returncode == 0, result.stderr
    content = json.loads(result.stdout)
    assert content["num"] == 20 and 0 <= content["all"]["gender_accuracy"] <= 1
