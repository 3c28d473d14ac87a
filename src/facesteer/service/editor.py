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

import contextlib
import math
import os
import re
import secrets
import threading
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch

from facesteer import shipped
from facesteer.alignment import Aligner, load_framing
from facesteer.boundaries import project_boundary
from facesteer.discovery.directions import Directions, shipped_directions_folder
from facesteer.errors import FacesteerError
from facesteer.generators import load_generator
from facesteer.generators.base import Generator, check_made_from
from facesteer.generators.compiled import CompiledSynthesis
from facesteer.images import decode_image, encode_png
from facesteer.inversion import BALANCED_RECIPE, FAST_RECIPE, Recipe, convert_codes, invert
from facesteer.inversion.encoder import InversionEncoder, encoder_weights, load_encoder
from facesteer.inversion.prior import LatentPrior
from facesteer.memory import limit_malloc_arenas, release_freed_memory
from facesteer.perceptual import load_lpips
from facesteer.service.batching import RenderQueue, ServiceBusyError, compiled_shapes
from facesteer.service.limits import RateLimit
from facesteer.service.sessions import EditState, Entry, Session, SessionStore

#: sliders move a code at most this far along a unit direction (InterFaceGAN edits within [-3, 3])
SLIDER_LIMIT = 3.0
#: the largest seed a client may ask for
MAX_SEED = 2**31 - 1
#: uploads accepted at once (one inverting, the rest waiting); more are refused as busy
MAX_PENDING_UPLOADS = 2
#: uploads whose bytes may be arriving at once (a request body, a bot's download); more are refused as busy
MAX_RECEIVING_UPLOADS = 2
#: new sessions one client may start per minute (a page load starts one; more evicted other users' sessions)
NEW_SESSIONS_PER_MINUTE = 30
#: conditioned directions kept (a key per slider and set of conditions switched on)
MAX_CACHED_DIRECTIONS = 4096
#: slider names: what the page uses as element ids and the bot as button data (Telegram allows 64 bytes)
CONTROL_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")


@dataclass(frozen=True)
class View:
    """What a client shows of a session at one moment (made under the session's lock, so its parts agree).

    Attributes:
        session: the session id.
        state: the sliders and conditions.
        origin: how the face came.
        png: the face, PNG bytes.
        can_undo: whether there is a step to undo.
        version: the history's length (changes with every step).
        controls: every slider's name, in order.
    """

    session: str
    state: EditState
    origin: dict
    png: bytes
    can_undo: bool
    version: int
    controls: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """Everything but the PNG, as JSON types."""
        return {
            "session": self.session,
            "sliders": {name: self.state.slider(name) for name in self.controls},
            "conditions": sorted(self.state.conditions),
            "can_undo": self.can_undo,
            "origin": self.origin,
            "version": self.version,
        }


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
    return shipped.boundaries_folder(generator)


def load_controls(generator: Generator, boundaries: Directions | None, directions: Directions | None) -> list[Control]:
    """The sliders: every boundary of ``boundaries``, then every named direction of ``directions`` whose name
    is not already a boundary's. Both sets must be of ``generator`` and in its edit space."""
    space = generator.edit_space
    controls: list[Control] = []
    for kind, found in (("attribute", boundaries), ("direction", directions)):
        if found is None:
            continue
        if found.generator != generator.name or found.space != space:
            raise FacesteerError(
                f"{kind} set of {found.generator} in {found.space!r} space cannot edit {generator.name} in {space!r}"
            )
        check_made_from(found.info.get("generator_weights"), generator, f"the {kind} set")
        taken = {c.name for c in controls}
        for index in range(len(found)):
            if found.names is None or not found.names[index] or found.label(index) in taken:
                continue
            if not CONTROL_NAME.fullmatch(found.label(index)):
                raise FacesteerError(f"{kind} name {found.label(index)[:50]!r} must be 1-40 letters, digits, _ or -")
            controls.append(Control(found.label(index), kind, found.vectors[index].astype(np.float64)))
    if not controls:
        raise FacesteerError(f"nothing to edit {generator.name} with: no boundaries and no named directions")
    return controls


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
        recipe: how uploads are inverted (default: :data:`facesteer.inversion.BALANCED_RECIPE` from the encoder's
            code, or 60 steps of :data:`facesteer.inversion.FAST_RECIPE` by optimisation alone).
        compile_synthesis: render with the generator compiled by ``torch.compile``
            (:mod:`facesteer.generators.compiled`) once :meth:`warm_up` (call it before serving) has compiled it; if
            compiling fails, rendering stays eager and ``compile_problem`` says why.

    Making one limits the process's malloc arenas (:func:`facesteer.memory.limit_malloc_arenas`), so that the memory
    a large upload frees is shared by the server's threads and handed back after it.
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
        compile_synthesis: bool = False,
    ) -> None:
        limit_malloc_arenas()  # before the server's threads make arenas of their own (load() did it earlier)
        self.generator, self.controls = generator, {c.name: c for c in controls}
        self.encoder, self.models = encoder, models
        self.edit_space, self.render_space = generator.edit_space, render_space(generator)
        self.sessions = store if store is not None else SessionStore()  # (an empty store is falsy)
        self.queue = RenderQueue(generator, self.render_space, max_batch, max_wait, finish=encode_png)
        self.compile_synthesis, self.compile_problem = compile_synthesis, None
        if recipe is None:  # from the encoder's code: the balanced recipe; without one: 60 VGG-free steps
            optimised_only = FAST_RECIPE.with_changes(space=self.edit_space, steps=60)
            recipe = BALANCED_RECIPE if encoder is not None else optimised_only
        if recipe.space not in generator.spaces:
            recipe = recipe.with_changes(space=self.edit_space)
        self.recipe, self.method = recipe, "hybrid" if encoder is not None else "optim"
        self._framing = load_framing(generator.name)
        self._aligner: Aligner | None = None
        self._latent_prior: LatentPrior | None = None
        self._lpips: torch.nn.Module | None = None
        self._upload_lock = threading.Lock()
        self._directions: dict[tuple[str, frozenset[str]], np.ndarray] = {}
        self._directions_lock = threading.Lock()
        self._upload_count_lock, self._uploads_pending, self._uploads_receiving = threading.Lock(), 0, 0
        self.new_session_limit = RateLimit(NEW_SESSIONS_PER_MINUTE, 60.0)

    @classmethod
    def load(
        cls,
        generator: str,
        boundaries: str | os.PathLike[str] | None = None,
        directions: str | os.PathLike[str] | None = None,
        compile_synthesis: bool | None = None,
        **options: Any,
    ) -> EditorService:
        """The service for a registered generator with its shipped boundaries, directions and encoder (or the
        sets in the folders given: ``facesteer.discovery.directions`` format). Unless ``compile_synthesis`` is
        given, the generator is compiled where that pays (``Generator.compiles_faster``)."""
        limit_malloc_arenas()  # before the generator's load starts torch's threads (see facesteer.memory)
        loaded = load_generator(generator)
        if compile_synthesis is None:
            compile_synthesis = loaded.compiles_faster
        boundary_set = Directions.load(boundaries) if boundaries else _load_optional_set(
            shipped_boundaries_folder(loaded.name))  # fmt: skip
        direction_set = Directions.load(directions) if directions else _load_optional_set(
            shipped_directions_folder(loaded.name))  # fmt: skip
        encoder = load_encoder(loaded) if encoder_weights(loaded.name).is_file() else None
        return cls(loaded, load_controls(loaded, boundary_set, direction_set), encoder,
                   compile_synthesis=compile_synthesis, **options)  # fmt: skip

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
            "compiled": self.queue.compiled,
        }

    # ---- operations: each returns a View made while it held the session's lock

    def new_session(self, seed: int | None = None, client: Hashable | None = None) -> View:
        """A session showing the random face of ``seed`` (a random seed if None).

        Raises:
            RateLimitedError: ``client`` (an address; None: not counted) started NEW_SESSIONS_PER_MINUTE already.
        """
        if client is not None:
            self.new_session_limit.check(client, "new sessions")
        seed = self._check_seed(seed)
        code = self._random_code(seed)
        session = self.sessions.create(code, {"kind": "random", "seed": seed}, self._render(code))
        with session.lock:
            return self._view(session)

    def random_face(self, session_id: str, seed: int | None = None) -> View:
        """Show the random face of ``seed`` in the session (its history starts again)."""
        seed = self._check_seed(seed)
        session = self.sessions.get(session_id)
        with session.lock:
            code = self._random_code(seed)
            self.sessions.replace_face(session, code, {"kind": "random", "seed": seed}, self._render(code))
            return self._view(session)

    def uploads_busy(self) -> bool:
        """True when an upload is running and another already waits: a new one would be refused."""
        with self._upload_count_lock:
            return self._uploads_pending >= MAX_PENDING_UPLOADS

    @contextlib.contextmanager
    def receiving_upload(self) -> Iterator[None]:
        """Hold one of MAX_RECEIVING_UPLOADS slots while an upload's bytes arrive (the editor's request body, the
        bot's download), so the memory held for uploads is bounded before a byte of them is read.

        Raises:
            ServiceBusyError: the slots are taken, or uploads already wait to be inverted.
        """
        with self._upload_count_lock:
            if self._uploads_pending >= MAX_PENDING_UPLOADS or self._uploads_receiving >= MAX_RECEIVING_UPLOADS:
                raise ServiceBusyError("other uploads are on their way or being inverted: try again in a few seconds")
            self._uploads_receiving += 1
        try:
            yield
        finally:
            with self._upload_count_lock:
                self._uploads_receiving -= 1

    def upload(self, session_id: str, data: bytes, name: str = "the upload") -> View:
        """Show the inversion of an uploaded picture (bytes): decoded in memory, aligned, inverted.

        Raises:
            ServiceBusyError: an upload is running and another is waiting.
            FacesteerError: not an image, truncated, too large, or no face found in it.
        """
        session = self.sessions.get(session_id)
        with self._upload_count_lock:
            if self._uploads_pending >= MAX_PENDING_UPLOADS:
                raise ServiceBusyError("another upload is being inverted: try again in a few seconds")
            self._uploads_pending += 1
        try:
            # decoded outside the lock (its cost is bounded by facesteer.images): a slow picture holds up no one
            image = decode_image(data, name)
            with self._upload_lock:  # one inversion at a time: it takes both cores
                aligned = self._get_aligner().align(image, name)
                del image
                session.progress = (0, self.recipe.steps)

                def step_done(step: int, _codes: torch.Tensor) -> None:
                    session.progress = (step + 1, self.recipe.steps)

                try:
                    result = invert(aligned[None], self.generator, self.method, self.recipe, self.encoder,
                                    self._perceptual(), after_step=step_done, prior=self._prior())  # fmt: skip
                finally:
                    session.progress = None
        finally:
            with self._upload_count_lock:
                self._uploads_pending -= 1
            release_freed_memory()  # the decoded picture's peak, kept by this worker thread's malloc arena
        codes = convert_codes(self.generator, torch.from_numpy(result.codes), result.space, self.render_space)
        code = codes.numpy()[0].astype(np.float32)
        origin = {"kind": "upload", "method": self.method, "seconds": round(result.seconds, 3)}
        png = self._render(code)
        with session.lock:
            self.sessions.replace_face(session, code, origin, png)
            return self._view(session)

    def set_slider(self, session_id: str, name: str, value: float) -> View:
        """Move one slider to ``value`` (in [-SLIDER_LIMIT, SLIDER_LIMIT])."""
        self._check_control(name)
        value = self._check_value(value)
        return self._change(session_id, lambda state: state.with_slider(name, value))

    def nudge_slider(self, session_id: str, name: str, delta: float) -> View:
        """Move one slider by ``delta`` from where it is (clipped to the range): read and set under one lock."""
        self._check_control(name)
        delta = self._check_value(delta, 2 * SLIDER_LIMIT)

        def nudged(state: EditState) -> EditState:
            value = max(-SLIDER_LIMIT, min(SLIDER_LIMIT, state.slider(name) + delta))
            return state.with_slider(name, round(value, 4))

        return self._change(session_id, nudged)

    def set_condition(self, session_id: str, name: str, on: bool | None) -> View:
        """Switch the condition ``name`` (an attribute slider) on or off (None: the other way from now)."""
        self._check_control(name)
        if self.controls[name].kind != "attribute":
            raise FacesteerError(f"{name!r} is a discovered direction; only attributes can be conditions")
        return self._change(
            session_id, lambda state: state.with_condition(name, name not in state.conditions if on is None else on)
        )

    def undo(self, session_id: str) -> View:
        """Back to the previous state (the very PNG shown then); nothing to undo is not an error."""
        session = self.sessions.get(session_id)
        with session.lock:
            self.sessions.pop(session)
            return self._view(session)

    def reset(self, session_id: str) -> View:
        """Back to the face as it came (sliders at 0, no conditions), as a new step (so it can be undone)."""
        return self._change(session_id, lambda _state: EditState())  # reuses the first state's PNG

    def show(self, session_id: str) -> View:
        """What the session shows now."""
        session = self.sessions.get(session_id)
        with session.lock:
            return self._view(session)

    def png(self, session_id: str) -> bytes:
        """The PNG of the face the session shows."""
        return self.show(session_id).png

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
        with self._directions_lock:
            vector = self._directions.get(key)
        if vector is None:
            vector = self.controls[name].vector
            if applied:
                vector = project_boundary(vector, *(self.controls[c].vector for c in sorted(applied)))[0]
            vector = np.asarray(vector, dtype=np.float64)
            with self._directions_lock:
                if len(self._directions) >= MAX_CACHED_DIRECTIONS:
                    self._directions.clear()
                self._directions[key] = vector
        return vector

    def _change(self, session_id: str, change: Callable[[EditState], EditState]) -> View:
        session = self.sessions.get(session_id)
        with session.lock:
            state = change(session.state)
            if state != session.state:
                png = session.history[0].png if state == session.history[0].state else None
                self.sessions.push(session, Entry(state, png or self._render(self.code_for(session, state))))
            return self._view(session)

    def _view(self, session: Session) -> View:
        state = session.state
        return View(session.id, state, dict(session.origin), session.png, len(session.history) > 1,
                    len(session.history), tuple(self.controls))  # fmt: skip

    def _render(self, code: np.ndarray) -> bytes:
        return cast(bytes, self.queue.render(code))  # PNG bytes: the queue's finish encodes them

    def _random_code(self, seed: int) -> np.ndarray:
        z = self.generator.sample_z(1, seed)
        return self.generator.map(z, self.render_space)[0].astype(np.float32)

    def _check_value(self, value: object, limit: float = SLIDER_LIMIT) -> float:
        try:
            number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
        except OverflowError:  # an integer too large for a float
            number = math.inf
        if not math.isfinite(number) or abs(number) > limit:
            shown = str(value)[:20] + ("..." if len(str(value)) > 20 else "")
            raise FacesteerError(f"slider value must be a number in [-{limit:g}, {limit:g}], got {shown}")
        return round(number, 4)

    def _check_seed(self, seed: int | None) -> int:
        if seed is None:
            return secrets.randbelow(MAX_SEED + 1)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise FacesteerError(f"seed must be an integer in [0, {MAX_SEED}], got {seed!r}")
        return seed

    def _check_control(self, name: str) -> None:
        if name not in self.controls:
            raise FacesteerError(f"no slider {str(name)[:40]!r}; there are: {', '.join(self.controls)}")

    def warm_up(self, progress: bool = False) -> None:
        """Load what the first upload would otherwise wait for (the face detector, the latent prior, LPIPS), and
        compile the generator if asked (minutes the first time, with a progress bar if ``progress``)."""
        self._get_aligner()
        self._prior()
        self._perceptual()
        if self.compile_synthesis and not self.queue.compiled:
            try:
                compiled = CompiledSynthesis(self.generator, self.render_space, compiled_shapes(self.queue.max_batch))
                compiled.warm_up(progress)
            except FacesteerError as error:
                self.compile_problem = f"{error}; rendering without compiling"
                return
            self.queue.use_compiled(compiled)

    def _perceptual(self) -> torch.nn.Module | None:
        if self._lpips is None and self.recipe.perceptual > 0:
            self._lpips = load_lpips()
        return self._lpips

    def _prior(self) -> LatentPrior:
        if self._latent_prior is None:
            self._latent_prior = LatentPrior.fit(self.generator, self.recipe.space)
        return self._latent_prior

    def _get_aligner(self) -> Aligner:
        if self._aligner is None:
            self._aligner = Aligner(self._framing, self.generator.resolution, self.models)
        return self._aligner
