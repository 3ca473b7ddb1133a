# The two commands of README.md, plus the benchmarks. Everything runs from the project's
# virtualenv (.venv, made by scripts/install from the system's Python). Each target installs
# the extras of setup.cfg it needs: local (the local stack) for up and bench, test,local for
# test; `make install EXTRAS=...` picks others.
.PHONY: install up test lint bench down

VENV := $(CURDIR)/.venv
EXTRAS ?= local
export PATH := $(VENV)/bin:$(PATH)

install:
	./scripts/install $(EXTRAS)

up:
	./scripts/install local
	kemi-stats up --demo

down:
	kemi-stats down

lint:
	ruff check .
	ruff format --check .
	mypy kemi_stats poller aggregator calculator alerting forwarder console agent demo

# install first, then lint: lint needs the test extra's ruff and mypy
test:
	./scripts/install test,local
	$(MAKE) --no-print-directory lint
	$(VENV)/bin/python -m pytest -q

bench:
	./scripts/install local
	$(VENV)/bin/python bench/run_all.py
