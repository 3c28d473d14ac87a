"""The editor page in a real browser: Playwright driving Debian's Chromium against `facesteer serve`'s app on
loopback. Chromium comes from `apt-get install chromium` (`make test` installs it and sets FACESTEER_REQUIRE_BROWSER,
so there a missing browser fails instead of skipping)."""

from __future__ import annotations

import base64
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facesteer.service import EditorService
from facesteer.web.app import create_app
from facesteer.web.server import serving
from tests.conftest import requires_models
from tests.test_service import CELEBA

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("FACESTEER_REQUIRE_BROWSER"):
    raise RuntimeError("FACESTEER_REQUIRE_BROWSER is set but no chromium is installed (apt-get install chromium)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")

#: flags for a closed network (no background connections) and a root user in a container
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def server(generator):
    service = EditorService.load(generator.name)  # what `facesteer serve` loads: shipped boundaries and directions
    with serving(create_app(service)) as url:
        yield url, service
    service.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    url, _ = server
    context = browser.new_context(accept_downloads=True, bypass_csp=True)  # the page CSP forbids eval: the tests use it
    page = context.new_page()
    page.goto(f"{url}/?seed=4")  # a face the teachers find at every smile step
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    yield page
    context.close()


def shown_png(page) -> bytes:
    return base64.b64decode(page.get_attribute("#face", "src").split(",", 1)[1])


def shown_image(page) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(shown_png(page))).convert("RGB"))


def wait_for_version(page, previous: str) -> str:
    page.wait_for_function(f"document.getElementById('face').dataset.version !== '{previous}'", timeout=30_000)
    return page.get_attribute("#face", "data-version")


def move_slider(page, name: str, value: float) -> None:
    version = page.get_attribute("#face", "data-version")
    page.fill(f"#slider-{name}", str(value))  # a range input: sets the value, fires input and change
    wait_for_version(page, version)


def test_page_loads_with_a_face_and_a_slider_per_direction(page, server):
    _, service = server
    assert shown_image(page).shape == (64, 64, 3)
    assert page.locator("#controls input[type=range]").count() == len(service.controls)
    assert page.locator("#conditions input[type=checkbox]").count() == 5  # the shipped boundaries
    assert "seed 4" in page.text_content("#origin")
    assert page.is_disabled("#undo")


@requires_models
def test_slider_changes_the_face_and_the_teachers_see_it_move(page, teachers):
    smile = teachers.attributes.index("smile")
    faces = {}
    for value in (-3.0, 0.0, 3.0):
        if value != 0.0:
            move_slider(page, "smile", value)
        faces[value] = shown_image(page) if value != 0.0 else None
    version = page.get_attribute("#face", "data-version")
    page.click("#reset")
    wait_for_version(page, version)
    faces[0.0] = shown_image(page)
    assert not np.array_equal(faces[3.0], faces[0.0]) and not np.array_equal(faces[-3.0], faces[0.0])
    scores = teachers.score(np.stack([faces[-3.0], faces[0.0], faces[3.0]]))[:, smile]
    assert scores[0] < scores[1] < scores[2], scores


def test_undo_and_reset_restore_the_exact_bytes(page):
    original = shown_png(page)
    move_slider(page, "age", 2.0)
    aged = shown_png(page)
    move_slider(page, "pose", -2.0)
    assert shown_png(page) not in (original, aged)
    version = page.get_attribute("#face", "data-version")
    page.click("#undo")
    wait_for_version(page, version)
    assert shown_png(page) == aged
    page.click("#reset")
    page.wait_for_function("document.getElementById('slider-age').value === '0'")
    assert shown_png(page) == original


def test_download_is_the_png_shown(page):
    move_slider(page, "gender", 1.5)
    with page.expect_download() as download_info:
        page.click("#download")
    path = download_info.value.path()
    assert Path(path).read_bytes() == shown_png(page)


@pytest.mark.skipif(not CELEBA.is_dir(), reason=f"{CELEBA} not found")
def test_upload_shows_its_reconstruction_with_progress(page, server):
    _, service = server
    before = shown_png(page)
    photo = sorted(CELEBA.iterdir())[0]
    page.set_input_files("#upload", str(photo))
    page.wait_for_selector("#busy:not([hidden])", timeout=10_000)  # the progress bar shows while it inverts
    page.wait_for_function("document.getElementById('origin').textContent.includes('your photo')", timeout=60_000)
    assert page.is_hidden("#busy")
    shown = shown_png(page)
    assert shown != before
    session = page.evaluate("state.session")
    assert service.png(session) == shown  # the reconstruction the service made
    # it looks like the photo: closer to the aligned photo than a random face is
    from facesteer.alignment import Aligner, load_framing
    from facesteer.images import load_image

    with Aligner(load_framing(service.generator.name), 64) as aligner:
        aligned = aligner.align(load_image(photo)).astype(float)
    error = np.mean((shown_image(page).astype(float) - aligned) ** 2)
    random_error = np.mean((np.asarray(Image.open(io.BytesIO(before))).astype(float) - aligned) ** 2)
    assert error < random_error


def test_a_bad_upload_shows_one_line_and_keeps_the_face(page, tmp_path):
    before = shown_png(page)
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    page.set_input_files("#upload", str(text))
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    assert "not an image" in page.text_content("#error")
    assert shown_png(page) == before


def test_a_condition_changes_how_a_slider_moves_the_face(page):
    move_slider(page, "age", 3.0)
    plain = shown_png(page)
    version = page.get_attribute("#face", "data-version")
    page.check("#condition-gender")
    wait_for_version(page, version)
    assert page.is_checked("#condition-gender")
    assert shown_png(page) != plain  # age now moves off the gender boundary: another face
    version = page.get_attribute("#face", "data-version")
    page.click("#undo")
    wait_for_version(page, version)
    assert shown_png(page) == plain and not page.is_checked("#condition-gender")


def test_a_page_whose_session_is_gone_starts_a_new_one_and_says_so(page, server):
    """The page never recovered from an evicted or expired session: every action answered 404 until a reload."""
    _, service = server
    before = page.get_attribute("#face", "data-version")
    limit = service.sessions.max_sessions
    service.sessions.max_sessions = 1
    try:
        service.new_session(5)  # another user's session evicts the page's (the least recently used)
    finally:
        service.sessions.max_sessions = limit
    page.click("#random")
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    assert "expired" in page.text_content("#error") and "new one" in page.text_content("#error")
    session = page.evaluate("state.session")
    assert service.sessions.get(session)  # the page holds a live session again
    move_slider(page, "smile", 1.0)  # and its next action works
    assert page.get_attribute("#face", "data-version") != before and page.is_hidden("#error")
