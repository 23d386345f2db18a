# The two commands a newcomer needs: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SCENARIO ?= config/scenarios/demo.toml
DEMO_DB ?= demo.db
DEMO_SECONDS ?= 60

.PHONY: demo test lint typecheck importlint pytest system-deps venv bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

system-deps:
	@bash .ci/system-deps

# `make demo SIP=1`: the same engine in real time over SIP/RTP on 127.0.0.1
demo: $(STAMP)
	rm -f $(DEMO_DB)
ifeq ($(SIP),1)
	$(BIN)/dialer --db sqlite+aiosqlite:///$(DEMO_DB) sim demo --sip --seconds $(DEMO_SECONDS)
else
	$(BIN)/dialer --db sqlite+aiosqlite:///$(DEMO_DB) sim demo $(SCENARIO)
endif

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy dialer amd pacing carriers sim

importlint: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

test: system-deps $(STAMP) lint typecheck importlint pytest

bench: $(STAMP)
	$(BIN)/python bench/sim_speed.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
