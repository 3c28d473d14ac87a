"""The ``facesteer`` command line: parse arguments, call the Python API, print. No logic lives here.

User mistakes (bad arguments, missing files, wrong shapes) print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from facesteer import modelfiles
from facesteer.attributes import ATTRIBUTES, DEFAULT_SCORER, SCORERS, load_scorer
from facesteer.errors import FacesteerError
from facesteer.generators import DEFAULT_GENERATOR, GENERATORS, load_generator
from facesteer.images import image_grid, save_png

app = typer.Typer(
    name="facesteer",
    help="Semantic face editing in the latent space of GANs.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()

GeneratorOption = typer.Option(DEFAULT_GENERATOR, "--generator", "-g", help="registered name or checkpoint path")
ModelsOption = typer.Option(
    None, "--models", help=f"model files folder (default: ${modelfiles.ENV_VAR} or ../shared/models)"
)
JsonOption = typer.Option(False, "--json", help="print JSON instead of a table")


def _print_json(content: Any) -> None:
    sys.stdout.write(json.dumps(content, indent=2) + "\n")


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    return table


@app.command()
def info(models: Path | None = ModelsOption, as_json: bool = JsonOption) -> None:
    """List generators, scorers, attributes and model files (where each is, whether it is found)."""
    folder = modelfiles.models_dir(models)
    content = {
        "generators": [{"name": name, "description": text} for name, (_, text) in GENERATORS.items()],
        "scorers": [{"name": name, "description": text} for name, text in SCORERS.items()],
        "attributes": [vars(attribute) for attribute in ATTRIBUTES.values()],
        "models_dir": str(folder),
        "model_files": [
            {
                "name": f.name,
                "path": str(folder / f.name),
                "status": modelfiles.file_status(f.name, folder),
                "purpose": f.purpose,
                "source": f.source,
            }
            for f in modelfiles.MODEL_FILES.values()
        ],
    }
    if as_json:
        _print_json(content)
        return
    console.print(
        _table(
            "Generators",
            ["name", "description"],
            [[g["name"], g["description"]] for g in content["generators"]],
        )
    )
    console.print(
        _table("Scorers", ["name", "description"], [[s["name"], s["description"]] for s in content["scorers"]])
    )
    console.print(
        _table(
            "Attributes",
            ["name", "unit", "range", "meaning"],
            [[a.name, a.unit, a.value_range, a.meaning] for a in ATTRIBUTES.values()],
        )
    )
    console.print(
        _table(
            f"Model files in {folder}",
            ["file", "status", "where to get it"],
            [[f["name"], f["status"], f["source"]] for f in content["model_files"]],
        )
    )


@app.command()
def generate(
    out: Path = typer.Option(..., "--out", "-o", help="PNG file for the grid of faces"),
    generator: str = GeneratorOption,
    num: int = typer.Option(16, "--num", "-n", min=1, max=4096, help="number of faces"),
    seed: int = typer.Option(0, "--seed", min=0),
    columns: int | None = typer.Option(None, "--columns", min=1, help="faces per row (default: square grid)"),
) -> None:
    """Synthesize NUM random faces (rows 0..NUM-1 of SEED) and save them as one PNG grid."""
    model = load_generator(generator)
    images = model.synthesize(model.sample_z(num, seed))
    save_png(out, image_grid(images, columns))
    console.print(f"wrote {num} faces from {model.name} (seed {seed}) to {out}")


@app.command()
def sample(
    out: Path = typer.Option(..., "--out", "-o", help="dataset folder (created; resumed if it holds the same run)"),
    generator: str = GeneratorOption,
    num: int = typer.Option(..., "--num", "-n", min=1, help="number of samples"),
    seed: int = typer.Option(0, "--seed", min=0),
    scorer: str = typer.Option(DEFAULT_SCORER, "--scorer", help=f"attribute scorer ({', '.join(SCORERS)}) or 'none'"),
    models: Path | None = ModelsOption,
    chunk_size: int = typer.Option(512, "--chunk-size", min=1, help="rows per commit to disk"),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="images synthesized and scored at a time"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
) -> None:
    """Sample latent codes, synthesize and score the faces, and store them as a resumable LatentDataset."""
    from facesteer.latents import sample_dataset

    model = load_generator(generator)
    scoring = None if scorer == "none" else load_scorer(scorer, models)
    try:
        dataset = sample_dataset(model, scoring, out, num, seed, chunk_size, batch_size, progress=not quiet)
    finally:
        if scoring is not None:
            scoring.close()
    missing = dataset.manifest["rows_without_face"]
    console.print(
        f"{out}: {dataset.num} samples of {model.name} (seed {seed}); "
        f"{'no scorer' if scoring is None else f'{missing} without a face'}"
    )


@app.command("check-scorer")
def check_scorer(
    data: Path = typer.Option(Path("../shared/data/utkface-crop-part1"), "--data", help="UTKFace folder"),
    scorer: str = typer.Option(DEFAULT_SCORER, "--scorer"),
    num: int = typer.Option(500, "--num", min=1),
    seed: int = typer.Option(0, "--seed", min=0),
    min_age: int = typer.Option(15, "--min-age", min=0),
    models: Path | None = ModelsOption,
    as_json: bool = JsonOption,
) -> None:
    """Check a scorer's age and gender against UTKFace's labels on a fixed random subset."""
    from facesteer.evaluation import check_scorer_on_utkface

    with load_scorer(scorer, models) as scoring:
        result = check_scorer_on_utkface(scoring, data, num, seed, min_age, progress=not as_json)
    if as_json:
        _print_json(result)
        return
    rows = [
        [
            f"age >= {min_age}",
            result["adults"]["faces"],
            f"{result['adults']['gender_accuracy']:.3f}",
            f"{result['adults']['age_mae']:.2f}",
        ],
        [
            "all ages",
            result["all"]["faces"],
            f"{result['all']['gender_accuracy']:.3f}",
            f"{result['all']['age_mae']:.2f}",
        ],
    ]
    console.print(
        _table(
            f"{scorer} on {num} UTKFace photos (seed {seed}; {result['no_face']} without a face)",
            ["subset", "faces", "gender accuracy", "age MAE (years)"],
            rows,
        )
    )


def _is_click_error(error: BaseException, name: str) -> bool:
    # Typer raises click's exceptions (vendored in recent releases); match them by class name.
    return any(cls.__name__ == name for cls in type(error).__mro__)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning user errors into one line on stderr and exit status 2."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="facesteer", standalone_mode=False)
    except FacesteerError as error:
        sys.stderr.write(f"facesteer: error: {error}\n")
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("facesteer: interrupted\n")
        sys.exit(130)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except Exception as error:
        if _is_click_error(error, "NoArgsIsHelpError"):
            sys.stdout.write(error.ctx.get_help() + "\n")  # type: ignore[attr-defined]
            return
        if _is_click_error(error, "UsageError"):
            sys.stderr.write(f"facesteer: error: {error.format_message()}\n")  # type: ignore[attr-defined]
            sys.exit(2)
        if _is_click_error(error, "Abort"):
            sys.stderr.write("facesteer: interrupted\n")
            sys.exit(130)
        raise
    if isinstance(result, int) and result:
        sys.exit(result)


if __name__ == "__main__":
    main()
