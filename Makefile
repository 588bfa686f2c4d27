# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
SCENARIO ?= scenarios/global-3site.yaml
OUT     ?= outputs/demo

.PHONY: demo test test-all bench lint format clean venv browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first: the pinned CPU build lies on this disk; a looser spec pulls a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# properimage (the ZOGY cross-check of tests/models/transient and benchmarks/transients.py):
	# its dependency tinynpydb runs ez_setup, which needs pkg_resources (gone from setuptools
	# 81+) or else downloads setuptools 18; an older setuptools in its build env avoids both.
	printf 'setuptools<81\n' > $(VENV)/build-constraints.txt
	$(BIN)/pip install -q --build-constraint $(VENV)/build-constraints.txt properimage
	touch $(STAMP)

venv: $(STAMP)

# The browser tests (tests/twin/reports/test_reports_replay.py) drive Debian's Chromium:
# installed here when missing; where it cannot be, those tests skip and say why.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
	  true; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  sudo=$$([ "$$(id -u)" -eq 0 ] || echo "sudo -n"); \
	  ($$sudo apt-get update -qq && $$sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver) \
	    || echo "chromium could not be installed: the browser tests will skip"; \
	else echo "no apt-get: install chromium and chromedriver, or the browser tests skip"; fi

demo: $(STAMP)
	$(BIN)/skytwin run $(SCENARIO) --nights 1 --out $(OUT) --overwrite --replay

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

test-all: $(STAMP) browser
	$(BIN)/python -m pytest -q -m ''

bench: $(STAMP)
	$(BIN)/python benchmarks/visibility.py
	$(BIN)/python benchmarks/vs_astroplan.py
	$(BIN)/python benchmarks/frames.py
	$(BIN)/python benchmarks/env_step.py
	$(BIN)/python benchmarks/twin_throughput.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache
