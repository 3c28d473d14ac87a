"""How to invert pictures, as one validated object: :class:`InversionOptions` (what a user asks for: method,
recipe, space, steps, rate, encoder file) resolves against a generator into a :class:`ResolvedInversion` (the
optimisation recipe, pti's tuning recipe and the encoder), refusing what cannot work before any picture is read.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any

from facesteer.errors import FacesteerError
from facesteer.generators.base import Generator
from facesteer.inversion.encoder import InversionEncoder, encoder_weights, load_encoder
from facesteer.inversion.optimize import RECIPES, Recipe
from facesteer.inversion.tuning import DEFAULT_TUNING, TuningRecipe

#: how codes are found: optimisation, the encoder, both, or the encoder's code with the generator tuned (pti)
METHODS = ("optim", "encoder", "hybrid", "pti")


@dataclass(frozen=True)
class InversionOptions:
    """What a user asks of an inversion; :meth:`resolve` checks it against a generator.

    Attributes:
        method: one of :data:`METHODS`.
        recipe: the optimisation recipe's name (:data:`facesteer.inversion.optimize.RECIPES`).
        space, steps, learning_rate: overrides of the recipe's (for ``pti``: steps and rate are the tuning's).
        encoder_file: an encoder .safetensors instead of the generator's shipped one.
    """

    method: str = "hybrid"
    recipe: str = "facesteer"
    space: str | None = None
    steps: int | None = None
    learning_rate: float | None = None
    encoder_file: str | os.PathLike[str] | None = None

    def resolve(self, generator: Generator) -> ResolvedInversion:
        """The recipe, tuning and encoder these options give on ``generator``.

        Raises:
            FacesteerError: anything that cannot work on it (see :func:`resolve_recipe`, :func:`resolve_tuning`,
                :func:`encoder_for`).
        """
        recipe = resolve_recipe(generator, self.method, self.recipe, self.space, self.steps, self.learning_rate)
        tuning = resolve_tuning(generator, self.method, self.steps, self.learning_rate)
        return ResolvedInversion(self.method, recipe, tuning, encoder_for(generator, self.method, self.encoder_file))


@dataclass(frozen=True)
class ResolvedInversion:
    """An inversion ready to run (:func:`facesteer.inversion.invert`'s method, recipe, encoder and tuning)."""

    method: str
    recipe: Recipe
    tuning: TuningRecipe | None
    encoder: InversionEncoder | None

    def summary(self) -> dict[str, Any]:
        """What was run, for a record: the recipe for ``optim`` and ``hybrid``, else only the codes' space (the
        encoder's method) or the pivot's (pti), and pti's tuning."""
        how: dict[str, Any] = {"method": self.method}
        how |= {"recipe": asdict(self.recipe)} if self.method in ("optim", "hybrid") else {"space": self.recipe.space}
        if self.tuning is not None:
            how["tuning"] = asdict(self.tuning)
        return how


def resolve_recipe(
    generator: Generator,
    method: str,
    recipe: str = "facesteer",
    space: str | None = None,
    steps: int | None = None,
    learning_rate: float | None = None,
) -> Recipe:
    """The recipe named ``recipe`` with its overrides, checked against the method and generator before any work.

    The space defaults to the recipe's where the generator has it, else the encoder's (Z for the DCGAN).

    Raises:
        FacesteerError: an unknown method or recipe, a space the generator lacks, or a method whose encoder
            start cannot reach the space (an encoder predicts W; the mapping cannot be undone to Z).
    """
    if method not in METHODS:
        raise FacesteerError(f"unknown inversion method {method!r}; choose one of {', '.join(METHODS)}")
    if recipe not in RECIPES:
        raise FacesteerError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    chosen = RECIPES[recipe]
    if recipe == "nfe" and space not in (None, "z"):
        raise FacesteerError("the nfe recipe optimises z: leave `space` out or use `recipe` facesteer")
    if space is None:
        space = chosen.space if chosen.space in generator.spaces else generator.edit_space
    if space not in generator.spaces:
        raise FacesteerError(f"generator {generator.name} has no latent space {space!r}; it has {generator.spaces}")
    if method != "optim" and space == "z" and generator.edit_space != "z":
        raise FacesteerError(
            f"an encoder of {generator.name} predicts w, which cannot start an optimisation in z: use `method` "
            "optim for z (NFE's recipe starts from z = 0) or a w/wp space"
        )
    if method == "encoder" and (steps is not None or learning_rate is not None):
        raise FacesteerError(
            "`method` encoder runs no optimisation: drop `steps` and `learning_rate`, or use `method` hybrid"
        )
    changes = {"space": space} if method == "pti" else {"space": space, "steps": steps, "learning_rate": learning_rate}
    return chosen.with_changes(**{k: v for k, v in changes.items() if v is not None})


def resolve_tuning(
    generator: Generator,
    method: str,
    steps: int | None = None,
    learning_rate: float | None = None,
    perceptual_taps: int | None = None,
    locality: float | None = None,
) -> TuningRecipe | None:
    """``pti``'s tuning recipe with the steps, rate, LPIPS taps and locality weight asked for (for ``pti`` steps and
    rate are the tuning's: its pivot is the encoder's code, not optimised); None for the other methods.

    Raises:
        FacesteerError: a generator that cannot be tuned, or steps or rate out of range (before any work).
    """
    if method != "pti":
        return None
    generator.tunable_parameters()  # refuses a generator pivotal tuning does not support
    changes = {"steps": steps, "learning_rate": learning_rate, "perceptual_taps": perceptual_taps, "locality": locality}
    return replace(DEFAULT_TUNING, **{k: v for k, v in changes.items() if v is not None})


def encoder_for(
    generator: Generator, method: str, path: str | os.PathLike[str] | None = None
) -> InversionEncoder | None:
    """The encoder ``method`` needs (None for ``optim``): the file at ``path``, else the generator's shipped one.

    Raises:
        FacesteerError: none shipped and none given, with what to do instead; a file given to ``optim``, which
            would not use it.
    """
    if method == "optim":
        if path is not None:
            raise FacesteerError("`method` optim starts from the mean code and uses no encoder: drop "
                                 "`encoder_file`, or use `method` hybrid to start from the encoder's code")  # fmt: skip
        return None
    if path is None and not encoder_weights(generator.name).is_file():
        raise FacesteerError(
            f"no encoder is shipped for {generator.name}: use `method` optim, pass `encoder_file`, or train one "
            f"(`facesteer train-encoder --generator {generator.name} --out runs/encoder`, then --encoder "
            "runs/encoder/encoder.safetensors)"
        )
    return load_encoder(generator, path)
