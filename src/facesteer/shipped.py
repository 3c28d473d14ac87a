"""The files facesteer ships inside its package, in ``facesteer/weights``: the one place that says where each
kind lives. ``generator`` is always a registry name (``stylegan2-utkface64``); a path returned may not exist
(nothing of that kind is shipped for that generator). Nothing here reads a file at import time.

    NAME.safetensors, NAME.json, NAME.md    a StyleGAN2 trained by facesteer, its card (export-gan)
    encoder-NAME.safetensors                its inversion encoder (train-encoder)
    boundaries-NAME/, directions-NAME/      its InterFaceGAN boundaries and named directions (direction sets)
    quality-NAME.safetensors                its artifact-quality model (train-quality)
    framing-NAME.json                       how its faces are framed, for aligning photos (learn-framing)
    race-utkface.safetensors, predictor-*.  scorers trained by facesteer
    identity-calibration.json               dlib's same-person distances (check-identity)
    age-v1.onnx, gender-v1.onnx             the teachers' age and gender networks (dlib's, CC0; age-gender.md)
    anime-labels-anime-faces-64.csv         120 anime-faces-64 pictures labelled by eye (check-anime)
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from safetensors import safe_open

#: the package's weights folder
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def generator_file(generator: str) -> Path:
    return WEIGHTS_DIR / f"{generator}.safetensors"


@functools.cache
def generator_cards() -> dict[str, dict[str, Any]]:
    """The card (``export-gan``'s NAME.json) of every shipped StyleGAN2, by name; read once, when first asked."""
    return {card.stem: json.loads(card.read_text()) for card in sorted(WEIGHTS_DIR.glob("stylegan2-*.json"))}


def encoder_file(generator: str) -> Path:
    return WEIGHTS_DIR / f"encoder-{generator}.safetensors"


def boundaries_folder(generator: str) -> Path:
    return WEIGHTS_DIR / f"boundaries-{generator}"


def directions_folder(generator: str) -> Path:
    return WEIGHTS_DIR / f"directions-{generator}"


def quality_file(generator: str) -> Path:
    return WEIGHTS_DIR / f"quality-{generator}.safetensors"


def framing_file(generator: str) -> Path:
    return WEIGHTS_DIR / f"framing-{generator}.json"


#: the teachers' age and gender networks' files, sha256, chip sizes and channel means (age-gender.md: licences)
AGE_GENDER_CONFIG = WEIGHTS_DIR / "age-gender.json"
#: hair colour, hair length and eye colour of 120 pictures of anime-faces-64, labelled by eye (check-anime)
ANIME_LABELS = WEIGHTS_DIR / "anime-labels-anime-faces-64.csv"


def scorer_file(name: str) -> Path:
    """A scorer trained by facesteer: ``race-utkface``, ``predictor-dcgan64``."""
    return WEIGHTS_DIR / f"{name}.safetensors"


#: how far apart dlib's descriptors of one person lie (check-identity)
IDENTITY_CALIBRATION_FILE = WEIGHTS_DIR / "identity-calibration.json"


def recorded_weights(generator: str) -> dict[str, str | None]:
    """What each file shipped for ``generator`` says it was made from (``generator_weights``: the weights identity
    of :func:`facesteer.generators.base.weights_identity`), by its name in the weights folder; None where a file
    records nothing. The card of a StyleGAN2, its quality model, encoder, boundaries and named directions."""
    recorded: dict[str, str | None] = {}
    for card in (WEIGHTS_DIR / f"{generator}.json", quality_file(generator).with_suffix(".json")):
        if card.is_file():
            recorded[card.name] = json.loads(card.read_text()).get("generator_weights")
    for network in (quality_file(generator), encoder_file(generator)):
        if network.is_file():
            with safe_open(network, "pt") as handle:
                card = json.loads((handle.metadata() or {}).get("card", "{}"))
            recorded[network.name] = card.get("generator_weights")
    for folder in (boundaries_folder(generator), directions_folder(generator)):
        if (folder / "directions.json").is_file():
            recorded[f"{folder.name}/directions.json"] = json.loads((folder / "directions.json").read_text()).get(
                "generator_weights"
            )
    return recorded


def shipped_for(kind: str) -> list[str]:
    """The generators that have a shipped ``kind`` (``"directions"``, ``"boundaries"``, ``"quality"``,
    ``"encoder"``, ``"framing"``), sorted."""
    names = (path.name.removeprefix(f"{kind}-").split(".")[0] for path in WEIGHTS_DIR.glob(f"{kind}-*"))
    return sorted(set(names))
