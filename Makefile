# The two quick-start commands: `make bench` (main job) and `make test` (test suite).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
OUT ?= results/quick
SUITE ?= quick

.PHONY: bench test install lock speed clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

# Re-installs whenever the pins or the project metadata change.
$(VENV)/.installed: $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev,ray]"
	touch $@

install: $(VENV)/.installed

bench: install
	$(BIN)/cocoa bench $(SUITE) --out $(OUT)

test: install
	$(BIN)/python -m pytest -q -n auto --dist loadfile

speed: install
	$(BIN)/python -m cocoa.benchmarks.speed

lock: $(BIN)/python
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^pip==' > requirements.lock.new
	{ echo "# Full pinned environment (pip constraints) for Python 3.11, CPU. Regenerate with: make lock"; cat requirements.lock.new; } > requirements.lock
	rm requirements.lock.new

clean:
	rm -rf $(VENV) build *.egg-info
