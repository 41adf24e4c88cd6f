# Everything a fresh machine needs: `make demo` and `make test` set up the virtualenv themselves.
# What they install is pinned, with hashes, in requirements.lock (`make update` refreshes it).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | sha256sum | cut -c1-12)

.PHONY: install update demo test tests lint bench clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# Re-resolve every dependency (pyproject.toml's ranges, the dev extra included) to the newest
# releases and pin them with their hashes; review the diff, then run `make test`.
update: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --upgrade \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements.lock

demo: $(STAMP)
	$(BIN)/receptionist demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy --explicit-package-bases bench
	$(BIN)/lint-imports

# The browser tests drive Debian's Chromium (Playwright is told its path; it downloads nothing).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

# The lint runs beside the tests: it keeps one core busy for half a minute, while the tests'
# end-to-end calls spend much of theirs waiting on real time. Three test workers on two cores,
# for the same reason; with more threads than cores, Whisper's OpenMP threads sleep rather than
# spin while they wait (a third less CPU for the speech tests, measured).
test: $(STAMP) $(CHROMIUM)
	$(MAKE) --no-print-directory -j2 lint tests

tests: $(STAMP) $(CHROMIUM)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/pytest -q -n 3

bench: $(STAMP)
	$(BIN)/python bench/turn_latency.py
	$(BIN)/python bench/ledger.py --postgres
	$(BIN)/python bench/sms.py
	$(BIN)/python bench/turn_overhead.py
	$(BIN)/python bench/concurrency.py
	$(BIN)/python bench/consent_answers.py
	$(BIN)/python bench/inbound_replies.py
	$(BIN)/python bench/voice.py
	$(BIN)/python bench/assistant_voice.py
	$(BIN)/python bench/ears.py
	$(BIN)/python bench/callers.py
	$(BIN)/python bench/owner_pages.py
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) var
