"""The interfaces over the service layer: ``serve`` (the browser editor) and ``bot`` (Telegram)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # imported inside serve and bot: the service loads the inversion models
    from facesteer.service import EditorService  # deferred: FastAPI and the service: 2.2 s of start-up

from facesteer.cli.app import app, console
from facesteer.cli.options import (
    CompileOption,
    GeneratorOption,
    ModelsOption,
)


@app.command()
def serve(
    generator: str = GeneratorOption,
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (loopback by default)"),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    boundaries: Path | None = typer.Option(None, "--boundaries", help="boundary set folder (default: the shipped)"),
    directions: Path | None = typer.Option(None, "--directions", help="named direction set (default: the shipped)"),
    max_batch: int = typer.Option(32, "--max-batch", min=1, help="codes per forward pass (1 = no batching)"),
    compile_synthesis: bool | None = CompileOption,
    models: Path | None = ModelsOption,
) -> None:
    """The browser editor: one page with the face, a slider per attribute, conditions, random, upload, undo,
    reset and download."""
    from facesteer.service import EditorService  # deferred: FastAPI and the service: 2.2 s of start-up
    from facesteer.web.app import allowed_hosts_for, create_app  # deferred: FastAPI and the service: 2.2 s of start-up
    from facesteer.web.server import serve as serve_app  # deferred: FastAPI and the service: 2.2 s of start-up

    service = EditorService.load(
        generator, boundaries, directions, compile_synthesis, models=models, max_batch=max_batch
    )
    _warm_up(service)
    console.print(f"facesteer editor for {service.generator.name} on http://{host}:{port}/  (Ctrl+C stops it)")
    try:
        app = create_app(service, allowed_hosts=allowed_hosts_for(host))
        serve_app(app, host, port)
    finally:
        service.close()


@app.command()
def bot(
    generator: str = GeneratorOption,
    base_url: str | None = typer.Option(
        None, "--base-url", help="Bot API server (default: Telegram's); the bot calls BASE/bot<token>/<method>"
    ),
    boundaries: Path | None = typer.Option(None, "--boundaries", help="boundary set folder (default: the shipped)"),
    directions: Path | None = typer.Option(None, "--directions", help="named direction set (default: the shipped)"),
    compile_synthesis: bool | None = CompileOption,
    models: Path | None = ModelsOption,
) -> None:
    """The Telegram bot: /random, photos in, buttons per attribute; the token comes from $FACESTEER_BOT_TOKEN."""
    import logging

    from facesteer.bot import read_token, run_bot  # deferred: the Telegram client and the service: 2.2 s of start-up
    from facesteer.service import EditorService  # deferred: FastAPI and the service: 2.2 s of start-up

    token = read_token()  # refused before any model is loaded
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    service = EditorService.load(generator, boundaries, directions, compile_synthesis, models=models)
    _warm_up(service)
    console.print(f"facesteer bot for {service.generator.name} is polling (Ctrl+C stops it)")
    try:
        run_bot(service, token, base_url)
    finally:
        service.close()


def _warm_up(service: EditorService) -> None:
    if service.compile_synthesis:
        console.print("compiling the generator for faster rendering: minutes the first time, seconds once "
                      "TorchInductor's cache holds it (--no-compile skips it)")  # fmt: skip
    service.warm_up(progress=True)
    if service.compile_problem:
        console.print(f"[yellow]warning:[/yellow] {service.compile_problem}")
