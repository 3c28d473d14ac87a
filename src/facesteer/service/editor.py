"""The editing service: every rule of the browser editor and the Telegram bot, with no HTTP or Telegram in it.

It loads a generator, its InterFaceGAN boundaries (one slider each, and a condition toggle each) and its named
discovered directions (one slider each) once. Each session (:mod:`.sessions`) holds one face and its history:

    code = base + sum over sliders of value * direction

where a slider's direction is its boundary (or discovered direction) projected off every condition switched on
(InterFaceGAN's conditional manipulation; a condition never applies to its own slider). Codes live in the
render space (W+ for style-based generators, each row moved alike; Z for the DCGAN) and are synthesized through
one :class:`~.batching.RenderQueue`, so requests from many sessions share forward passes. Each state's PNG is
kept in the history, so undo and reset show the very bytes shown before.

Uploads are decoded in memory (:func:`facesteer.images.decode_image`: size checked from the header), aligned
to the generator's framing and inverted (:func:`facesteer.inversion.invert`), one at a time.
"""

from __future__ import annotations

import math
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from facesteer.alignment import Aligner, load_framing
from facesteer.boundaries import project_boundary
from facesteer.discovery.directions import Directions, shipped_directions_folder
from facesteer.errors import FacesteerError
from facesteer.generators import WEIGHTS_DIR, load_generator
from facesteer.generators.base import Generator
from facesteer.images import decode_image, encode_png
from facesteer.inversion import FAST_RECIPE, Recipe, convert_codes, invert
from facesteer.inversion.encoder import InversionEncoder, encoder_weights, load_encoder
from facesteer.service.batching import RenderQueue
from facesteer.service.sessions import EditState, Entry, Session, SessionStore

#: sliders move a code at most this far along a unit direction (InterFaceGAN edits within [-3, 3])
SLIDER_LIMIT = 3.0
#: the largest seed a client may ask for
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class Control:
    """One slider.

    Attributes:
        name: what the page and the bot call it (an attribute, or a discovered direction's name).
        kind: ``"attribute"`` (an InterFaceGAN boundary; it can also be a condition) or ``"direction"``.
        vector: (d,) float64 unit vector in the edit space (W for style-based generators, else Z).
    """

    name: str
    kind: str
    vector: np.ndarray


def shipped_boundaries_folder(generator: str) -> os.PathLike[str]:
    """Where the package keeps the InterFaceGAN boundaries of ``generator`` (a direction set named by attribute)."""
    return WEIGHTS_DIR / f"boundaries-{generator}"


def load_controls(generator: Generator, boundaries: Directions | None, directions: Directions | None) -> list[Control]:
    """The sliders: every boundary of ``boundaries``, then every named direction of ``directions`` whose name
    is not already a boundary's. Both sets must be of ``generator`` and in its edit space."""
    space = edit_space(generator)
    controls: list[Control] = []
    for kind, found in (("attribute", boundaries), ("direction", directions)):
        if found is None:
            continue
        if found.generator != generator.name or found.space != space:
            raise FacesteerError(
                f"{kind} set of {found.generator} in {found.space!r} space cannot edit {generator.name} in {space!r}"
            )
        taken = {c.name for c in controls}
        for index in range(len(found)):
            if found.names is None or not found.names[index] or found.label(index) in taken:
                continue
            controls.append(Control(found.label(index), kind, found.vectors[index].astype(np.float64)))
    if not controls:
        raise FacesteerError(f"nothing to edit {generator.name} with: no boundaries and no named directions")
    return controls


def edit_space(generator: Generator) -> str:
    """W for style-based generators (their boundaries and directions are trained there), else Z."""
    return "w" if "w" in generator.spaces else "z"


def render_space(generator: Generator) -> str:
    """W+ for style-based generators (an inversion lands there; W codes are broadcast), else Z."""
    return "wp" if "wp" in generator.spaces else "z"


def _load_optional_set(folder: os.PathLike[str]) -> Directions | None:
    return Directions.load(folder) if (os.path.isdir(folder)) else None


class EditorService:
    """Sessions editing faces of one generator.

    Args:
        generator: the generator.
        controls: the sliders (:func:`load_controls`).
        encoder: the inversion encoder (None: uploads are inverted by optimisation alone).
        models: the models folder (MediaPipe's landmarker, for aligning real photos).
        max_batch, max_wait: request batching (:class:`RenderQueue`); ``max_batch=1`` turns it off.
        store: the session store (default: :class:`SessionStore`'s bounds).
        recipe: how uploads are inverted (default :data:`facesteer.inversion.FAST_RECIPE`).
    """

    def __init__(
        self,
        generator: Generator,
        controls: list[Control],
        encoder: InversionEncoder | None = None,
        models: str | os.PathLike[str] | None = None,
        max_batch: int = 32,
        max_wait: float = 0.004,
        store: SessionStore | None = None,
        recipe: Recipe | None = None,
    ) -> None:
        self.generator, self.controls = generator, {c.name: c for c in controls}
        self.encoder, self.models = encoder, models
        self.edit_space, self.render_space = edit_space(generator), render_space(generator)
        self.sessions = store if store is not None else SessionStore()  # (an empty store is falsy)
        self.queue = RenderQueue(generator, self.render_space, max_batch, max_wait)
        recipe = recipe or FAST_RECIPE
        if encoder is None or recipe.space not in generator.spaces:
            recipe = recipe.with_changes(space=self.edit_space, steps=max(recipe.steps, 60))
        self.recipe, self.method = recipe, "hybrid" if encoder is not None else "optim"
        self._framing = load_framing(generator.name)
        self._aligner: Aligner | None = None
        self._upload_lock = threading.Lock()
        self._directions: dict[tuple[str, frozenset[str]], np.ndarray] = {}

    @classmethod
    def load(
        cls,
        generator: str,
        boundaries: str | os.PathLike[str] | None = None,
        directions: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> EditorService:
        """The service for a registered generator with its shipped boundaries, directions and encoder (or the
        sets in the folders given: ``facesteer.discovery.directions`` format)."""
        loaded = load_generator(generator)
        boundary_set = Directions.load(boundaries) if boundaries else _load_optional_set(
            shipped_boundaries_folder(loaded.name))  # fmt: skip
        direction_set = Directions.load(directions) if directions else _load_optional_set(
            shipped_directions_folder(loaded.name))  # fmt: skip
        encoder = load_encoder(loaded) if encoder_weights(loaded.name).is_file() else None
        return cls(loaded, load_controls(loaded, boundary_set, direction_set), encoder, **options)

    def close(self) -> None:
        self.queue.close()
        if self._aligner is not None:
            self._aligner.close()

    # ---- what the page and the bot show

    def describe(self) -> dict[str, Any]:
        """The generator, the sliders (name, kind, range) and which sliders can be conditions."""
        return {
            "generator": self.generator.name,
            "resolution": self.generator.resolution,
            "sliders": [
                {"name": c.name, "kind": c.kind, "min": -SLIDER_LIMIT, "max": SLIDER_LIMIT}
                for c in self.controls.values()
            ],
            "conditions": [c.name for c in self.controls.values() if c.kind == "attribute"],
            "upload_method": self.method,
        }

    def view(self, session: Session) -> dict[str, Any]:
        """What a client needs to show a session (the PNG travels separately)."""
        state = session.state
        return {
            "session": session.id,
            "sliders": {name: state.slider(name) for name in self.controls},
            "conditions": sorted(state.conditions),
            "can_undo": len(session.history) > 1,
            "origin": session.origin,
            "version": len(session.history),
        }

    # ---- operations

    def new_session(self, seed: int | None = None) -> Session:
        """A session showing the random face of ``seed`` (a random seed if None)."""
        seed = self._check_seed(seed)
        code = self._random_code(seed)
        return self.sessions.create(code, {"kind": "random", "seed": seed}, self._render(code))

    def random_face(self, session_id: str, seed: int | None = None) -> Session:
        """Show the random face of ``seed`` in the session (its history starts again)."""
        seed = self._check_seed(seed)
        session = self.sessions.get(session_id)
        with session.lock:
            code = self._random_code(seed)
            self.sessions.replace_face(session, code, {"kind": "random", "seed": seed}, self._render(code))
        return session

    def upload(self, session_id: str, data: bytes, name: str = "the upload") -> Session:
        """Show the inversion of an uploaded picture (bytes): decoded in memory, aligned, inverted.

        Raises:
            FacesteerError: not an image, truncated, too large, or no face found in it.
        """
        session = self.sessions.get(session_id)
        with self._upload_lock, session.lock:  # one inversion at a time: it takes both cores
            image = decode_image(data, name)
            aligned = self._get_aligner().align(image, name)
            session.progress = (0, self.recipe.steps)

            def step_done(step: int, _codes: torch.Tensor) -> None:
                session.progress = (step + 1, self.recipe.steps)

            try:
                result = invert(aligned[None], self.generator, self.method, self.recipe, self.encoder,
                                after_step=step_done)  # fmt: skip
            finally:
                session.progress = None
            codes = convert_codes(self.generator, torch.from_numpy(result.codes), result.space, self.render_space)
            code = codes.numpy()[0].astype(np.float32)
            origin = {"kind": "upload", "method": self.method, "seconds": round(result.seconds, 3)}
            self.sessions.replace_face(session, code, origin, self._render(code))
        return session

    def set_slider(self, session_id: str, name: str, value: float) -> Session:
        """Move one slider to ``value`` (in [-SLIDER_LIMIT, SLIDER_LIMIT])."""
        self._check_control(name)
        if not isinstance(value, int | float) or not math.isfinite(value) or abs(value) > SLIDER_LIMIT:
            raise FacesteerError(f"slider value must be a number in [-{SLIDER_LIMIT:g}, {SLIDER_LIMIT:g}], got {value}")
        return self._change(session_id, lambda state: state.with_slider(name, round(float(value), 4)))

    def set_condition(self, session_id: str, name: str, on: bool) -> Session:
        """Switch the condition ``name`` (an attribute slider) on or off."""
        self._check_control(name)
        if self.controls[name].kind != "attribute":
            raise FacesteerError(f"{name!r} is a discovered direction; only attributes can be conditions")
        return self._change(session_id, lambda state: state.with_condition(name, bool(on)))

    def undo(self, session_id: str) -> Session:
        """Back to the previous state (the very PNG shown then); nothing to undo is not an error."""
        session = self.sessions.get(session_id)
        with session.lock:
            if len(session.history) > 1:
                session.history.pop()
        return session

    def reset(self, session_id: str) -> Session:
        """Back to the face as it came (sliders at 0, no conditions), as a new step (so it can be undone)."""
        session = self.sessions.get(session_id)
        with session.lock:
            if session.state != session.history[0].state:
                self.sessions.push(session, Entry(session.history[0].state, session.history[0].png))
        return session

    def png(self, session_id: str) -> bytes:
        """The PNG of the face the session shows."""
        return self.sessions.get(session_id).png

    def progress(self, session_id: str) -> tuple[int, int] | None:
        """(done, total) steps of the inversion running for the session, or None."""
        return self.sessions.get(session_id).progress

    # ---- the rules underneath

    def code_for(self, session: Session, state: EditState) -> np.ndarray:
        """The session's code moved by the state's sliders along their (conditioned) directions."""
        offset = np.zeros(self.generator.space_shape(self.edit_space)[-1])
        for name, value in state.sliders:
            offset += value * self._direction(name, state.conditions)
        return (session.code + offset.astype(np.float32)).astype(np.float32)  # W: broadcast over the W+ rows

    def _direction(self, name: str, conditions: frozenset[str]) -> np.ndarray:
        applied = frozenset(conditions - {name})
        key = (name, applied)
        if key not in self._directions:
            if len(self._directions) > 4096:
                self._directions.clear()
            vector = self.controls[name].vector
            if applied:
                vector = project_boundary(vector, *(self.controls[c].vector for c in sorted(applied)))[0]
            self._directions[key] = np.asarray(vector, dtype=np.float64)
        return self._directions[key]

    def _change(self, session_id: str, change: Callable[[EditState], EditState]) -> Session:
        session = self.sessions.get(session_id)
        with session.lock:
            state = change(session.state)
            if state != session.state:
                png = session.history[0].png if state == session.history[0].state else None
                self.sessions.push(session, Entry(state, png or self._render(self.code_for(session, state))))
        return session

    def _render(self, code: np.ndarray) -> bytes:
        return encode_png(self.queue.render(code))

    def _random_code(self, seed: int) -> np.ndarray:
        z = self.generator.sample_z(1, seed)
        return self.generator.map(z, self.render_space)[0].astype(np.float32)

    def _check_seed(self, seed: int | None) -> int:
        if seed is None:
            return secrets.randbelow(MAX_SEED + 1)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise FacesteerError(f"seed must be an integer in [0, {MAX_SEED}], got {seed!r}")
        return seed

    def _check_control(self, name: str) -> None:
        if name not in self.controls:
            raise FacesteerError(f"no slider {str(name)[:40]!r}; there are: {', '.join(self.controls)}")

    def _get_aligner(self) -> Aligner:
        if self._aligner is None:
            self._aligner = Aligner(self._framing, self.generator.resolution, self.models)
        return self._aligner
