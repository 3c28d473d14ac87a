"""Attribute scorers: ``load_scorer(name)``, what each attribute means (:data:`ATTRIBUTES`), and whether a scorer
fits a generator's faces (:func:`check_scorer_fits`)."""

from __future__ import annotations

import os

from facesteer.attributes.anime import AnimeScorer
from facesteer.attributes.base import ATTRIBUTES, Attribute, AttributeScorer
from facesteer.attributes.identity import IdentityEmbedder, dlib_model_folder
from facesteer.attributes.parallel import ParallelScorer
from facesteer.attributes.predictor import PredictorScorer, check_scorer_fits
from facesteer.attributes.quality import QualityScorer
from facesteer.attributes.teachers import ExtendedScorer, TeacherScorer
from facesteer.errors import FacesteerError
from facesteer.modelfiles import models_dir, require_model_file

DEFAULT_SCORER = "teachers"

#: name -> model files it needs from the models folder
SCORER_FILES: dict[str, tuple[str, ...]] = {
    "teachers": ("face_landmarker.task", "glasses_fp16.tflite"),
    "extended": ("face_landmarker.task", "glasses_fp16.tflite"),
}

#: name -> one-line description
SCORERS: dict[str, str] = {
    "teachers": "MediaPipe (pose, smile) + dlib's age and gender networks + glasses TFLite; ~55 img/s per process",
    "extended": "the teachers + face width/height, race (UTKFace-trained CNN), action units AU1/6/9/12/25-26",
    "predictor": "facesteer's CNN distilled from the teachers, dcgan-digiface64's faces only; ~6,300 img/s, 2 cores",
    "identity": "dlib's 128-d face embedding (columns id0..id127), NaN where no face; identity distances",
    "anime": "hair lightness, hair colours, hair length and eye colours of anime faces (animeface + pixel "
    "statistics); ~20 img/s per process",
    "quality": "realism logit of a classifier of the generator's training photos vs its samples (positive = real)",
}

#: scorers that are Python loops over images, so worker processes make them faster
MULTIPROCESS_SCORERS = ("teachers", "extended", "identity", "anime")


def default_workers() -> int:
    """Scorer processes to use by default: one per CPU core."""
    return os.cpu_count() or 1


def load_scorer(
    name: str = DEFAULT_SCORER,
    models: str | os.PathLike[str] | None = None,
    workers: int = 1,
    predictor_weights: str | os.PathLike[str] | None = None,
    generator: str | None = None,
) -> AttributeScorer:
    """Build the registered scorer ``name``, reading model files from ``models`` (see ``modelfiles``).

    With ``workers`` > 1 the scorer runs in that many processes (:class:`ParallelScorer`); the scores are the
    same, only faster on a multi-core machine. ``predictor_weights`` (``predictor`` only) loads a predictor
    from that file, e.g. one distilled for another generator by ``facesteer train-predictor --generator``;
    default: the packaged one, for ``dcgan-digiface64`` only (``PredictorScorer.generator``). ``generator``
    names the generator whose samples ``quality`` judges (each has its own realism classifier).
    """
    if name not in SCORERS:
        raise FacesteerError(f"unknown scorer {name!r}; available: {', '.join(sorted(SCORERS))}")
    if predictor_weights is not None and name != "predictor":
        raise FacesteerError(f"predictor weights are for `scorer` predictor, not {name}")
    if workers > 1 and name in MULTIPROCESS_SCORERS:  # the predictor is one batched network: no workers
        for required in SCORER_FILES.get(name, ()):  # fail here, with a clear message, not inside a worker
            require_model_file(required, models)
        if name == "identity":
            dlib_model_folder()
        return ParallelScorer(load_scorer, name, models_dir(models), workers)
    if name == "teachers":
        return TeacherScorer(models)
    if name == "extended":
        return ExtendedScorer(models)
    if name == "identity":
        return IdentityEmbedder()
    if name == "anime":
        return AnimeScorer()
    if name == "quality":
        return QualityScorer(generator)
    if name == "predictor":
        return PredictorScorer(predictor_weights)
    raise FacesteerError(f"unknown scorer {name!r}; available: {', '.join(sorted(SCORERS))}")


__all__ = [
    "ATTRIBUTES", "DEFAULT_SCORER", "SCORERS", "Attribute", "AttributeScorer", "check_scorer_fits", "load_scorer",
]  # fmt: skip
