"""Everything shipped for a generator was made from the weights shipped beside it: each file records the weights
identity of the generator it was made from, and a generator replaced without its artefacts fails here."""

from __future__ import annotations

import numpy as np
import pytest

from facesteer import shipped
from facesteer.boundaries import Boundary
from facesteer.discovery import Directions
from facesteer.errors import FacesteerError
from facesteer.generators import load_generator
from facesteer.generators.base import weights_identity


@pytest.mark.parametrize("name", ["dcgan-digiface64", *shipped.generator_cards()])
def test_every_file_shipped_for_a_generator_was_made_from_its_shipped_weights(name):
    identity = weights_identity(load_generator(name).config())
    recorded = shipped.recorded_weights(name)
    assert recorded, f"nothing shipped for {name}"
    assert {file: made_from for file, made_from in recorded.items() if made_from != identity} == {}


def test_a_set_of_boundaries_made_from_different_weights_is_refused():
    def boundary(attribute: str, weights: str) -> Boundary:
        return Boundary(np.eye(4, dtype=np.float32)[:1], attribute, "w", "g", info={"generator_weights": weights})

    same = Directions.from_boundaries(
        [boundary("age", "g.safetensors (sha256 1)"), boundary("smile", "g.safetensors (sha256 1)")]
    )
    assert same.info["generator_weights"] == "g.safetensors (sha256 1)"
    with pytest.raises(FacesteerError, match="made from different weights"):
        Directions.from_boundaries(
            [boundary("age", "g.safetensors (sha256 1)"), boundary("smile", "g.safetensors (sha256 2)")]
        )


def test_what_discovery_writes_records_the_weights_it_was_made_from():
    from facesteer.discovery.sefa import sefa

    generator = load_generator("stylegan2-utkface64")
    found = sefa(generator)
    assert found.info["generator_weights"] == weights_identity(generator.config())
    assert weights_identity(generator.config()).startswith("facesteer, sha256 ")  # the layout and hash, no file name


def test_a_boundary_or_a_set_made_from_other_weights_is_refused():
    from facesteer.service.editor import load_controls

    generator = load_generator("stylegan2-utkface64")
    shipped_set = Directions.load(shipped.boundaries_folder(generator.name))
    shipped_set.boundary("age").check_applies_to(generator, "w")  # the shipped ones fit
    load_controls(generator, shipped_set, None)
    other = shipped_set.with_info(generator_weights="facesteer, sha256 0000000000000000")
    with pytest.raises(FacesteerError, match="made from other weights of stylegan2-utkface64"):
        other.boundary("age").check_applies_to(generator, "w")
    with pytest.raises(FacesteerError, match="the attribute set was made from other weights"):
        load_controls(generator, other, None)


def test_a_conditioned_boundary_keeps_the_weights_and_refuses_a_condition_from_others():
    def boundary(attribute: str, row: int, weights: str | None) -> Boundary:
        info = {"generator_weights": weights} if weights else {}
        return Boundary(np.eye(4, dtype=np.float32)[row : row + 1] + 0.1, attribute, "w", "g", info=info)

    conditioned = boundary("age", 0, "facesteer, sha256 1").conditioned_on(boundary("smile", 1, "facesteer, sha256 1"))
    assert conditioned.info["generator_weights"] == "facesteer, sha256 1"
    assert boundary("age", 0, "facesteer, sha256 1").conditioned_on(boundary("smile", 1, None)).info == {
        "generator_weights": "facesteer, sha256 1"
    }
    with pytest.raises(FacesteerError, match="made from other weights"):
        boundary("age", 0, "facesteer, sha256 1").conditioned_on(boundary("smile", 1, "facesteer, sha256 2"))
