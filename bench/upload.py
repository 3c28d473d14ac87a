"""What an editor or bot user waits for after sending a photo: decode, align, invert (the service's recipe) and
render, one picture at a time, through `EditorService.upload` (the first 6 pictures of each held-out folder).

    python bench/upload.py
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from facesteer.errors import FacesteerError
from facesteer.service import EditorService

CASES = (
    ("stylegan2-utkface64", "../shared/data/celeba-sample"),
    ("stylegan2-anime64", "../shared/data/selfie2anime-sample"),
    ("dcgan-digiface64", "../shared/data/celeba-sample"),
)


def main() -> None:
    for generator, folder in CASES:
        service = EditorService.load(generator, compile_synthesis=False)  # uploads only: no batch rendering
        service.warm_up()
        session = service.new_session(0).session
        times = []
        for path in sorted(Path(folder).iterdir())[:6]:
            started = time.perf_counter()
            try:
                service.upload(session, path.read_bytes(), path.name)
            except FacesteerError as error:
                print(f"  {path.name}: {error}")
                continue
            times.append(time.perf_counter() - started)
        recipe = service.recipe
        print(
            f"{generator:20s} {service.method} ({recipe.name}: {recipe.space}, {recipe.steps} steps): "
            f"{', '.join(f'{t:.2f}' for t in times)} s; median {statistics.median(times):.2f} s",
            flush=True,
        )
        service.close()


if __name__ == "__main__":
    main()
