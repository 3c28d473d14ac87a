"""scripts/ship_generator.py: its plan is commands the CLI accepts, and it skips what records the weights shipped."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup

from facesteer import shipped
from facesteer.cli import app

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ship_generator.py"


def parse(command: str) -> None:
    """Parse a facesteer command line as the CLI would (options, types, required ones), without running it."""
    words = shlex.split(command)
    name, command_object = "facesteer", typer.main.get_command(app)
    while isinstance(command_object, TyperGroup):
        name, words = words[0], words[1:]
        command_object = command_object.get_command(command_object.context_class(command_object), name)
        assert command_object is not None, f"no command {name!r}"
    command_object.make_context(name, words)


@pytest.mark.parametrize("name", sorted(shipped.generator_cards()))
def test_the_plan_is_commands_the_cli_accepts_and_skips_what_records_the_weights(name, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copyfile(shipped.generator_file(name), run / "generator.safetensors")  # the weights shipped today
    result = subprocess.run([sys.executable, str(SCRIPT), name, "--run", str(run), "--dry-run"],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"# export: done (its files record the weights of {run / 'generator.safetensors'})" in lines
    assert any(line.startswith("# quality: done") for line in lines)
    commands = [line.removeprefix("$ facesteer ") for line in lines if line.startswith("$ facesteer ")]
    assert any(command.startswith("fix ") for command in commands)
    for command in commands:
        parse(command)

    result = subprocess.run([sys.executable, str(SCRIPT), name, "--run", str(run), "--dry-run", "--from", "quality"],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert "$ facesteer train-quality" in result.stdout  # --from runs it again


def test_a_run_without_a_generator_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "stylegan2-anime64", "--run", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 2 and "holds no exported generator" in result.stderr
