"""Settings, all read from environment variables (see README and .env.example)."""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from scoreboard_project.env import Env, database_from_url, read_env_file

BASE_DIR = Path(__file__).resolve().parent.parent
ENV_FILE = Path(os.environ.get("SCOREBOARD_ENV_FILE", BASE_DIR / ".env.local"))
env = Env(read_env_file(ENV_FILE))

DEBUG = env.bool("DEBUG", False)

INSECURE_SECRETS = {"", "change-me", "changeme", "secret", "your-secret-key", "dev"}


def _secret(name: str, min_length: int) -> str:
    value = env.str(name)
    weak = (
        value in INSECURE_SECRETS
        or len(value) < min_length
        or len(set(value)) < 5
        or value.startswith("django-insecure")
    )
    if weak:
        if not DEBUG:
            raise ImproperlyConfigured(
                f"{name} must be set to a random value of at least {min_length} characters "
                "when DEBUG is false (`make run` generates one into .env.local)."
            )
        return value or f"insecure-development-only-{name.lower()}-0123456789abcdefghijklmnopqrstuvwxyz"
    return value


# Django's own deploy check wants 50 characters; HS256 wants at least 256 bits.
SECRET_KEY = _secret("SECRET_KEY", 50)
JWT_SECRET = _secret("JWT_SECRET", 32)
JWT_EXPIRY = env.int("JWT_EXPIRY", 3600, minimum=1)
JWT_REFRESH_EXPIRY = env.int("JWT_REFRESH_EXPIRY", 14 * 24 * 3600, minimum=60)
SERVICE_TOKEN_LIFETIME = env.int("SERVICE_TOKEN_LIFETIME", 90 * 24 * 3600, minimum=60)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI's and Redoc's files, served by the app itself: /api/docs/ needs no CDN.
    "drf_spectacular_sidecar",
    "channels",
    "django_ratelimit",
    "accounts",
    "scores",
    "leaderboard",
    "antifraud",
    "scoreboard_project",
]

MIDDLEWARE = [
    "scoreboard_project.middleware.RequestObservationMiddleware",
    "scoreboard_project.middleware.JsonErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "scoreboard_project.urls"
ASGI_APPLICATION = "scoreboard_project.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: PostgreSQL from DB_CONNECTION_STRING, an SQLite file when it is empty.
DB_CONNECTION_STRING = env.str("DB_CONNECTION_STRING")
DATABASES = {"default": database_from_url(DB_CONNECTION_STRING, base_dir=BASE_DIR)}
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", 60, minimum=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # An unreachable server fails a connection attempt after this many seconds (a query
    # parameter `connect_timeout` in DB_CONNECTION_STRING wins).
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env.int("DB_CONNECT_TIMEOUT", 3, minimum=1))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = env.list(
    "PASSWORD_HASHERS",
    [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
    ],
)

# Redis: ranking index, top-10 cache, sessions, rate limits, channel layer. Empty: none.
REDIS_URL = env.str("REDIS_URL")
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", 1.0)
# Circuit breaker per process and Redis server: open after this many consecutive failures,
# then skip Redis (database fallbacks answer) and probe it again after the pause (seconds).
REDIS_BREAKER_FAILURES = env.int("REDIS_BREAKER_FAILURES", 3, minimum=1)
REDIS_BREAKER_RESET = env.float("REDIS_BREAKER_RESET", 2.0)

# Redis pub/sub channels ignore the database number: channel names carry this prefix so
# deployments (or test runs) sharing one Redis server never hear each other.
REDIS_CHANNEL_PREFIX = env.str("REDIS_CHANNEL_PREFIX", f"sb{urlsplit(REDIS_URL).path.strip('/') or '0'}")

if REDIS_URL:
    from scoreboard_project.redis import BreakerConnection

    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "cache",
            "OPTIONS": {
                "socket_timeout": REDIS_SOCKET_TIMEOUT,
                "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
                "connection_class": BreakerConnection,
            },
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": f"{REDIS_CHANNEL_PREFIX}:channels"},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# django-ratelimit counts login attempts in the default cache. Without Redis that is the
# process-local LocMemCache, which is right for the single-process embedded default only.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]
if not REDIS_URL:
    SILENCED_SYSTEM_CHECKS.append("django_ratelimit.E003")
RATELIMIT_HASH_ALGORITHM = "hashlib.sha256"

# Celery: a broker from CELERY_BROKER_URL (default REDIS_URL); without one, tasks run inline.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing must never hold anything up for long: a dead broker fails a connection attempt
# after this many seconds (the outbox keeps the message for the relay).
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECT_TIMEOUT", 1.0)
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT}
# Seconds between two runs of the outbox relay (beat).
OUTBOX_RELAY_INTERVAL = env.float("OUTBOX_RELAY_INTERVAL", 10.0)

# The product's own settings (API.md section 7).
RATE_LIMIT_PER_USER = env.int("RATE_LIMIT_PER_USER", 10, minimum=1)
RATE_LIMIT_WINDOW = env.int("RATE_LIMIT_WINDOW", 60, minimum=1)
RATE_LIMIT_GLOBAL = env.int("RATE_LIMIT_GLOBAL", 1000, minimum=1)
MAX_POINTS_PER_ACTION = env.int("MAX_POINTS_PER_ACTION", 1000, minimum=1)
# Temporal validation of client_timestamp (when sent): how far ahead, and how old, it may be.
CLIENT_TIMESTAMP_MAX_SKEW = env.int("CLIENT_TIMESTAMP_MAX_SKEW", 30, minimum=0)
CLIENT_TIMESTAMP_MAX_AGE = env.int("CLIENT_TIMESTAMP_MAX_AGE", 300, minimum=1)
SUSPICIOUS_VELOCITY_THRESHOLD = env.int("SUSPICIOUS_VELOCITY_THRESHOLD", 100, minimum=1)
MANUAL_REVIEW_THRESHOLD = env.int("MANUAL_REVIEW_THRESHOLD", 10000, minimum=1)
# The period over which MANUAL_REVIEW_THRESHOLD counts a player's gains (seconds).
MANUAL_REVIEW_PERIOD = env.int("MANUAL_REVIEW_PERIOD", 3600, minimum=60)
WS_CONNECTION_LIMIT = env.int("WS_CONNECTION_LIMIT", 1000, minimum=1)
WS_HEARTBEAT_INTERVAL = env.int("WS_HEARTBEAT_INTERVAL", 30, minimum=1)
WS_ALLOW_ANONYMOUS = env.bool("WS_ALLOW_ANONYMOUS", False)

REGISTRATION_OPEN = env.bool("REGISTRATION_OPEN", True)
LOGIN_RATE_PER_IP = env.str("LOGIN_RATE_PER_IP", "20/m")
LOGIN_RATE_PER_USERNAME = env.str("LOGIN_RATE_PER_USERNAME", "5/m")
REGISTER_RATE_PER_IP = env.str("REGISTER_RATE_PER_IP", "20/h")
LEADERBOARD_NAME = env.str("LEADERBOARD_NAME", "global")
LEADERBOARD_CACHE_TTL = env.int("LEADERBOARD_CACHE_TTL", 60, minimum=1)
SESSION_CACHE_SECONDS = env.int("SESSION_CACHE_SECONDS", 300, minimum=1)
IDEMPOTENCY_TTL = env.int("IDEMPOTENCY_TTL", 24 * 3600, minimum=60)
ACTION_TYPES_CACHE_SECONDS = env.int("ACTION_TYPES_CACHE_SECONDS", 5, minimum=0)
# Board definitions are read like action types: a copy per process, re-read past this age.
BOARDS_CACHE_SECONDS = env.int("BOARDS_CACHE_SECONDS", 5, minimum=0)
MAX_REQUEST_BODY = 16 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.SessionJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "scoreboard_project.negotiation.JsonOnlyNegotiation",
    "EXCEPTION_HANDLER": "scoreboard_project.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SIMPLE_JWT = {
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SECRET,
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=JWT_EXPIRY),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=JWT_REFRESH_EXPIRY),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "AUTH_HEADER_TYPES": ("Bearer",),
    "UPDATE_LAST_LOGIN": False,
    "LEEWAY": 0,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Live Scoreboard API",
    # The description, tags, error codes and WebSocket messages: scoreboard_project/openapi.py.
    "DESCRIPTION": "Score updates, the top-10 scoreboard, accounts and tokens.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/",  # tags from the segment after it: scores, scoreboard, auth
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "scoreboard_project.openapi.postprocess",
    ],
    # Swagger UI never calls the public validator (the page works offline).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Off for `make run` on plain http://127.0.0.1; a deployment behind TLS sets SECURE_COOKIES=true.
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
# Preloading is hard to undo, so it is an explicit opt-in (deploy check W021 until then).
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", False)
# Proxies (addresses or CIDR networks) whose X-Forwarded-For is believed: the client
# address of rate limits is then the first hop that is not one of them.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", [])
if env.bool("BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOG_LEVEL = env.str("LOG_LEVEL", "INFO")
# json: one JSON object per line (the default, for log collectors); text: for a terminal.
LOG_FORMAT = env.str("LOG_FORMAT", "json").lower()
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "scoreboard_project.logs.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "scoreboard_project.logs.JsonFormatter"},
        "text": {"()": "scoreboard_project.logs.TextFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        # The server's own lines in the same format (it configured them before loading us).
        # "uvicorn.error" only: configuring "uvicorn" would reset its child "uvicorn.access"
        # (dictConfig re-enables propagation of children), which turns on an access line per
        # request even under --no-access-log and costs the hot path half its throughput.
        "uvicorn.error": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
}
# Celery's worker keeps this configuration instead of installing its own handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# GET /metrics: allowed from these addresses or networks, or with `Bearer METRICS_TOKEN`.
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"])
METRICS_TOKEN = env.str("METRICS_TOKEN")
# Several server processes (uvicorn --workers N) write their metrics to files in this
# directory, so that a scrape of any of them reports all. Empty: in memory (one process).
# The directory must be emptied before the server starts (README, "Operating").
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR")
# prometheus_client reads it from the process environment, not from settings, and takes a
# variable that is present but empty for a directory (the working directory).
if PROMETHEUS_MULTIPROC_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
else:
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

# The async hot path (POST /api/scores, GET /api/scoreboard): per-process pools and batching.
DB_POOL_SIZE = env.int("DB_POOL_SIZE", 12, minimum=2)
DB_POOL_TIMEOUT = env.float("DB_POOL_TIMEOUT", 5.0)
REDIS_POOL_SIZE = env.int("REDIS_POOL_SIZE", 64, minimum=2)
GROUP_COMMIT_MAX_BATCH = env.int("GROUP_COMMIT_MAX_BATCH", 64, minimum=1)
GROUP_COMMIT_MAX_WAIT_MS = env.float("GROUP_COMMIT_MAX_WAIT_MS", 1.0)
GROUP_COMMIT_CONCURRENCY = env.int("GROUP_COMMIT_CONCURRENCY", 8, minimum=1)
LEADERBOARD_LOCAL_TTL = env.float("LEADERBOARD_LOCAL_TTL", 0.5)
# Redis unreachable: the board read from the database is kept this many seconds per process.
LEADERBOARD_FALLBACK_TTL = env.float("LEADERBOARD_FALLBACK_TTL", 1.0)
# PostgreSQL unreachable: the retry_after of the 503 SERVICE_UNAVAILABLE answers (seconds).
DB_RETRY_AFTER = env.int("DB_RETRY_AFTER", 5, minimum=1)
BATCH_MAX_ACTIONS = env.int("BATCH_MAX_ACTIONS", 500, minimum=1)
BATCH_MAX_BODY = env.int("BATCH_MAX_BODY", 256 * 1024, minimum=16 * 1024)
# Django reads bodies up to the batch limit; JsonErrorMiddleware holds every other path to 16 KiB.
DATA_UPLOAD_MAX_MEMORY_SIZE = BATCH_MAX_BODY

# Live updates over /ws/scoreboard.
WS_MAX_CONNECTIONS_PER_USER = env.int("WS_MAX_CONNECTIONS_PER_USER", 5, minimum=1)
WS_BROADCAST_INTERVAL = env.float("WS_BROADCAST_INTERVAL", 0.1)
WS_MAX_MESSAGE_BYTES = 4096
WS_TICKET_SECONDS = 30
WS_ALLOWED_ORIGINS = env.list("WS_ALLOWED_ORIGINS", [])
WS_TICKET_RATE_PER_IP = env.str("WS_TICKET_RATE_PER_IP", "60/m")

# Progressive penalties: PENALTY_VIOLATIONS rate-limit refusals within PENALTY_PERIOD seconds
# ban the player for the next step of PENALTY_STEPS (seconds); the ladder is remembered for
# PENALTY_MEMORY seconds.
PENALTY_VIOLATIONS = env.int("PENALTY_VIOLATIONS", 3, minimum=1)
PENALTY_PERIOD = env.int("PENALTY_PERIOD", 600, minimum=1)
PENALTY_STEPS = [int(step) for step in env.list("PENALTY_STEPS", ["60", "300", "1800", "86400"])]
PENALTY_MEMORY = env.int("PENALTY_MEMORY", 7 * 24 * 3600, minimum=1)

# Anti-fraud rules (antifraud/rules.py): their modes are switched in the admin and cached in
# each process for RULES_CACHE_SECONDS. The pattern analysis (antifraud/patterns.py) runs
# every PATTERN_ANALYSIS_INTERVAL seconds over the last PATTERN_WINDOW seconds of history.
RULES_CACHE_SECONDS = env.int("RULES_CACHE_SECONDS", 5, minimum=0)
PATTERN_ANALYSIS_INTERVAL = env.int("PATTERN_ANALYSIS_INTERVAL", 300, minimum=10)
PATTERN_WINDOW = env.int("PATTERN_WINDOW", 3600, minimum=60)
PATTERN_MIN_ACTIONS = env.int("PATTERN_MIN_ACTIONS", 10, minimum=3)
PATTERN_TIMING_MAX_CV = env.float("PATTERN_TIMING_MAX_CV", 0.1)
PATTERN_SEQUENCE_LENGTH = env.int("PATTERN_SEQUENCE_LENGTH", 8, minimum=3)
PATTERN_EDGE_WINDOWS = env.int("PATTERN_EDGE_WINDOWS", 3, minimum=1)
PATTERN_IP_ACCOUNTS = env.int("PATTERN_IP_ACCOUNTS", 5, minimum=2)

CELERY_BEAT_SCHEDULE = {
    "restore-players-after-bans": {"task": "antifraud.tasks.bans_restore", "schedule": 30.0},
    "sync-reviews-to-redis": {"task": "antifraud.tasks.reviews_sync", "schedule": 60.0},
    "analyse-patterns": {
        "task": "antifraud.tasks.analyse_patterns",
        "schedule": float(PATTERN_ANALYSIS_INTERVAL),
    },
    "relay-outbox": {"task": "scores.tasks.outbox_relay", "schedule": OUTBOX_RELAY_INTERVAL},
    "archive-ended-board-periods": {"task": "leaderboard.tasks.boards_archive_ended", "schedule": 60.0},
}
