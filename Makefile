# dupcore — the two commands of the README are `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
DUPLICITY_VERSION ?= 3.2.1

.PHONY: setup build demo test test-rust test-python lint bench fuzz-build clean

$(VPY):
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q "duplicity==$(DUPLICITY_VERSION)" "maturin>=1.5,<2" pytest ruff

## setup: a venv with duplicity from PyPI and dupcore built from this tree (release mode)
setup: $(VPY) build

build: $(VPY)
	$(VPY) -m pip install -q --no-build-isolation .

## demo: the main job — real backup/restore with stock duplicity and with dupcore, timed
demo: setup
	$(VPY) -m dupcore demo

## test: Rust unit tests, then the pytest cross-tests against real duplicity, gpg and rdiff
test: setup test-rust test-python

test-rust:
	cargo test --release --locked
	cargo build --manifest-path fuzz/Cargo.toml --bins

test-python:
	$(VPY) -m pytest -q tests

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets --features python -- -D warnings
	$(VENV)/bin/ruff check python tests benches

bench: setup
	$(VPY) benches/librsync_bench.py

fuzz-build:
	cargo build --manifest-path fuzz/Cargo.toml --bins

clean:
	rm -rf target $(VENV)
