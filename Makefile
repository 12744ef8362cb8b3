# dupcore — the two commands of the README are `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
DUPLICITY_VERSION ?= 3.2.1
# ISA-L (DUPCORE_COMPRESS=fast) goes into the build where its build tools are installed
# (autoreconf, libtoolize, and nasm on x86-64); without them the build has zlib-rs only.
# Evaluated when a recipe runs (`=`), so after `deps` has installed them on a fresh machine.
HAVE_ISAL_TOOLS = $(shell command -v autoreconf >/dev/null 2>&1 && command -v libtoolize >/dev/null 2>&1 && { [ "$$(uname -m)" != x86_64 ] || command -v nasm >/dev/null 2>&1; } && echo yes)
, := ,
CARGO_FEATURES = $(if $(HAVE_ISAL_TOOLS),--features isal,)
MATURIN_ARGS = $(if $(HAVE_ISAL_TOOLS),--features python$(,)pyo3/extension-module$(,)isal,)

.PHONY: deps setup build demo test test-fast test-rust test-rust-aarch64 test-python test-packaging test-upstream upstream-baseline lint bench fuzz-build fuzz-smoke wheels deb clean

$(VPY):
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q "duplicity==$(DUPLICITY_VERSION)" "maturin>=1.5,<2" pytest ruff

## deps: the Debian/Ubuntu packages of scripts/system-deps.txt (installed when run as root)
deps:
	@bash scripts/install-system-deps

## setup: a venv with duplicity from PyPI and dupcore built from this tree (release mode)
setup: deps $(VPY) build

build: $(VPY)
	MATURIN_PEP517_ARGS="$(MATURIN_ARGS)" $(VPY) -m pip install -q --no-build-isolation .

## demo: the main job — real backup/restore with stock duplicity and with dupcore, timed
demo: setup
	$(VPY) -m dupcore demo

## test: Rust unit tests (also built for aarch64 and run under qemu), the pytest cross-tests
## against real duplicity, gpg and rdiff, the release wheels, sdist and .deb as users install
## them, duplicity's own test suite with dupcore active (every stock-passing test must pass),
## then every fuzz target for 60 s
test: setup test-rust test-rust-aarch64 test-python test-packaging test-upstream fuzz-smoke

test-rust:
	cargo test --release --locked $(CARGO_FEATURES)

## test-rust-aarch64: the Rust unit tests built for aarch64 and run under qemu-user
test-rust-aarch64:
	rustup target add aarch64-unknown-linux-gnu
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu" \
	CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
	cargo test --release --locked --target aarch64-unknown-linux-gnu $(CARGO_FEATURES)

test-python:
	$(VPY) -m pytest -q -m "not packaging" tests

## test-packaging: builds the wheels and the sdist (scripts/build-wheels) and tests them, the
## .deb and pipx as users install them (tests/test_packaging.py)
test-packaging: setup
	$(VPY) -m pytest -q -m packaging tests/test_packaging.py

## test-fast: Rust unit tests and the Python unit and differential tests (no duplicity runs,
## gpg, other versions or slow cases), a few minutes for everyday work
test-fast: setup
	cargo test --release --locked $(CARGO_FEATURES)
	$(VPY) -m pytest -q -m "not e2e and not gpg and not versions and not slow" tests

## test-upstream: duplicity 3.0.x's own unit and functional tests (tests/upstream/run.py)
test-upstream: setup
	MATURIN_ARGS="$(MATURIN_ARGS)" $(VPY) tests/upstream/run.py

## upstream-baseline: rewrite the list of upstream tests that pass on stock duplicity
upstream-baseline: setup
	MATURIN_ARGS="$(MATURIN_ARGS)" $(VPY) tests/upstream/run.py --record-stock

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets --features python $(CARGO_FEATURES) -- -D warnings
	cargo clippy --manifest-path fuzz/Cargo.toml --bins -- -D warnings
	$(VENV)/bin/ruff check python tests benches scripts
	$(VPY) scripts/check-cycles.py

bench: setup
	$(VPY) benches/librsync_bench.py

fuzz-build:
	cargo build --manifest-path fuzz/Cargo.toml --bins

## fuzz-smoke: every fuzz target for 60 s under cargo-fuzz (installed when missing);
## a longer run: scripts/fuzz-run 3600 [TARGET ...]
fuzz-smoke:
	scripts/fuzz-run 60

## wheels: abi3 wheels for manylinux2014 x86_64 and aarch64 (maturin + zig) and the sdist in dist/
wheels: $(VPY)
	VPY=$(VPY) bash scripts/build-wheels dist

## deb: python3-dupcore .deb packages for Debian/Ubuntu from the wheels, in dist/
deb: wheels
	for w in dist/dupcore-*manylinux*.whl; do bash scripts/build-deb "$$w" dist; done

clean:
	rm -rf target $(VENV)
