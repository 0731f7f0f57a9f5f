# filmcolor: the two set-up commands of a fresh machine (see README.md).
#   make demo   installs ffmpeg, a virtualenv and filmcolor, then restores a B&W film made of colour photos
#   make test   installs ffmpeg, chromium, a virtualenv, filmcolor with [train,cluster,test], then runs the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_OUT ?= demo_out
# PyTorch for the [train] extra: 2.13.0 is the CPU build on the project's machines.
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test system-deps test-deps venv venv-test docs clean

system-deps:
	@if command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1; then \
	  echo "ffmpeg: $$(command -v ffmpeg)"; \
	else \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing ffmpeg (Debian package)"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq ffmpeg; \
	fi

# The contact sheet of filmcolor shots is tested in a real headless browser.
test-deps: system-deps
	@if command -v chromium >/dev/null 2>&1; then \
	  echo "chromium: $$(command -v chromium)"; \
	else \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing chromium (Debian package, for the contact sheet's browser test)"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python
	$(BIN)/pip install -q -e ".[demo]"

venv-test: $(BIN)/python
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[train,cluster,test]"

demo: system-deps venv
	$(BIN)/python pipelines/make_sample.py --out "$(DEMO_OUT)"
	$(BIN)/filmcolor restore "$(DEMO_OUT)/sample.mp4" "$(DEMO_OUT)/sample_color.mp4" --overwrite
	$(BIN)/python pipelines/make_sample.py --out "$(DEMO_OUT)" --sheet
	@echo "colour film: $(DEMO_OUT)/sample_color.mp4   before/after/truth: $(DEMO_OUT)/before_after_truth.png"

test: test-deps venv-test
	$(BIN)/python -m pytest -q -ra

docs: venv
	$(BIN)/python pipelines/gen_cli_docs.py > docs/cli.md

clean:
	rm -rf $(VENV) $(DEMO_OUT) build *.egg-info
