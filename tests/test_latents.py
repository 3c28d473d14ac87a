import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from facesteer.errors import FacesteerError
from facesteer.latents import LatentDataset, sample_dataset

from .conftest import requires_models

SAMPLE = [sys.executable, "-m", "facesteer.cli", "sample", "--generator", "dcgan-digiface64", "--seed", "5", "-q"]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_codes_only_dataset(generator, tmp_path):
    dataset = sample_dataset(generator, None, tmp_path / "run", num=100, seed=2, chunk_size=32, progress=False)
    assert dataset.is_complete and dataset.num == 100 and dataset.attributes == []
    codes = dataset.codes("z")
    assert codes.shape == (100, 100) and codes.dtype == np.float32
    np.testing.assert_array_equal(codes, generator.sample_z(100, seed=2))
    with pytest.raises(FacesteerError, match="without a scorer"):
        dataset.scores()
    with pytest.raises(FacesteerError, match="no 'w' codes"):
        dataset.codes("w")


@requires_models
def test_scored_dataset_matches_direct_scoring(generator, teachers, tmp_path):
    dataset = sample_dataset(generator, teachers, tmp_path / "run", num=24, seed=1, chunk_size=16, progress=False)
    assert dataset.attributes == ["pose", "smile", "age", "gender", "eyeglasses"]
    expected = teachers.score(generator.synthesize(generator.sample_z(24, seed=1)))
    np.testing.assert_array_equal(dataset.scores(), expected)
    np.testing.assert_array_equal(dataset.scores("age"), expected[:, 2])
    assert dataset.manifest["rows_without_face"] == int(np.isnan(expected).all(axis=1).sum())


def _run_and_kill(command: list[str], out: Path, kill_when) -> None:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if kill_when(out):
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait()


def _rows_complete(out: Path) -> int:
    try:
        return json.loads((out / "manifest.json").read_text())["rows_complete"]
    except (FileNotFoundError, json.JSONDecodeError):
        return -1


@requires_models
def test_killed_runs_resume_to_identical_files(tmp_path):
    args = ["--num", "80", "--chunk-size", "16", "--scorer", "teachers"]
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    subprocess.run([*SAMPLE, *args, "--out", str(clean)], check=True)

    # kill right after the manifest appears, then in the middle of the run, then finish
    _run_and_kill([*SAMPLE, *args, "--out", str(killed)], killed, lambda out: _rows_complete(out) >= 0)
    assert _rows_complete(killed) < 80
    _run_and_kill([*SAMPLE, *args, "--out", str(killed)], killed, lambda out: _rows_complete(out) >= 32)
    assert 32 <= _rows_complete(killed) < 80
    subprocess.run([*SAMPLE, *args, "--out", str(killed)], check=True)

    assert _files(killed) == _files(clean)
    assert LatentDataset(clean).is_complete


def test_a_different_run_is_refused_and_nothing_is_touched(generator, tmp_path):
    out = tmp_path / "run"
    sample_dataset(generator, None, out, num=40, seed=0, chunk_size=16, progress=False)
    before = _files(out)
    for kwargs, field in [({"seed": 1}, "seed"), ({"num": 41}, "num"), ({"chunk_size": 8}, "chunk_size")]:
        arguments = {"num": 40, "seed": 0, "chunk_size": 16, **kwargs}
        with pytest.raises(FacesteerError, match=f"holds a different run \\({field}"):
            sample_dataset(generator, None, out, progress=False, **arguments)
    assert _files(out) == before


def test_a_disk_too_small_for_the_arrays_is_refused_before_sampling(generator, tmp_path, monkeypatch):
    """The arrays are preallocated sparse files: a disk filling up mid-run ended the process with SIGBUS."""
    import errno
    import os

    reserved = []

    def full_disk(fd, offset, length):
        reserved.append(length)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full_disk)
    with pytest.raises(FacesteerError, match=r"not enough disk space for .*z\.npy"):
        sample_dataset(generator, None, tmp_path / "run", num=40, seed=0, chunk_size=16, progress=False)
    assert reserved == [128 + 40 * generator.z_dim * 4]  # the whole array (header and rows), before any row
    monkeypatch.undo()  # a retry once there is room starts the run afresh
    assert sample_dataset(generator, None, tmp_path / "run", num=40, seed=0, chunk_size=16, progress=False).is_complete


def test_a_damaged_run_is_one_line_not_a_traceback(generator, tmp_path):
    out = tmp_path / "run"
    sample_dataset(generator, None, out, num=40, seed=0, chunk_size=16, progress=False)
    codes = out / "z.npy"
    codes.write_bytes(codes.read_bytes()[:-4000])  # cut short (a full disk, a bad copy)
    with pytest.raises(FacesteerError, match=r"z\.npy is missing or damaged"):
        LatentDataset(out).codes()
    codes.unlink()
    with pytest.raises(FacesteerError, match=r"z\.npy is missing or damaged"):
        LatentDataset(out).codes()


@requires_models
def test_a_different_scorer_or_generator_is_refused(generator, teachers, tmp_path):
    out = tmp_path / "run"
    sample_dataset(generator, None, out, num=8, seed=0, progress=False)
    with pytest.raises(FacesteerError, match=r"different run \(scorer"):
        sample_dataset(generator, teachers, out, num=8, seed=0, progress=False)

    class Renamed(type(generator)):
        name = "another-generator"

    with pytest.raises(FacesteerError, match=r"different run \(generator"):
        sample_dataset(Renamed(), None, out, num=8, seed=0, progress=False)


def test_a_foreign_directory_is_refused(generator, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FacesteerError, match="not empty and is not a facesteer dataset"):
        sample_dataset(generator, None, tmp_path, num=4, seed=0, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_corrupt_manifest_is_reported(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(FacesteerError, match="corrupt"):
        LatentDataset(tmp_path)
    with pytest.raises(FacesteerError, match=r"no manifest\.json"):
        LatentDataset(tmp_path / "missing")


def test_bad_sizes_are_refused(generator, tmp_path):
    with pytest.raises(FacesteerError, match="at least 1"):
        sample_dataset(generator, None, tmp_path / "a", num=0, progress=False)
    with pytest.raises(FacesteerError, match="seed must be >= 0"):
        generator.sample_z(3, seed=-1)


def test_an_incomplete_run_is_refused_for_training(generator, tmp_path):
    import json

    out = tmp_path / "run"
    sample_dataset(generator, None, out, num=40, seed=0, chunk_size=16, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["rows_complete"] = 16  # as a run killed after its first chunk leaves it
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FacesteerError, match="incomplete \\(16 of 40 rows\\)"):
        LatentDataset(out).require_complete()
