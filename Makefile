# The two commands of README.md, plus the benchmarks. Everything runs from the project's
# virtualenv (.venv, made by scripts/install from the system's Python).
.PHONY: install up test lint bench down

VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)

install:
	./scripts/install

up: install
	kemi-stats up --demo

down:
	kemi-stats down

lint:
	ruff check .
	ruff format --check .
	mypy kemi_stats poller aggregator calculator alerting forwarder agent demo

test: install lint
	$(VENV)/bin/python -m pytest -q

bench: install
	$(VENV)/bin/python bench/run_all.py
