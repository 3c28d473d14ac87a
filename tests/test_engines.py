"""The engines on a real Ray (no mock): a local instance started here, and a two-node cluster on this machine.

Every run is compared byte for byte with the local engine's files for the same seed and options.
"""

from __future__ import annotations

import filecmp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from facesteer.engines import Chunk, LocalEngine, ScorerSpec, compute_rows, engine_factory
from facesteer.errors import FacesteerError
from facesteer.generators import load_generator
from facesteer.latents import sample_dataset
from tests.conftest import requires_models

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402 (after the skip)

from facesteer.engines.ray_cluster import RayEngine  # noqa: E402

FILES = ("manifest.json", "z.npy", "scores.npy")


@pytest.fixture(scope="module")
def local_ray():
    """One Ray instance of 2 CPUs for the module (engines made while it runs join it and leave it running)."""
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, logging_level="warning", log_to_driver=False)
    yield
    ray.shutdown()


def same_files(a: Path, b: Path, names: tuple[str, ...] = FILES) -> bool:
    return all(filecmp.cmp(a / name, b / name, shallow=False) for name in names)


def predictor_run(generator, out: Path, engine=None, num: int = 200):
    from facesteer.attributes import load_scorer

    with load_scorer("predictor") as scorer:
        return sample_dataset(generator, scorer, out, num, seed=3, chunk_size=40, batch_size=16, progress=False,
                              engine=engine)  # fmt: skip


def test_ray_gives_the_local_engine_s_bytes_with_the_predictor(generator, tmp_path, local_ray):
    predictor_run(generator, tmp_path / "local")
    engine = RayEngine(generator, ScorerSpec("predictor"), workers=2)
    try:
        assert len({pid for _, _, pid in engine.workers}) == 2  # two actor processes did the work
        predictor_run(generator, tmp_path / "ray", engine)
    finally:
        engine.close()
    assert same_files(tmp_path / "local", tmp_path / "ray")
    assert ray.is_initialized()  # an engine that joined a running Ray leaves it running


@requires_models
def test_ray_gives_the_local_engine_s_bytes_with_the_teachers(generator, tmp_path, local_ray):
    from facesteer.attributes import load_scorer

    def run(out: Path, engine=None) -> None:
        with load_scorer("teachers") as scorer:
            sample_dataset(generator, scorer, out, 48, seed=5, chunk_size=16, batch_size=8, progress=False,
                           engine=engine)  # fmt: skip

    run(tmp_path / "local")
    engine = RayEngine(generator, ScorerSpec("teachers"), workers=2)
    try:
        run(tmp_path / "ray", engine)
    finally:
        engine.close()
    assert same_files(tmp_path / "local", tmp_path / "ray")


def test_a_worker_killed_mid_run_costs_only_its_chunk(generator, local_ray):
    """kill -9 of an actor's process: Ray restarts it and runs its chunks again; the rows are the same."""
    chunks = [Chunk(7, start, start + 30, ("w",) if "w" in generator.spaces else (), 10) for start in range(0, 300, 30)]
    expected = [compute_rows(generator, None, chunk)["z"] for chunk in chunks]
    engine = RayEngine(generator, None, workers=2)
    try:
        got, victim = [], engine.workers[0][2]
        for index, (chunk, rows) in enumerate(engine.map(chunks)):
            if index == 0:
                os.kill(victim, signal.SIGKILL)  # chunks of that actor are in flight now
            got.append((chunk, rows["z"]))
        assert [chunk for chunk, _ in got] == chunks  # each chunk once, in order
        assert all(np.array_equal(rows, want) for (_, rows), want in zip(got, expected, strict=True))
        pids = [pid for *_, pid in engine._wait_until_ready()]
        assert victim not in pids  # the killed actor was replaced
    finally:
        engine.close()


def test_a_worker_that_cannot_build_its_scorer_is_one_error_naming_its_node(generator, tmp_path, local_ray):
    empty = tmp_path / "no-models"
    empty.mkdir()
    with pytest.raises(FacesteerError, match=r"a Ray worker on node [0-9.]+ \(\w+\) cannot start: .*face_landmarker"):
        RayEngine(generator, ScorerSpec("teachers", models=str(empty)), workers=1)


def test_more_workers_than_the_cluster_holds_is_refused_not_a_hang(generator, local_ray):
    with pytest.raises(FacesteerError, match="3 workers of 1 CPU and 0 GPU each do not fit the cluster"):
        RayEngine(generator, None, workers=3)
    with pytest.raises(FacesteerError, match="1 workers of 1 CPU and 1 GPU each do not fit the cluster"):
        RayEngine(generator, None, workers=1, gpus=1)  # actors ask for the GPUs they are given


def test_chunks_are_placed_on_both_nodes_of_a_two_node_cluster(generator, tmp_path):
    """A head and a second node of one CPU each (Ray's cluster_utils, on this machine): one actor on each."""
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    try:
        ray.init(address=cluster.address, logging_level="warning", log_to_driver=False)
        engine = RayEngine(generator, ScorerSpec("predictor"), workers=2, address=cluster.address)
        try:
            assert len({node_id for _, node_id, _ in engine.workers}) == 2
            predictor_run(generator, tmp_path / "cluster", engine, num=120)
        finally:
            engine.close()
    finally:
        ray.shutdown()
        cluster.shutdown()
    predictor_run(generator, tmp_path / "local", num=120)
    assert same_files(tmp_path / "local", tmp_path / "cluster")


def test_a_driver_killed_mid_run_resumes_from_disk(tmp_path):
    """`facesteer sample --engine ray` killed with SIGKILL once some chunks are on disk, then run again: the
    files are the local engine's bytes."""
    if ray.is_initialized():
        ray.shutdown()
    command = [sys.executable, "-m", "facesteer.cli", "sample", "-n", "2000", "--scorer", "predictor", "--seed", "4",
               "--chunk-size", "100", "-q"]  # fmt: skip
    ray_command = [*command, "--out", str(tmp_path / "ray"), "--engine", "ray", "--workers", "2"]
    process = subprocess.Popen(ray_command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    manifest = tmp_path / "ray" / "manifest.json"
    deadline = time.monotonic() + 600
    while process.poll() is None and time.monotonic() < deadline:
        if manifest.is_file() and '"rows_complete": 0' not in manifest.read_text():
            break
        time.sleep(0.05)
    process.kill()
    process.wait(timeout=60)
    assert '"rows_complete": 2000' not in manifest.read_text()  # killed part-way
    ray_cli = str(Path(sys.executable).parent / "ray")  # the local Ray the killed driver started outlives it
    subprocess.run([ray_cli, "stop", "--force"], capture_output=True, timeout=120)
    resumed = subprocess.run(ray_command, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    local = subprocess.run([*command, "--out", str(tmp_path / "local")], capture_output=True, text=True, timeout=900)
    assert local.returncode == 0, local.stderr
    assert same_files(tmp_path / "local", tmp_path / "ray")


def test_asking_for_ray_without_it_is_one_line(generator, monkeypatch):
    import facesteer.engines as engines

    monkeypatch.delitem(sys.modules, "facesteer.engines.ray_cluster", raising=False)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed: `import ray` fails
    with pytest.raises(FacesteerError, match=r"pip install 'facesteer\[ray\]'"):
        engines.ray_engine(generator, None, 1)


def test_the_local_engine_computes_what_compute_rows_does(generator):
    chunk = Chunk(1, 10, 20)
    ((got_chunk, rows),) = list(LocalEngine(generator, None).map([chunk]))
    assert got_chunk == chunk and np.array_equal(rows["z"], load_generator(generator.name).sample_z(10, 1, 10))


def unit_directions(generator, count: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, generator.z_dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_edit_effects_on_ray_are_the_local_engine_s_numbers(generator, local_ray):
    from facesteer.attributes import load_scorer
    from facesteer.evaluation.metrics import edit_effects

    codes = generator.sample_z(50, 7)
    directions = {f"d{k}": row[None] for k, row in enumerate(unit_directions(generator, 3, 1))}
    engine = RayEngine(generator, ScorerSpec("predictor"), workers=2)
    with load_scorer("predictor") as scorer:
        try:
            on_ray = edit_effects(generator, scorer, codes, directions, alpha=1.5, progress=False, engine=engine)
        finally:
            engine.close()
        here = edit_effects(generator, scorer, codes, directions, alpha=1.5, progress=False)
    assert here.shape == (3, len(scorer.attributes)) and np.isfinite(here).all()
    assert np.array_equal(on_ray, here)


def test_traversals_on_ray_are_the_local_engine_s_scores(generator, local_ray):
    from facesteer.attributes import load_scorer
    from facesteer.discovery import Directions
    from facesteer.discovery.traversal import traverse_scores

    found = Directions(unit_directions(generator, 2, 2), "sefa", generator.name, "z")
    engine = RayEngine(generator, ScorerSpec("predictor"), workers=2)
    with load_scorer("predictor") as scorer:
        try:
            on_ray = traverse_scores(generator, found, scorer, num=6, seed=4, reach=3, progress=False, engine=engine)
            with pytest.raises(FacesteerError, match="local engine only"):
                traverse_scores(generator, found, scorer, num=2, reach=1, identity=scorer, engine=engine)
        finally:
            engine.close()
        here = traverse_scores(generator, found, scorer, num=6, seed=4, reach=3, progress=False)
    assert here.shape == (6, 2, 7, len(scorer.attributes)) and np.isfinite(here).any()
    assert np.array_equal(on_ray, here, equal_nan=True)  # NaN: the predictor's "no face" rows


def test_the_engine_is_chosen_by_name():
    assert engine_factory("local", None) is None
    assert callable(engine_factory("ray", ScorerSpec("predictor"), 2))  # Ray starts only when it is called
    with pytest.raises(FacesteerError, match="unknown engine 'spark'"):
        engine_factory("spark", None)


def test_the_cluster_file_is_a_valid_ray_up_config():
    import yaml
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(yaml.safe_load((Path(__file__).parents[1] / "deploy" / "ray-cluster.yaml").read_text()))
    validate_config(config)  # raises on a field Ray does not know or a missing one
    assert any("make install" in command for command in config["setup_commands"])
    assert all(
        "facesteer/.venv/bin/ray start" in " ".join(config[key])
        for key in ("head_start_ray_commands", "worker_start_ray_commands")
    )
