"""IoTFlow settings: every value comes from the environment, with embedded defaults.

The defaults run the whole platform on one machine (SQLite in var/, local
services); production values are listed in docs/operations.md.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("IOTFLOW_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def local_secret(name: str) -> str:
    """A per-installation secret kept in var/, so the embedded setup needs no configuration."""
    path = VAR_DIR / name
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


# Production mode switches on every HTTPS and cookie hardening setting at once.
PRODUCTION = env_bool("IOTFLOW_PRODUCTION", False)
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when IOTFLOW_PRODUCTION is on.")
    SECRET_KEY = local_secret("secret_key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_prometheus",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_htmx",
    "accounts",
    "devices",
    "telemetry",
    "dashboards",
    "notifications",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "iotflow.middleware.RequestSizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.UserTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "iotflow.urls"
WSGI_APPLICATION = "iotflow.wsgi.application"
ASGI_APPLICATION = "iotflow.asgi.application"

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
                "dashboards.context_processors.navigation",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'iotflow.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers and the writer work at once; IMMEDIATE avoids lock-upgrade deadlocks.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not memory, so worker processes started by integration tests share the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-iotflow.sqlite3")}
else:
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT", 5))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["iotflow.throttling.LoginThrottleBackend"]
# Failed password logins allowed per username and client address, and per address, within the lockout window.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 50)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 900)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboards:overview"
LOGOUT_REDIRECT_URL = "login"
# Whether anyone may create an account at /accounts/signup/ (off: operators create users in the admin).
SIGNUP_ENABLED = env_bool("SIGNUP_ENABLED", False)

LANGUAGE_CODE = "en-us"
# Dates and times written as the pages' live updates write them (iotflow/formats/en/formats.py).
FORMAT_MODULE_PATH = ["iotflow.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's RedisCache, except that an unreachable Redis reads as a miss instead of failing requests.
            "BACKEND": "iotflow.cache.TolerantRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "iotflow"),
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Live updates. Redis pub/sub carries messages between processes; measured against channels_redis'
# list-based RedisChannelLayer on one Redis it took group_send about 1.4x and delivery about 5x faster.
# Without REDIS_URL the in-memory layer reaches only sockets served by the same process.
CHANNEL_LAYER_URL = env_str("CHANNEL_LAYER_URL", REDIS_URL)
if CHANNEL_LAYER_URL:
    CHANNEL_LAYERS = {
        "default": {
            # CHANNEL_LAYER_BACKEND=channels_redis.core.RedisChannelLayer swaps in the list-based layer (bench/ws.py).
            "BACKEND": env_str("CHANNEL_LAYER_BACKEND", "channels_redis.pubsub.RedisPubSubChannelLayer"),
            # Pub/sub channels are server-wide (not per database): installations sharing a Redis need own prefixes.
            "CONFIG": {"hosts": [CHANNEL_LAYER_URL], "prefix": env_str("CHANNEL_LAYER_PREFIX", "iotflow")},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
LIVE_QUEUE_SIZE = env_int("LIVE_QUEUE_SIZE", 10_000)
LIVE_SEND_INTERVAL_MS = env_int("LIVE_SEND_INTERVAL_MS", 10)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.TokenAuthentication",
        "accounts.authentication.AdminTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "iotflow.api.Pagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "iotflow.api.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "register": env_str("RATE_LIMIT_REGISTER", "10/5m"),
        "telemetry": env_str("RATE_LIMIT_TELEMETRY", "100/1m"),
        "heartbeat": env_str("RATE_LIMIT_HEARTBEAT", "30/1m"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
RATE_LIMITS_ENABLED = env_bool("RATE_LIMITS_ENABLED", True)
# Number of reverse proxies in front of the app; 0 means REMOTE_ADDR is the client.
NUM_PROXIES = env_int("NUM_PROXIES", 0)
# DRF reads None as "trust X-Forwarded-For"; 0 means the client's own address.
REST_FRAMEWORK["NUM_PROXIES"] = NUM_PROXIES

SPECTACULAR_SETTINGS = {
    "TITLE": "IoTFlow API",
    "DESCRIPTION": "Device, telemetry and administration API of IoTFlow (v1).",
    "VERSION": "1.0.0",
    # Endpoints grouped (tagged) by the first segment after /api/v1: telemetry, devices, alerts, ...
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "DeviceStatusEnum": "devices.models.Device.Status",
        "CommandStatusEnum": "devices.models.Command.Status",
        "HealthEnum": "devices.models.Health",
    },
}

# Device API and telemetry.
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 60)
LAST_SEEN_RESOLUTION_SECONDS = env_int("LAST_SEEN_RESOLUTION_SECONDS", 5)
# Telemetry's last-seen writes are gathered per process and written together this often (0: at once).
LAST_SEEN_FLUSH_SECONDS = env_float("LAST_SEEN_FLUSH_SECONDS", 1.0)
TELEMETRY_BACKEND = env_str("TELEMETRY_BACKEND", "sql")
TELEMETRY_MAX_POINTS_PER_REQUEST = env_int("TELEMETRY_MAX_POINTS_PER_REQUEST", 10_000)
TELEMETRY_MAX_FUTURE_SECONDS = env_int("TELEMETRY_MAX_FUTURE_SECONDS", 86_400)
TELEMETRY_MIN_TIMESTAMP = env_str("TELEMETRY_MIN_TIMESTAMP", "2000-01-01T00:00:00Z")
TELEMETRY_MAX_MEASUREMENT_LENGTH = 128
TELEMETRY_MAX_STRING_LENGTH = env_int("TELEMETRY_MAX_STRING_LENGTH", 1024)
# Distinct measurement names one device may have (0: no limit); a record adding more is refused with 400.
TELEMETRY_MAX_MEASUREMENTS_PER_DEVICE = env_int("TELEMETRY_MAX_MEASUREMENTS_PER_DEVICE", 1000)
TELEMETRY_HISTORY_MAX_LIMIT = env_int("TELEMETRY_HISTORY_MAX_LIMIT", 10_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BYTES", 5 * 1024 * 1024)

MQTT_URL = env_str("MQTT_URL", "mqtt://127.0.0.1:1883")
MQTT_PUBLIC_HOST = env_str("MQTT_PUBLIC_HOST")
MQTT_TOPIC_PREFIX = "iotflow/devices"
# The platform's own broker accounts: the consumer/publisher, and the admin that manages device accounts.
MQTT_USERNAME = env_str("MQTT_USERNAME", "iotflow-platform")
MQTT_PASSWORD = env_str("MQTT_PASSWORD") or (local_secret("mqtt_platform_password") if not PRODUCTION else "")
MQTT_ADMIN_USERNAME = env_str("MQTT_ADMIN_USERNAME", "iotflow-admin")
MQTT_ADMIN_PASSWORD = env_str("MQTT_ADMIN_PASSWORD") or (local_secret("mqtt_admin_password") if not PRODUCTION else "")
MQTT_DEVICE_PASSWORD_SECRET = env_str("MQTT_DEVICE_PASSWORD_SECRET")
MQTT_ADMIN_TIMEOUT = env_float("MQTT_ADMIN_TIMEOUT", 5.0)
MQTT_DYNSEC_PLUGIN = env_str("MQTT_DYNSEC_PLUGIN")
# Keep device accounts in the broker in step with devices (off where no IoTFlow broker is managed).
MQTT_MANAGE_ACCOUNTS = env_bool("MQTT_MANAGE_ACCOUNTS", True)
MQTT_CONSUMER_ENABLED = env_bool("MQTT_CONSUMER_ENABLED", True)
MQTT_SHARE_GROUP = env_str("MQTT_SHARE_GROUP", "iotflow")
# The consumer's broker identity (client id iotflow-consumer-<id>); empty: the Celery node name. Unique per worker.
MQTT_CONSUMER_ID = env_str("MQTT_CONSUMER_ID")
# How long the broker keeps an absent consumer's session, queueing its share of the stream (docs/mqtt.md).
MQTT_SESSION_EXPIRY_SECONDS = env_int("MQTT_SESSION_EXPIRY_SECONDS", 3600)
MQTT_BATCH_SIZE = env_int("MQTT_BATCH_SIZE", 2000)
MQTT_BATCH_MS = env_int("MQTT_BATCH_MS", 20)
MQTT_MAX_INFLIGHT = env_int("MQTT_MAX_INFLIGHT", 5000)

IOTDB_HOST = env_str("IOTDB_HOST")
IOTDB_PORT = env_int("IOTDB_PORT", 6667)
IOTDB_USER = env_str("IOTDB_USER", "root")
IOTDB_PASSWORD = env_str("IOTDB_PASSWORD", "root")
# A cluster's DataNodes as host:port,...; empty means IOTDB_HOST:IOTDB_PORT.
IOTDB_NODE_URLS = env_list("IOTDB_NODE_URLS")
IOTDB_DATABASE = env_str("IOTDB_DATABASE", "root.iotflow")
IOTDB_POOL_SIZE = env_int("IOTDB_POOL_SIZE", 8)
IOTDB_POOL_WAIT_MS = env_int("IOTDB_POOL_WAIT_MS", 5_000)
IOTDB_TIMEOUT_MS = env_int("IOTDB_TIMEOUT_MS", 10_000)
IOTDB_FETCH_SIZE = env_int("IOTDB_FETCH_SIZE", 5_000)

# Retention in days (0 = for ever) of raw points, 1-minute and 1-hour rollups, and finished commands.
RETENTION_RAW_DAYS = env_int("RETENTION_RAW_DAYS", 90)
RETENTION_1M_DAYS = env_int("RETENTION_1M_DAYS", 365)
RETENTION_1H_DAYS = env_int("RETENTION_1H_DAYS", 0)
COMMAND_RETENTION_DAYS = env_int("COMMAND_RETENTION_DAYS", 30)

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Redis broker: a task taken by a worker that died without acknowledging it is handed out again once it
# has been out this long (also true of tasks waiting for their ETA, which must therefore be idempotent).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "deliver-due-commands": {"task": "devices.tasks.sweep_commands", "schedule": env_float("COMMAND_SWEEP_SECONDS", 5)},
    "device-health-sweep": {"task": "devices.tasks.sweep_health", "schedule": env_float("HEALTH_SWEEP_SECONDS", 15)},
    "fire-schedules": {"task": "devices.tasks.fire_schedules", "schedule": env_float("SCHEDULE_TICK_SECONDS", 30)},
    "restore-overdue-overrides": {
        "task": "devices.tasks.sweep_overrides",
        "schedule": env_float("OVERRIDE_SWEEP_SECONDS", 30),
    },
    "reconcile-broker-accounts": {"task": "devices.tasks.reconcile_broker_accounts", "schedule": 600.0},
    "telemetry-rollups": {"task": "telemetry.tasks.refresh_rollups", "schedule": env_float("ROLLUP_SECONDS", 60)},
    "telemetry-retention": {
        "task": "telemetry.tasks.apply_retention",
        "schedule": env_float("RETENTION_SECONDS", 3600),
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Health checks and metrics are probed over plain HTTP on the internal network.
    SECURE_REDIRECT_EXEMPT = [r"^health$", r"^metrics$"]

# Device health and commands.
DEVICE_OFFLINE_SECONDS = env_int("DEVICE_OFFLINE_SECONDS", 300)
COMMAND_ACK_TIMEOUT_SECONDS = env_int("COMMAND_ACK_TIMEOUT_SECONDS", 30)
COMMAND_MAX_ATTEMPTS = env_int("COMMAND_MAX_ATTEMPTS", 3)
COMMAND_DEFAULT_EXPIRY_SECONDS = env_int("COMMAND_DEFAULT_EXPIRY_SECONDS", 3600)
# Schedules: an edge missed while beat or the workers were down still fires if it is at most this old.
SCHEDULE_CATCH_UP_SECONDS = env_int("SCHEDULE_CATCH_UP_SECONDS", 300)
# Overrides (pre-clean): the longest one a user may start.
OVERRIDE_MAX_MINUTES = env_int("OVERRIDE_MAX_MINUTES", 1440)
# Telemetry measurements that are also device state (reported_state), e.g. an air purifier's power and fan speed.
DEVICE_STATE_FIELDS = frozenset(env_list("DEVICE_STATE_FIELDS", "power,fan_speed,mode"))

# Pages. Charts never get more points per series than this: longer ranges are downsampled on the server.
CHART_MAX_POINTS = env_int("CHART_MAX_POINTS", 600)
# Where browsers open the live socket: empty for the page's own host (/ws/notifications/), else a
# ws:// or wss:// URL in which {hostname} stands for the page's host name (e.g. ws://{hostname}:8001/ws/notifications/).
LIVE_WEBSOCKET_URL = env_str("LIVE_WEBSOCKET_URL")
