# The two commands of the README: `make demo` and `make test`.
# Both create .venv and install syncd into it on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test lint bench mutation clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/syncd demo

test: $(BIN)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/test.sh

lint: $(BIN)/.installed
	$(BIN)/ruff check syncd mailchimp_emulator tests benchmarks
	$(BIN)/mypy syncd mailchimp_emulator

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run_all.py

# Mutation testing of the consent core (slow, not part of `make test`): docs/mutation.md.
mutation: $(BIN)/.installed
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/mutation.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache mutants .coverage .coverage.*
