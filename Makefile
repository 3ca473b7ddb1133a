# The two commands of README.md, plus the benchmarks.
.PHONY: install up test lint bench down

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
	python3 -m pytest -q

bench: install
	python3 bench/run_all.py
