"""Where torch work runs: ``auto``, ``cpu`` or ``cuda``, checked once for every command that trains."""

from __future__ import annotations

import torch

from facesteer.errors import FacesteerError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is available, else ``cpu``; ``cpu`` / ``cuda`` checked.

    Raises:
        FacesteerError: an unknown device, or ``cuda`` without a GPU.
    """
    if device not in DEVICES:
        raise FacesteerError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise FacesteerError("device cuda: no CUDA device is available")
    return device
