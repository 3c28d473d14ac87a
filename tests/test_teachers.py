import contextlib
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from facesteer.attributes import load_scorer
from facesteer.attributes.teachers import TeacherScorer, yaw_degrees
from facesteer.errors import FacesteerError
from facesteer.evaluation.real_photos import check_scorer_on_utkface
from facesteer.modelfiles import MODEL_FILES, models_dir

from .conftest import UTKFACE, requires_models, requires_utkface


@pytest.fixture(scope="module")
def faces_and_scores(generator, teachers):
    images = generator.synthesize(generator.sample_z(64, seed=0))
    return images, teachers.score(images)


@requires_models
def test_teachers_find_most_generated_faces(faces_and_scores):
    _, scores = faces_and_scores
    assert scores.shape == (64, 5) and scores.dtype == np.float32
    found = ~np.isnan(scores).all(axis=1)
    assert found.mean() >= 0.8, f"faces found in {found.sum()} of 64"
    # a row is all-NaN or all-measured: every attribute needs the face
    assert np.array_equal(np.isnan(scores).any(axis=1), ~found)


@requires_models
def test_attribute_ranges_and_spread(faces_and_scores):
    _, scores = faces_and_scores
    pose, smile, age, gender, glasses = scores[~np.isnan(scores).any(axis=1)].T
    assert pose.min() >= -90 and pose.max() <= 90 and pose.std() > 5
    assert smile.min() >= 0 and smile.max() <= 1 and smile.max() > 0.3
    assert age.min() >= 0 and age.max() <= 110 and age.std() > 3
    for probability in (gender, glasses):
        assert probability.min() >= 0 and probability.max() <= 1
        assert probability.min() < 0.2 and probability.max() > 0.8  # both classes appear in 64 faces


@requires_models
def test_mirrored_face_flips_the_sign_of_pose(faces_and_scores, teachers):
    images, scores = faces_and_scores
    mirrored = teachers.score(np.ascontiguousarray(images[:, :, ::-1]))
    both = ~np.isnan(scores[:, 0]) & ~np.isnan(mirrored[:, 0])
    turned = both & (np.abs(scores[:, 0]) > 5)
    assert turned.sum() >= 10
    flipped = np.sign(scores[turned, 0]) != np.sign(mirrored[turned, 0])
    assert flipped.mean() >= 0.9, f"{flipped.sum()} of {turned.sum()} turned faces flipped"
    assert np.corrcoef(scores[both, 0], mirrored[both, 0])[0, 1] < -0.9
    # age should not care about mirroring; on 64-px generated faces the age model is noisy (r = 0.62 seen)
    assert np.corrcoef(scores[both, 2], mirrored[both, 2])[0, 1] > 0.5


def test_yaw_of_known_rotations():
    def yaw_matrix(degrees):
        a = np.radians(degrees)
        matrix = np.eye(4)
        matrix[:3, :3] = [[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]
        return matrix

    for degrees in (-40, -5, 0, 12, 60):
        assert yaw_degrees(yaw_matrix(degrees)) == pytest.approx(degrees, abs=1e-9)


@requires_models
@requires_utkface
def test_age_and_gender_on_real_utkface_photos(teachers):
    result = check_scorer_on_utkface(teachers, UTKFACE, num=500, seed=0, min_age=15, progress=False)
    adults = result["adults"]
    assert adults["faces"] >= 300
    assert adults["gender_accuracy"] >= 0.90, adults
    assert adults["age_mae"] <= 8.0, adults


@requires_models
def test_bad_images_are_refused(teachers):
    with pytest.raises(FacesteerError, match=r"\(N, H, W, 3\)"):
        teachers.score(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(FacesteerError, match="uint8"):
        teachers.score(np.zeros((1, 64, 64, 3), np.float32))


@requires_models
def test_blank_image_has_no_face(teachers):
    scores = teachers.score(np.full((2, 64, 64, 3), 128, np.uint8))
    assert np.isnan(scores).all()


def test_missing_model_file_names_file_and_place(tmp_path):
    with pytest.raises(FacesteerError, match=r"face_landmarker\.task not found in .*FACESTEER_MODELS"):
        load_scorer("teachers", tmp_path)


@requires_models
def test_corrupt_model_file_is_refused(tmp_path):
    for name in MODEL_FILES:
        shutil.copy(models_dir() / name, tmp_path / name)
    with (tmp_path / "glasses_fp16.tflite").open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02")
    with pytest.raises(FacesteerError, match=r"glasses_fp16\.tflite is corrupt"):
        TeacherScorer(tmp_path)


def test_unknown_scorer():
    with pytest.raises(FacesteerError, match="unknown scorer 'oracle'"):
        load_scorer("oracle")


@requires_models
def test_parallel_scoring_gives_the_same_scores(faces_and_scores):
    images, scores = faces_and_scores
    with load_scorer("teachers", workers=2) as parallel:
        assert parallel.attributes == ("pose", "smile", "age", "gender", "eyeglasses")
        np.testing.assert_array_equal(parallel.score(images[:24]), scores[:24])


def test_parallel_scorer_reports_missing_files_before_starting_workers(tmp_path):
    with pytest.raises(FacesteerError, match=r"face_landmarker\.task not found"):
        load_scorer("teachers", tmp_path, workers=2)


class _DyingScorer:
    name, attributes = "dying", ("x",)

    def score(self, images: np.ndarray) -> np.ndarray:
        import os

        os._exit(3)  # as a crash in native code or the out-of-memory killer would end the worker

    def config(self) -> dict:
        return {}


def _build_failing(name, models, workers=1):
    raise FacesteerError("age-v1.onnx is missing or altered: reinstall facesteer")


def _build_dying(name, models, workers=1):
    return _DyingScorer()


class _SleepyScorer:
    name, attributes = "sleepy", ("x",)

    def score(self, images: np.ndarray) -> np.ndarray:
        import os
        import time

        if os.environ.get("SLEEPY_MARKERS"):  # say which worker process is now busy
            Path(os.environ["SLEEPY_MARKERS"], str(os.getpid())).touch()
        time.sleep(3600)  # a scorer stuck in a long chunk
        return np.zeros((len(images), 1), np.float32)

    def config(self) -> dict:
        return {}


def _build_sleepy(name, models, workers=1):
    return _SleepyScorer()


#: the scripts below are sent SIGINT as a user's Ctrl-C: they restore Python's handler first, since a process
#: started in the background (`make test &`, nohup, CI runners) inherits SIGINT ignored and would never see it
_SLEEPY_PARENT = """
import os, signal, sys, threading
signal.signal(signal.SIGINT, signal.default_int_handler)
import numpy as np
from facesteer.attributes.parallel import ParallelScorer
from tests.test_teachers import _build_sleepy
scorer = ParallelScorer(_build_sleepy, "sleepy", None, 2)
print(" ".join(str(pid) for pid in scorer._pool._processes), flush=True)
if sys.argv[1] == "interrupt":  # Ctrl-C while the workers are busy: the script must end now, not in an hour
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
    try:
        scorer.score(np.zeros((4, 8, 8, 3), np.uint8))
    except KeyboardInterrupt:
        print("interrupted", flush=True)
else:
    threading.Event().wait()  # until killed
"""


_INTERRUPTED_WHILE_STARTING_A_WORKER = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
import multiprocessing.context
from pathlib import Path
import numpy as np
from facesteer.attributes.parallel import ParallelScorer
from tests.test_teachers import _build_sleepy
os.environ["SLEEPY_MARKERS"] = sys.argv[1]
scorer = ParallelScorer(_build_sleepy, "sleepy", None, 2)  # one worker so far: score() starts the second
start = multiprocessing.context.SpawnProcess.start
def start_then_ctrl_c(process):  # Ctrl-C lands after the worker started, before the executor records it
    start(process)
    deadline = time.monotonic() + 100
    while not Path(sys.argv[1], str(process.pid)).exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # until the new worker is busy with a chunk
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.5)  # (the interrupt is raised here, between two bytecodes)
multiprocessing.context.SpawnProcess.start = start_then_ctrl_c
try:
    scorer.score(np.zeros((4, 8, 8, 3), np.uint8))
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_ctrl_c_while_a_worker_starts_ends_the_scorer(tmp_path):
    """A full `make test` under load hung for 300 s: a SIGINT that lands while the executor starts a worker
    process is raised before the executor records it, so close() did not kill that worker, and the interpreter's
    exit waited for its chunk (an hour here). Deterministic: the interrupt is sent from inside the worker's start,
    once the worker is busy."""
    import subprocess
    import sys

    root = str(Path(__file__).parent.parent)
    try:
        result = subprocess.run([sys.executable, "-c", _INTERRUPTED_WHILE_STARTING_A_WORKER, str(tmp_path)],
                                capture_output=True, text=True, cwd=root, timeout=180)  # fmt: skip
    except subprocess.TimeoutExpired:
        for marker in tmp_path.iterdir():  # the orphaned worker (it would end with its parent, killed by run())
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(marker.name), signal.SIGKILL)
        pytest.fail("the script did not end: a worker outlived close()")
    assert "interrupted" in result.stdout, result.stderr
    assert len(list(tmp_path.iterdir())) == 2  # both workers were busy


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return any(line.split()[:2] == ["State:", "Z"] for line in status)  # exited, not yet reaped
    except FileNotFoundError:
        return True


def test_parallel_scorer_workers_end_with_their_parent_and_on_ctrl_c():
    """ProcessPoolExecutor's workers outlived a parent killed outright (the sampler killed mid-run: 400 MB each)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root = str(Path(__file__).parent.parent)
    parent = subprocess.Popen([sys.executable, "-c", _SLEEPY_PARENT, "kill"], stdout=subprocess.PIPE, text=True,
                              cwd=root)  # fmt: skip
    workers = [int(pid) for pid in parent.stdout.readline().split()]
    assert workers  # (the executor starts its workers as tasks arrive: one has answered so far)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 60  # (they end within a second; the margin is for a loaded machine)
    while not all(_gone(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = [pid for pid in workers if not _gone(pid)]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive

    interrupted = subprocess.run([sys.executable, "-c", _SLEEPY_PARENT, "interrupt"], capture_output=True,
                                 text=True, cwd=root, timeout=300)  # fmt: skip
    assert "interrupted" in interrupted.stdout, interrupted.stderr


def test_parallel_scorer_reports_a_worker_that_cannot_start_or_dies():
    """multiprocessing.Pool respawned workers whose scorer could not be built, forever: the call never returned."""
    from facesteer.attributes.parallel import ParallelScorer

    with pytest.raises(FacesteerError, match=r"age-v1\.onnx is missing or altered"):
        ParallelScorer(_build_failing, "teachers", None, 2)
    with ParallelScorer(_build_dying, "dying", None, 2) as dying:
        assert dying.attributes == ("x",)
        with pytest.raises(FacesteerError, match="worker process of the dying scorer died"):
            dying.score(np.zeros((4, 8, 8, 3), np.uint8))


@requires_models
def test_the_extended_scorer_adds_size_race_and_action_units(faces_and_scores, teachers):
    from facesteer.attributes import load_scorer
    from facesteer.attributes.base import EXTENDED_ATTRIBUTES, FACE_ATTRIBUTES

    faces, scores = faces_and_scores
    with load_scorer("extended") as extended:
        assert extended.attributes == FACE_ATTRIBUTES + EXTENDED_ATTRIBUTES
        more = extended.score(np.concatenate([faces[:12], np.zeros((1, 64, 64, 3), np.uint8)]))
    assert more.shape == (13, 16) and np.isnan(more[12]).all()  # a blank image: no face, no race either
    found = ~np.isnan(more[:12, 0])
    assert found.sum() >= 10
    np.testing.assert_array_equal(more[:12, :5], scores[:12])  # the teachers' five, unchanged
    columns = {name: more[:12][found, i] for i, name in enumerate(extended.attributes)}
    race = np.stack([columns[f"race_{r}"] for r in ("white", "black", "asian", "indian")], axis=1)
    assert np.all(race >= 0) and np.all(race.sum(axis=1) <= 1 + 1e-6)
    for unit in ("au1", "au6", "au9", "au12", "au25_26"):
        assert np.all((columns[unit] >= 0) & (columns[unit] <= 1))
    np.testing.assert_array_equal(columns["au12"], columns["smile"])
    assert np.all((columns["face_width"] > 0.2) & (columns["face_width"] < 1.2))


@requires_utkface
def test_the_race_network_reads_held_out_utkface_photos():
    from facesteer.attributes.race import load_race_network, race_probabilities
    from facesteer.datasets import evenly_spaced, load_images, utkface_faces

    faces = utkface_faces(UTKFACE)
    held = set(evenly_spaced([f.path for f in faces], round(len(faces) * 0.1)))  # the photos training held out
    chosen = [f for f in faces if f.path in held][:120]
    network, card = load_race_network()
    predicted = race_probabilities(network, load_images([f.path for f in chosen], 64, progress=False)).argmax(1)
    accuracy = float(np.mean(predicted == np.array([f.race for f in chosen])))
    assert accuracy >= 0.65, accuracy  # the card states 0.781 on all 978; chance (the largest group) is 0.54
    assert card["photos"]["held_out"] == len(held)
