# make run | make test | make lint | make bench — each creates .venv and installs the project on first use.
# make test ARGS="-k storage -x" passes arguments to pytest.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Re-install only when the project's requirements change; otherwise `make test` starts at once.
STAMP  := $(VENV)/.installed

.PHONY: install run test test-edit-limit lint bench migration

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# With [mattermost] url set (or BOT_MATTERMOST_URL): the bot alone. Without: the sandbox with demo data
# and the bot against it; it prints where to open the web client. Ctrl-C stops both.
run: $(STAMP)
	$(PY) scripts/run.py --config bot.toml

# The checks run first: a layering, typing or lint error fails `make test` before the suite starts.
# Then the suite; then (for the whole suite only) the end-to-end and browser tests once more on a server
# that refuses every change of an old post's text (test-edit-limit).
test: $(STAMP) lint
	$(PY) -m pytest $(ARGS)
ifeq ($(strip $(ARGS)),)
	$(MAKE) --no-print-directory test-edit-limit
endif

# tests/e2e and tests/browser with ServiceSettings.PostEditTimeLimit = 0 in the sandbox: every edit that
# changes a post's `message` is refused from the moment it is posted. That is stricter than any limit an
# admin can set (the System Console takes whole seconds, at least 1), so what passes here passes under
# every limit: the bot keeps its posts up to date through their attachments alone.
test-edit-limit: $(STAMP)
	PLAYBOOKS_TEST_POST_EDIT_TIME_LIMIT=0 $(PY) -m pytest -q tests/e2e tests/browser $(ARGS)

# ruff (a small chosen rule set, pyproject.toml) and mypy (strict on bot/ commands/ handlers/ storage/).
# The layering test (tests/unit/test_layering.py) runs with the suite.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/run.py $(ARGS)

# A new Alembic migration from the difference between storage/models.py and the migrations so far:
#   make migration m="add item notes"   then read and tidy storage/migrations/versions/<rev>_*.py
migration: $(STAMP)
	@test -n "$(m)" || { echo 'usage: make migration m="what changes"' >&2; exit 2; }
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  BOT_STORAGE_URL="sqlite:///$$tmp/head.db" $(VENV)/bin/alembic -c storage/alembic.ini upgrade head && \
	  BOT_STORAGE_URL="sqlite:///$$tmp/head.db" $(VENV)/bin/alembic -c storage/alembic.ini revision --autogenerate \
	    --rev-id "$$(printf '%04d' $$(( $$(ls storage/migrations/versions | grep -c '^[0-9]\{4\}_') + 1 )))" -m "$(m)"
