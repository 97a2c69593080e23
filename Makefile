# Brokerage Hub: every target creates the virtualenv it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-random check bench mutate migrate emulator clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

# axe-core for tests/surfaces/test_accessibility.py, from the npm registry at the version its lock file
# pins, into a gitignored node_modules/. Without npm that test skips locally (CI fails it).
AXE_DIR := tests/accessibility
AXE_STAMP := $(AXE_DIR)/node_modules/.installed
$(AXE_STAMP): $(AXE_DIR)/package.json $(AXE_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix $(AXE_DIR) --no-audit --no-fund --loglevel=error && touch $@; \
	else \
	  echo "npm not found: the accessibility test will skip (apt-get install npm)"; \
	fi

run: $(STAMP)  ## start the web app on 127.0.0.1:5000, or on PUBLIC_BASE_URL's if it is http:// on loopback
	@# Emulator mode: prints the demo login (made up on first run); otherwise a hint if no password.
	$(VENV)/bin/flask --app app demo-login
	@# Where providers send the person back is where it listens: a second instance needs only
	@# PUBLIC_BASE_URL=http://127.0.0.1:5001 (in the environment or .env).
	address="$$($(PY) -m cli.run_address)" && $(VENV)/bin/flask --app app run $$address

test: $(STAMP) $(AXE_STAMP)  ## every test in a fixed order (Postgres ones need TEST_DATABASE_URL; CI sets it)
	$(PY) -m pytest -p no:randomly

test-random: $(STAMP) $(AXE_STAMP)  ## every test in a random order; RANDOM_SEED=<n> repeats one order
	$(PY) -m pytest $(if $(RANDOM_SEED),--randomly-seed=$(RANDOM_SEED))

check: $(STAMP)  ## formatting, lint, types, the layer contract
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Options: make bench BENCH_ARGS="--load-seconds 30 --no-faults" (python -m bench --help).
# Postgres parts (load under gunicorn, Postgres figures) need TEST_DATABASE_URL or BENCH_DATABASE_URL.
bench: $(STAMP)  ## performance, load and fault-recovery figures for the README
	$(PY) -m bench $(BENCH_ARGS)

# Not in CI. Each named one-line mutation of a guard (tests/mutation/catalogue.py) runs against
# its area's tests in a private copy of HEAD; about ten minutes on two cores. Options:
# make mutate MUTATE_ARGS="--only webhook- --timeout 120" (or --worktree, --check, --list:
# python -m tests.mutation --help). TEST_DATABASE_URL, if set, adds the Postgres cases.
mutate: $(STAMP)  ## which mutants of the money, secret and data guards survive their tests
	$(PY) -m tests.mutation $(MUTATE_ARGS)

migrate: $(STAMP)  ## bring the database schema up to date
	$(VENV)/bin/flask --app app migrate

emulator: $(STAMP)  ## run the provider emulator standalone
	$(PY) -m sandbox --port 8765

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
