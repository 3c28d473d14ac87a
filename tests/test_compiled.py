"""Compiled synthesis (torch.compile) and its use by the editor's render queue."""

from __future__ import annotations

import os
import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest

import facesteer.generators.compiled as compiled_module
from facesteer.discovery.directions import load_direction_set
from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator
from facesteer.generators.compiled import CompiledSynthesis
from facesteer.generators.dcgan import DCGANFaceGenerator
from facesteer.generators.stylegan2 import StyleGAN2Generator
from facesteer.service import EditorService, load_controls
from facesteer.service.batching import RenderQueue, compiled_shapes
from tests.test_service import render_together
from tests.test_stylegan2 import tiny_network

# what TorchInductor needs to build its kernels: a C++ compiler and Python's headers
HAS_COMPILER = (
    shutil.which(os.environ.get("CXX", "g++")) is not None
    and (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file()
)


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


@pytest.mark.skipif(not HAS_COMPILER, reason="torch.compile needs a C++ compiler ($CXX or g++) and Python.h")
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
    queue = RenderQueue(generator, "z", max_batch=8, max_wait=1.0)  # a batch waits a second for companions
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
        codes = generator.sample_z(3, 2)
        images = render_together(queue, codes)
        assert eager_compile == [4]  # three codes, one batch, padded to the compiled shape of 4
        alone = generator.synthesize(codes)
        for i in range(3):
            assert np.abs(images[i].astype(int) - alone[i].astype(int)).max() <= 1
    finally:
        queue.close()


def test_render_queue_drops_a_compiled_synthesis_that_fails(generator, eager_compile, monkeypatch):
    compiled = CompiledSynthesis(generator, "z", (1, 2))
    compiled.warm_up()
    queue = RenderQueue(generator, "z", max_batch=2, max_wait=0.0)
    try:
        queue.use_compiled(compiled)

        def broken(_codes):
            raise RuntimeError("a kernel failed")

        monkeypatch.setattr(compiled, "_compiled", broken)
        code = generator.sample_z(1, 9)[0]
        image = queue.render(code)  # drawn eagerly instead, and the compiled synthesis is dropped
        assert queue.compiled is False
        assert np.abs(image.astype(int) - generator.synthesize(code[None])[0].astype(int)).max() <= 1
        assert np.array_equal(queue.render(code), image)
    finally:
        queue.close()


@pytest.mark.parametrize("wrapped", [False, True])
def test_service_renders_eagerly_when_compiling_fails(generator, monkeypatch, wrapped):
    def broken_compile(function, **_options):
        def run(codes):
            if wrapped:  # as Dynamo reports a compiler failure: a wrapper whose own message says nothing
                raise RuntimeError("backend='inductor' raised:") from OSError("InvalidCxxCompiler: no g++\nmore detail")
            raise OSError("InvalidCxxCompiler: no g++\nmore detail")

        return run

    monkeypatch.setattr(compiled_module.torch, "compile", broken_compile)
    controls = load_controls(generator, load_direction_set(None, generator.name), None)
    service = EditorService(generator, controls, compile_synthesis=True, max_batch=4)
    try:
        service.warm_up()
        assert not service.queue.compiled and not service.describe()["compiled"]
        expected = f"torch.compile failed for {generator.name}: OSError: InvalidCxxCompiler: no g++; rendering"
        assert service.compile_problem.startswith(expected)
        assert "more detail" not in service.compile_problem  # one line
        view = service.new_session(seed=3)  # rendering still works, eagerly
        assert view.png.startswith(b"\x89PNG")
    finally:
        service.close()


def test_load_compiles_where_the_generator_says_it_pays(monkeypatch):
    for says, asked, expected in [(False, None, False), (True, None, True), (True, False, False), (False, True, True)]:
        monkeypatch.setattr(DCGANFaceGenerator, "compiles_faster", says)
        service = EditorService.load("dcgan-digiface64", compile_synthesis=asked)
        try:
            assert service.compile_synthesis is expected
        finally:
            service.close()
    assert StyleGAN2Generator.compiles_faster and not Generator.compiles_faster
