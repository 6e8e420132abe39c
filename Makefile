# Fresh machine: `make demo` or `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

TFLM_SRC ?= ../shared/tflm-src
TFLM_BUILD ?= $(or $(TFNAS_TFLM_BUILD_DIR),.tflm-build)

.PHONY: demo test test-slow lint venv clean tflm tflm-arm toolchains

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel

$(STAMP): $(PY) setup.cfg pyproject.toml
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m tfnas search --out tfnas_runs/demo

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check tfnas tests tools
	$(VENV)/bin/ruff format --check tfnas tests tools

# The real TFLM (host build) that the memory-model tests compare with; the tests
# build it on first use too. tflm-arm adds the 32-bit bare-metal builds (reference
# and CMSIS-NN) that the slow tests run under qemu-arm.
tflm:
	bash $(TFLM_SRC)/build.sh host $(TFLM_BUILD)

# The compilers and emulator the TFLM builds and the 32-bit tests need (Debian packages).
toolchains:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ make cmake gcc-arm-none-eabi \
		libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-user >/dev/null

tflm-arm:
	bash $(TFLM_SRC)/build.sh eabi32 $(TFLM_BUILD)
	bash $(TFLM_SRC)/build.sh eabi32-cmsis $(TFLM_BUILD)

clean:
	rm -rf $(VENV) build dist *.egg-info
