"""The ``facesteer`` command line: parse arguments, call the Python API, print. No logic lives here.

One module per domain adds its commands to the one app (``app.py``); importing them here registers them.
"""

from facesteer.cli import boundaries, checks, discovery, photos, sampling, serving, training  # noqa: F401 (registers)
from facesteer.cli.app import app, main

#: the order ``facesteer --help`` lists the commands in: from drawing faces to serving them
ORDER = [
    "info",
    "generate",
    "sample",
    "check_scorer",
    "check_identity",
    "learn_framing_command",
    "align",
    "check_anime",
    "train_boundary_command",
    "condition",
    "correlate",
    "edit",
    "invert",
    "train_encoder_command",
    "edit_photo",
    "rank",
    "fix",
    "evaluate_fix",
    "evaluate",
    "demo",
    "train_predictor",
    "evaluate_predictor",
    "train_gan",
    "train_quality_command",
    "train_race_command",
    "export_gan",
    "fid",
    "label",
    "serve",
    "bot",
]
app.registered_commands.sort(key=lambda command: ORDER.index(command.callback.__name__))

__all__ = ["app", "main"]
