# The two commands of the README: `make run` and `make test`. Everything else supports them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_USERS ?= 50
# The production server, chosen by measurement (README, "Hot path"); daphne stays available:
# `make run SERVER=daphne`. WEB_WORKERS > 1 needs PostgreSQL and Redis.
SERVER ?= uvicorn
WEB_WORKERS ?= 1
# Log lines as text in the terminal of `make run`/`make serve`; the Dockerfile's server logs JSON.
LOG_FORMAT ?= text
# Several workers write their metrics to files here (emptied at each start) so that a scrape
# of /metrics reports all of them; one worker keeps them in memory.
PROMETHEUS_MULTIPROC_DIR ?= $(if $(filter-out 1,$(WEB_WORKERS)),var/prometheus,)
START_SERVER = $(if $(PROMETHEUS_MULTIPROC_DIR),mkdir -p $(PROMETHEUS_MULTIPROC_DIR) && rm -f $(PROMETHEUS_MULTIPROC_DIR)/*.db &&) \
	LOG_FORMAT=$(LOG_FORMAT) $(if $(PROMETHEUS_MULTIPROC_DIR),PROMETHEUS_MULTIPROC_DIR=$(PROMETHEUS_MULTIPROC_DIR)) $(SERVE_$(SERVER))

.PHONY: run test bench bench-ws bench-boards install install-dev lint migrate seed serve worker beat clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

.env.local: | $(VENV)/.runtime
	$(PY) -c "from pathlib import Path; import sys; sys.path.insert(0, '.'); \
	from scoreboard_project.env import write_local_secrets; write_local_secrets(Path('.env.local'))"

var:
	mkdir -p var

migrate: install .env.local var
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo --users $(DEMO_USERS) --if-empty
	$(PY) manage.py rebuild_leaderboard

SERVE_uvicorn = $(VENV)/bin/uvicorn scoreboard_project.asgi:application --host $(HOST) --port $(PORT) \
	--workers $(WEB_WORKERS) --loop uvloop --http scoreboard_project.protocol:HotHttpToolsProtocol --ws websockets-sansio --ws-per-message-deflate false --ws-max-size 4096 --no-access-log \
	--no-proxy-headers
SERVE_daphne = $(VENV)/bin/daphne -b $(HOST) -p $(PORT) scoreboard_project.asgi:application

serve: install .env.local var
	$(START_SERVER)

run: seed
	@echo "Serving on http://$(HOST):$(PORT)/  (API /api/, docs /api/docs/, admin /admin/, metrics /metrics)"
	$(START_SERVER)

# The benchmark of the hot path on local PostgreSQL and Redis (README, "Hot path").
bench: install-dev
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	command -v pgbench >/dev/null || (apt-get update -qq && apt-get install -y -qq postgresql-client)
	$(PY) bench/run.py $(ARGS)

# The WebSocket fan-out benchmark: production server against a bare websockets server
# (bench/ws.py; needs PostgreSQL and Redis on 127.0.0.1, like `make bench`).
bench-ws: install-dev
	$(PY) bench/ws.py $(ARGS)

# Board reads at scale: one board of 1,000,000 players and 9 of 100,000 seeded straight into
# Redis, top-100 / cursor / around-me measured with wrk, Redis bytes per entry (bench/boards.py).
bench-boards: install-dev
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) bench/boards.py $(ARGS)

test: install-dev .env.local var
	$(PY) scripts/run_tests.py $(ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

worker: install
	$(VENV)/bin/celery -A scoreboard_project worker --loglevel=info

beat: install
	$(VENV)/bin/celery -A scoreboard_project beat --loglevel=info

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
