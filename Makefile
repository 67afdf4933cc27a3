# mhlab: run as root (sudo make …).  Every target installs what it needs first (scripts/setup.sh).
PY := .venv/bin/python
.PHONY: setup demo test test-slow test-unit bench clean-labs

setup:
	@bash scripts/setup.sh

## The thesis's story: ISP A1's access link fails under live traffic, on the same two-site lab once per
## mechanism (none, sadr-static, shim), results side by side; report in reports/demo/.
demo: setup
	@.venv/bin/mhlab demo

## The whole test suite but the slow-marked tests: unit tests (no root) and lab tests (root, real
## namespaces), JOBS test modules at a time (each worker keeps its labs in a run root of its own).
JOBS ?= 2
test: setup
	@$(PY) -m pytest -ra -m "not slow" -n $(JOBS) --dist loadfile

## Only the slow-marked tests (listed in README.md, "Slow tests").
test-slow: setup
	@$(PY) -m pytest -ra -m slow

test-unit: setup
	@$(PY) -m pytest -m "not lab" -q

bench: setup
	@$(PY) benchmarks/bringup.py

## Remove every lab left in /run/mhlab (by their records; nothing else is touched).
clean-labs: setup
	@.venv/bin/mhlab destroy --all
