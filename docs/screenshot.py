"""The README's screenshot of the editor: `facesteer serve`'s app in Debian's Chromium (Playwright), one slider
moved and one condition on.

    python docs/screenshot.py [--generator stylegan2-utkface64] [--seed 3] [--out docs/editor.png]
"""

from __future__ import annotations

import argparse
import shutil

from playwright.sync_api import sync_playwright

from facesteer.service import EditorService
from facesteer.web.app import create_app
from facesteer.web.server import serving

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--generator", default="stylegan2-utkface64")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--slider", default="age")
    parser.add_argument("--value", type=float, default=2.0)
    parser.add_argument("--condition", default="gender")
    parser.add_argument("--photo", default=None, help="upload this picture instead of showing a random face")
    parser.add_argument("--out", default="docs/editor.png")
    args = parser.parse_args()
    service = EditorService.load(args.generator)
    with serving(create_app(service)) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 760}, bypass_csp=True)
        page.goto(f"{url}/?seed={args.seed}")
        page.wait_for_selector("body[data-ready=true]")

        def wait_for_change(action) -> None:
            version = page.get_attribute("#face", "data-version")
            action()
            page.wait_for_function(f"document.getElementById('face').dataset.version !== '{version}'")

        if args.photo:
            page.set_input_files("#upload", args.photo)
            page.wait_for_function("document.getElementById('origin').textContent.includes('your photo')",
                                   timeout=60_000)  # fmt: skip
        if args.condition:
            wait_for_change(lambda: page.check(f"#condition-{args.condition}"))
        wait_for_change(lambda: page.fill(f"#slider-{args.slider}", str(args.value)))
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    service.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
