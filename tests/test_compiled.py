"""Compiled synthesis (torch.compile) and its use by the editor's render queue."""

from __future__ import annotations

import os
import shutil
import threading

import numpy as np
import pytest

import facesteer.generators.compiled as compiled_module
from facesteer.discovery.directions import load_direction_set
from facesteer.errors import FacesteerError
from facesteer.generators.compiled import CompiledSynthesis
from facesteer.generators.stylegan2 import StyleGAN2Generator
from facesteer.service import EditorService, load_controls
from facesteer.service.batching import RenderQueue, compiled_shapes
from tests.test_stylegan2 import tiny_network

HAS_COMPILER = shutil.which(os.environ.get("CXX", "g++")) is not None


@pytest.fixture
def eager_compile(monkeypatch):
    """torch.compile replaced by a recorder that runs the function eagerly: the queue's plumbing, without the
    minutes of compiling. Yields the batch sizes the 'compiled' function was called with."""
    sizes: list[int] = []

    def fake_compile(function, **_options):
        def run(codes):
            sizes.append(len(codes))
            return function(codes)

        return run

    monkeypatch.setattr(compiled_module.torch, "compile", fake_compile)
    return sizes


@pytest.mark.skipif(not HAS_COMPILER, reason="torch.compile needs a C++ compiler")
def test_compiled_stylegan2_draws_the_eager_images():
    generator = StyleGAN2Generator(tiny_network(), "tiny", "test")
    compiled = CompiledSynthesis(generator, "wp", (3,))
    with pytest.raises(RuntimeError, match="warm_up"):
        compiled(np.zeros((3, generator.num_ws, generator.w_dim), np.float32))
    compiled.warm_up()  # the real compiler: tens of seconds on 2 cores when its cache is cold
    codes = generator.map(generator.sample_z(3, 5), "wp")
    images = compiled(codes)
    assert images.dtype == np.uint8 and images.shape == (3, 16, 16, 3)
    assert np.abs(images.astype(int) - generator.synthesize(codes, "wp").astype(int)).max() <= 1
    with pytest.raises(ValueError, match="pad"):
        compiled(codes[:2])


def test_compiled_synthesis_refuses_bad_shapes_and_spaces():
    generator = StyleGAN2Generator(tiny_network(), "tiny", "test")
    for shapes in [(), (8, 1), (0, 4), (4, 4)]:
        with pytest.raises(FacesteerError, match="ascending"):
            CompiledSynthesis(generator, "wp", shapes)
    with pytest.raises(FacesteerError, match="no latent space"):
        CompiledSynthesis(generator, "s", (1,))
    assert compiled_shapes(32) == (1, 8, 32) and compiled_shapes(4) == (1, 4) and compiled_shapes(1) == (1,)


def test_render_queue_pads_batches_to_the_compiled_shapes(generator, eager_compile):
    compiled = CompiledSynthesis(generator, "z", (1, 4, 8))
    compiled.warm_up()
    assert eager_compile == [1, 4, 8]
    queue = RenderQueue(generator, "z", max_batch=8, max_wait=0.5)
    try:
        with pytest.raises(ValueError, match="warmed up"):
            queue.use_compiled(CompiledSynthesis(generator, "z", (1, 8)))
        small = CompiledSynthesis(generator, "z", (1, 4))
        small.warm_up()
        with pytest.raises(ValueError, match="up to 4"):
            queue.use_compiled(small)
        queue.use_compiled(compiled)
        assert queue.compiled
        eager_compile.clear()
        codes = generator.sample_z(6, 2)
        results: dict[int, np.ndarray] = {}

        def render(i: int) -> None:
            results[i] = queue.render(codes[i])

        threads = [threading.Thread(target=render, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(eager_compile) >= 6 and set(eager_compile) <= {1, 4, 8}  # every batch padded to a compiled shape
        alone = generator.synthesize(codes)
        for i in range(6):
            assert np.abs(results[i].astype(int) - alone[i].astype(int)).max() <= 1
    finally:
        queue.close()


def test_service_renders_eagerly_when_compiling_fails(generator, monkeypatch):
    def broken_compile(function, **_options):
        def run(codes):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nmore detail")

        return run

    monkeypatch.setattr(compiled_module.torch, "compile", broken_compile)
    controls = load_controls(generator, load_direction_set(None, generator.name), None)
    service = EditorService(generator, controls, compile=True, max_batch=4)
    try:
        service.warm_up()
        assert not service.queue.compiled and not service.describe()["compiled"]
        assert service.compile_problem.startswith(f"torch.compile failed for {generator.name}: RuntimeError: Invalid")
        assert "more detail" not in service.compile_problem  # one line
        view = service.new_session(seed=3)  # rendering still works, eagerly
        assert view.png.startswith(b"\x89PNG")
    finally:
        service.close()


def test_load_compiles_only_where_it_pays():
    assert StyleGAN2Generator.compiles_faster
    service = EditorService.load("dcgan-digiface64")
    try:
        assert service.compile is False  # the DCGAN's fused forward gains nothing from compiling (bench/serve.py)
    finally:
        service.close()
    service = EditorService.load("dcgan-digiface64", compile=True)
    try:
        assert service.compile is True
    finally:
        service.close()
