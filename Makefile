# Two commands a newcomer needs: `make demo` and `make test`. Both build .venv from the lock file first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench lock clean

$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

demo: $(BIN)/.installed
	$(BIN)/assistant demo

test: $(BIN)/.installed
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(BIN)/.installed
	$(BIN)/python -m bench

lock:
	$(BIN)/pip install -q uv && $(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) *.db *.db-wal *.db-shm
