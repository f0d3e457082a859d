# The scoreboard service: one image for web (uvicorn), Celery worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin scoreboard

WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

# Code stays owned by root: the service user can read it, not change it.
COPY . .
# var/ holds the SQLite file when no DB_CONNECTION_STRING is given.
RUN mkdir -p var && chown scoreboard:scoreboard var

USER scoreboard

EXPOSE 8000

# Static files (admin, Swagger UI) are served by the ASGI handler; no collectstatic step.
# The two workers share their metrics through PROMETHEUS_MULTIPROC_DIR (default
# /tmp/prometheus), emptied at each start; Celery containers keep theirs in memory.
CMD ["sh", "-c", "export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-/tmp/prometheus} && mkdir -p \"$PROMETHEUS_MULTIPROC_DIR\" && rm -f \"$PROMETHEUS_MULTIPROC_DIR\"/*.db && exec uvicorn scoreboard_project.asgi:application --host 0.0.0.0 --port 8000 --workers 2 --loop uvloop --http scoreboard_project.protocol:HotHttpToolsProtocol --ws websockets-sansio --ws-per-message-deflate false --ws-max-size 4096 --no-access-log --no-proxy-headers"]
