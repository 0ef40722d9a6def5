"""The one settings module. Production differs from development only by environment.

Every setting a deployment may change is read from an environment variable, documented in
docs/OPERATIONS.md. The defaults are the embedded development stack: SQLite (WAL mode) and
a filesystem Celery broker under ``var/``, so ``make run`` needs no server.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("MABDASH_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}: expected a boolean (1/0, true/false), got {value!r}")


def env_days(name: str) -> int | None:
    """A number of days ≥ 1, or None when unset or empty (keep everything)."""
    value = os.environ.get(name, "")
    if value == "":
        return None
    if value.isascii() and value.isdigit() and int(value) >= 1:
        return int(value)
    raise ImproperlyConfigured(f"{name}: expected a whole number of days, at least 1, got {value!r}")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
_DEV_SECRET = "dev-only-insecure-secret-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or _DEV_SECRET
if SECRET_KEY == _DEV_SECRET and not DEBUG and env_bool("MABDASH_PRODUCTION", False):
    raise ImproperlyConfigured("DJANGO_SECRET_KEY: must be set in production")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "mabdash.accounts",
    "mabdash.experiments",
    "mabdash.control",
    "mabdash.evaluation",
    "mabdash.dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "mabdash.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "mabdash.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mabdash.urls"
WSGI_APPLICATION = "mabdash.wsgi.application"

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

# --------------------------------------------------------------------------- database
DATABASE_URL = os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'mabdash.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server, the worker and beat read while one of them writes; IMMEDIATE
    # transactions take the write lock up front instead of failing on lock upgrade; the
    # timeout makes a writer wait for the lock rather than fail.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
    }
    # Tests share a file (not :memory:) so a real worker process can see the test data.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
else:
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 5)
    if os.environ.get("MABDASH_DATABASE_POOLER", "") == "transaction":
        # Behind PgBouncer in transaction pooling, consecutive transactions of one Django
        # connection may run on different server connections: nothing may outlive a
        # transaction — no server-side cursors (iterator()), no prepared statements.
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = None
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --------------------------------------------------------------------------- cache
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "mabdash.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    # Shared by every process of the embedded stack (coalescing of learning tasks).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --------------------------------------------------------------------------- celery
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL or "filesystem://localhost//")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _BROKER_DIR = VAR_DIR / "broker"
    (_BROKER_DIR / "queue").mkdir(parents=True, exist_ok=True)
    (_BROKER_DIR / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Broadcast exchanges (worker remote control, purge); kombu's default is ./control.
        "control_folder": str(_BROKER_DIR / "control"),
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5, "visibility_timeout": 300}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --------------------------------------------------------------------------- mabdash
MABDASH: dict[str, Any] = {
    # Seconds between checks, by each web process, for a new allocation to serve.
    "SERVING_REFRESH_SECONDS": float(os.environ.get("MABDASH_SERVING_REFRESH_SECONDS", "0.5")),
    # Decisions are buffered in each web process and written in batches this often.
    "DECISION_FLUSH_SECONDS": float(os.environ.get("MABDASH_DECISION_FLUSH_SECONDS", "0.5")),
    # Rewards applied per policy update (one ledger version each).
    "LEARNING_BATCH": int(os.environ.get("MABDASH_LEARNING_BATCH", "5000")),
    # Under steady traffic, learning runs of one experiment start at most this often (the
    # rewards posted in between are learned together); a reward after a quiet spell is
    # learned at once.
    "LEARNING_MIN_INTERVAL_SECONDS": float(os.environ.get("MABDASH_LEARNING_MIN_INTERVAL_SECONDS", "0.2")),
    # Rewards applied by one task run before it re-enqueues itself.
    "LEARNING_MAX_PER_TASK": int(os.environ.get("MABDASH_LEARNING_MAX_PER_TASK", "100000")),
    # At most one allocation snapshot per experiment per this many seconds.
    "SNAPSHOT_MIN_SECONDS": float(os.environ.get("MABDASH_SNAPSHOT_MIN_SECONDS", "5")),
    # Beat's sweep for experiments with pending rewards.
    "SWEEP_SECONDS": float(os.environ.get("MABDASH_SWEEP_SECONDS", "2")),
    # Seconds an authenticated API key is remembered by a web process (revocation delay).
    "API_KEY_CACHE_SECONDS": float(os.environ.get("MABDASH_API_KEY_CACHE_SECONDS", "5")),
    # API rate limits per minute (docs/OPERATIONS.md): per API key or user for decide and
    # rewards ("serve") and the rest of the API ("api"), per client IP for requests without
    # valid credentials ("anonymous"). Empty: no limit.
    "RATE_LIMITS": {
        "serve": os.environ.get("MABDASH_RATE_LIMIT_SERVE", "600000/m"),
        "api": os.environ.get("MABDASH_RATE_LIMIT_API", "6000/m"),
        "anonymous": os.environ.get("MABDASH_RATE_LIMIT_ANONYMOUS", "300/m"),
    },
    # Beat checkpoints an experiment's policy state once it learned this many rewards since
    # its last checkpoint, so the rebuild replays at most about this many.
    "CHECKPOINT_EVERY_REWARDS": int(os.environ.get("MABDASH_CHECKPOINT_EVERY_REWARDS", "1000000")),
    # Raw decisions and rewards older than this many days are archived and dropped (an
    # experiment's own retention_days wins). Unset or empty: keep everything.
    "RETENTION_DAYS": env_days("MABDASH_RETENTION_DAYS"),
    # Allocation snapshots (the charts' history) older than this many days are dropped, a
    # whole UTC month at a time once all of it is that old. Unset or empty: keep them all.
    "SNAPSHOT_RETENTION_DAYS": env_days("MABDASH_SNAPSHOT_RETENTION_DAYS"),
    # Where retention writes its archives (a directory; mount object storage here).
    "ARCHIVE_DIR": Path(os.environ.get("MABDASH_ARCHIVE_DIR", VAR_DIR / "archive")),
    # Beat's retention and checkpoint sweep.
    "RETENTION_SWEEP_SECONDS": float(os.environ.get("MABDASH_RETENTION_SWEEP_SECONDS", "3600")),
    # Webhook retries wait this × 2^(attempt − 1) seconds.
    "WEBHOOK_BACKOFF_SECONDS": float(os.environ.get("MABDASH_WEBHOOK_BACKOFF_SECONDS", "10")),
}

# The counters of the rate limits live in the default cache; if it fails, serve unlimited.
RATELIMIT_FAIL_OPEN = True

# /metrics is served only with this bearer token (see mabdash/monitoring.py).
MABDASH_METRICS_TOKEN = os.environ.get("MABDASH_METRICS_TOKEN", "")
# Only `make bench` sets this: it mounts a trivial baseline view at /bench/noop/.
MABDASH_BENCH_ENDPOINTS = env_bool("MABDASH_BENCH_ENDPOINTS", False)

CELERY_BEAT_SCHEDULE = {
    "sweep-pending-rewards": {
        "task": "mabdash.control.tasks.learning_sweep_task",
        "schedule": MABDASH["SWEEP_SECONDS"],
    },
    "control-due": {
        "task": "mabdash.control.tasks.control_due_task",
        "schedule": MABDASH["SWEEP_SECONDS"],
    },
    "snapshot-all-experiments": {
        "task": "mabdash.experiments.tasks.snapshots_take_task",
        "schedule": 60.0,
    },
    "retention-and-checkpoints": {
        "task": "mabdash.experiments.tasks.retention_sweep_task",
        "schedule": MABDASH["RETENTION_SWEEP_SECONDS"],
    },
    "counterfactual-requeue": {
        "task": "mabdash.evaluation.tasks.counterfactual_requeue_task",
        "schedule": 60.0,
    },
}
# Counterfactual reports take seconds to minutes: they run in their own worker process
# (`celery worker -Q evaluation`), so learning, webhooks and sweeps never wait behind them.
CELERY_TASK_ROUTES = {"mabdash.evaluation.tasks.counterfactual_task": {"queue": "evaluation"}}

# --------------------------------------------------------------------------- API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "mabdash.accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["mabdash.renderers.FastJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["mabdash.parsers.LimitedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "mabdash.api_errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["mabdash.accounts.rate_limits.ApiRateThrottle"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "mabdash API",
    "DESCRIPTION": "Decide which model serves a request, report rewards, manage models and experiments.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the pinned sidecar package, never a CDN (closed networks).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Every error answer of every operation, and links between operations (mabdash/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "mabdash.schema.add_common_errors",
    ],
}
# A reward batch of 10,000 items is about 2 MB of JSON; allow some headroom, no more.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("MABDASH_MAX_BODY_BYTES", str(4 * 1024 * 1024)))

# --------------------------------------------------------------------------- auth & security
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_BEHIND_TLS_PROXY", False) else None
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --------------------------------------------------------------------------- i18n & static
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "mabdash.dashboard.staticfinders.PlotlyJsFinder",
]
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
_MANIFEST_STATIC = env_bool("MABDASH_MANIFEST_STATIC", False)
# Without collectstatic (make run, tests) whitenoise serves straight from the finders.
WHITENOISE_USE_FINDERS = not _MANIFEST_STATIC
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if _MANIFEST_STATIC
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("MABDASH_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
