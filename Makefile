# isthmus task list. `make help` shows the targets.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help system-deps build dev test pytest cargo-test test-debug-build lint fmt bench bench-quick arm arm-armv7 arm-wheel demo clean

help:
	@echo "make build       build the extension (release) and install isthmus editable"
	@echo "make test        install what the tests need (mosquitto, test extras) and run them all"
	@echo "make cargo-test  unit tests of the Python-free Rust core"
	@echo "make test-debug-build  binding tests against a debug build (catches misaligned slices)"
	@echo "make lint        rustfmt, clippy -D warnings, ruff, mypy --strict, stubtest"
	@echo "make bench       benchmarks against their baselines (slow, precise)"
	@echo "make bench-quick the same, a few rounds each (what CI runs)"
	@echo "make arm         cross-build the aarch64 wheel, run the core tests on it under qemu"
	@echo "make arm-armv7   the same for 32-bit ARM (armv7 hard-float)"
	@echo "make arm-wheel   only cross-build a wheel: ARM=aarch64 (default) or ARM=armv7"
	@echo "make demo        install and run the demo"

# Debian packages the tests need: a real Mosquitto broker for the MQTT tests.
system-deps:
	@command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || \
	  ( $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq mosquitto )
	@# The Debian package starts a system broker on 1883; the tests start their own.
	@-$(SUDO) systemctl disable --now mosquitto >/dev/null 2>&1 || true

build:
	$(PIP) install -e .

dev:
	$(PIP) install -e ".[dev]"

test: system-deps
	$(PIP) install -q -e ".[test]"
	$(PYTHON) -m pytest

pytest:
	$(PYTHON) -m pytest

cargo-test:
	cargo test -p isthmus-core

# The array and error-path binding tests against a dev-profile build of the extension,
# installed into its own venv under target/ (debug assertions abort on undefined behaviour
# that a release build survives by luck). Runs after `make test` has installed the deps.
test-debug-build:
	PYTHON=$(PYTHON) bash .ci/debug-bindings.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(PYTHON) -m ruff check python tests benches
	$(PYTHON) -m ruff format --check python tests benches
	$(PYTHON) -m mypy
	$(PYTHON) -m mypy.stubtest isthmus._core --allowlist .stubtest-allowlist

fmt:
	cargo fmt --all
	$(PYTHON) -m ruff format python tests benches
	$(PYTHON) -m ruff check --fix python tests benches

bench:
	$(PYTHON) -m pytest benches --benchmark-only -p no:cacheprovider

bench-quick:
	$(PYTHON) -m pytest benches --benchmark-only -p no:cacheprovider \
	  --benchmark-min-rounds=3 --benchmark-max-time=0.25 --benchmark-warmup=off \
	  --benchmark-columns=median,ops,rounds -q

# ARM gateways: Debian's Rust toolchain cross-builds, qemu user-mode emulation tests.
ARM ?= aarch64
arm:
	PYTHON=$(PYTHON) bash .ci/arm.sh aarch64

arm-armv7:
	PYTHON=$(PYTHON) bash .ci/arm.sh armv7

arm-wheel:
	PYTHON=$(PYTHON) bash .ci/arm.sh $(ARM) --wheel-only

demo:
	$(PIP) install -q .
	isthmus demo

clean:
	rm -rf target out .pytest_cache .mypy_cache .ruff_cache
