"""relayhub settings, read from the environment with django-environ.

Every secret may also come from a file: ``SECRET_KEY_FILE=/run/secrets/key``.
The development defaults below are fixed strings so that several processes
(web, worker, agent set-up) agree on them; production settings refuse them.
"""

import base64
import hashlib
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF, UNSAFE_INLINE

from relayhub.private_files import private_dir

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("RELAYHUB_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.FileAwareEnv()


def _dev_key(label: str) -> str:
    return "dev:" + base64.b64encode(hashlib.sha256(label.encode()).digest()).decode()


DEV_SECRET_KEY = "django-insecure-relayhub-development-only"  # nosec B105 - development only; production settings refuse it
DEV_CREDENTIAL_KEYS = _dev_key("relayhub development credential key")
DEV_TRANSPORT_KEYS = _dev_key("relayhub development transport key")

# Off by default: debug pages are HTML and show settings.
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The bearer token /metrics asks of Prometheus; unset, /metrics answers 404.
METRICS_TOKEN = env.str("RELAYHUB_METRICS_TOKEN", default="")

# "id:base64key,id:base64key"; the first one encrypts, all of them decrypt.
CREDENTIAL_KEYS = env.str("CREDENTIAL_KEYS", default=DEV_CREDENTIAL_KEYS)
# Derives each relay's transport secret; kept apart from CREDENTIAL_KEYS so that
# rotating the at-rest keys never changes a relay's secret.
TRANSPORT_KEYS = env.str("TRANSPORT_KEYS", default=DEV_TRANSPORT_KEYS)

INSTALLED_APPS = [
    "relayhub.admin_site.site.RelayHubAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "django_filters",
    "guardian",
    "django_celery_beat",
    "relayhub.apps.RelayHubConfig",
    "assignments",
    "commands",
    "credentials",
    "configpush",
    "fleet",
    "runbooks",
    "notifications",
    "audit",
    "agentupdates",
    "axes",
]

MIDDLEWARE = [
    "relayhub.web.middleware.RequestMetricsMiddleware",
    "relayhub.web.middleware.ClientAddressMiddleware",
    "relayhub.web.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "relayhub.web.static_files.AsyncCapableWhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: it turns a login that axes refused into the lockout answer.
    "axes.middleware.AxesMiddleware",
]
# Under ASGI, /relay/ is served by a handler of its own (relayhub.asgi): relays
# authenticate by key, so sessions, CSRF, users and messages are not needed there.
RELAY_MIDDLEWARE = [
    "relayhub.web.middleware.RequestMetricsMiddleware",
    "relayhub.web.middleware.ClientAddressMiddleware",
    "relayhub.web.middleware.BodySizeLimitMiddleware",
    "relayhub.web.middleware.AsyncSecurityMiddleware",
    "relayhub.web.middleware.AsyncCommonMiddleware",
]

# No inline script anywhere: templates load theirs from static files, and the
# API docs use drf-spectacular's split view (its set-up script is a URL too).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        # Style attributes (the admin's meters) and Swagger UI's <style> block and inline styles.
        "style-src": [SELF, UNSAFE_INLINE],
        # Swagger UI draws its icons as data: images.
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

ROOT_URLCONF = "relayhub.urls"
# A CSRF refusal is an error like any other: JSON, never Django's HTML page.
CSRF_FAILURE_VIEW = "relayhub.web.errors.csrf_failure"
WSGI_APPLICATION = "relayhub.wsgi.application"
ASGI_APPLICATION = "relayhub.asgi.application"

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

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'relayhub.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # VAR_DIR 0700 and the database files 0600 (relayhub.private_files, on each new connection);
    # a directory elsewhere is someone's own: made 0700 if missing, never changed.
    _db_dir = Path(DATABASES["default"]["NAME"]).parent
    if _db_dir == VAR_DIR:
        private_dir(VAR_DIR)
    else:
        _db_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # WAL lets readers run beside the writer; IMMEDIATE takes the write lock at
    # BEGIN so that two writers queue on the busy timeout instead of failing
    # with "database is locked" when a read transaction upgrades.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
elif env.bool("DB_POOL", default=True):
    # A pool per process: requests borrow a connection instead of opening one,
    # and the long-poll gives its connection back before it waits.
    DATABASES["default"]["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        "pool": {"min_size": 2, "max_size": env.int("DB_POOL_MAX", default=20), "timeout": 10},
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Sessions in the database, keyed by a digest of the cookie: a dump gives no usable session.
SESSION_ENGINE = "relayhub.web.sessions"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username and address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]

# Admin logins lock out per username and client address after repeated failures (django-axes).
# Locked-out pairs are in the admin (Axes: access attempts; delete one to unlock) and `manage.py axes_reset`.
# API tokens and relay keys never go through these backends; relayhub.web.failed_auth limits those.
AXES_FAILURE_LIMIT = env.int("RELAYHUB_LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("RELAYHUB_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "relayhub.web.failed_auth.login_client_address"
AXES_LOCKOUT_CALLABLE = "relayhub.web.failed_auth.login_lockout_response"
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "csrfmiddlewaretoken"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.str("STATIC_ROOT", default=None)


def _command_output_storage() -> dict:
    """Where full outputs are kept (README, "Output"): a private directory, an S3 bucket, or any backend."""
    backend = env.str("RELAYHUB_FULL_OUTPUT_STORAGE", default="filesystem")
    if backend == "filesystem":
        # Under var/ and never served: downloads go through views that check who may see the command.
        location = env.str("RELAYHUB_FULL_OUTPUT_DIR", default=str(VAR_DIR / "command-output"))
        return {"BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": location, "file_permissions_mode": 0o600,
                            "directory_permissions_mode": 0o700}}
    if backend == "s3":
        # django-storages; credentials from the options below or boto3's own chain (AWS_* variables, a role).
        options = {
            "bucket_name": env.str("RELAYHUB_FULL_OUTPUT_S3_BUCKET"),
            "location": env.str("RELAYHUB_FULL_OUTPUT_S3_PREFIX", default="command-output"),
            "endpoint_url": env.str("RELAYHUB_FULL_OUTPUT_S3_ENDPOINT_URL", default=None),
            "region_name": env.str("RELAYHUB_FULL_OUTPUT_S3_REGION", default=None),
            "access_key": env.str("RELAYHUB_FULL_OUTPUT_S3_ACCESS_KEY_ID", default=None),
            "secret_key": env.str("RELAYHUB_FULL_OUTPUT_S3_SECRET_ACCESS_KEY", default=None),
            "default_acl": "private",
            "file_overwrite": False,
        }
        return {"BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {name: value for name, value in options.items() if value is not None}}
    # Any other Django storage backend by its dotted path, with its options as a JSON object.
    return {"BACKEND": backend, "OPTIONS": env.json("RELAYHUB_FULL_OUTPUT_STORAGE_OPTIONS", default={})}


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "command_output": _command_output_storage(),
    # Agent release wheels (agentupdates): private, served to relays only through their authenticated route.
    "agent_releases": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                       "OPTIONS": {"location": env.str("RELAYHUB_AGENT_RELEASES_DIR",
                                                       default=str(VAR_DIR / "agent-releases")),
                                   "file_permissions_mode": 0o600, "directory_permissions_mode": 0o700}},
}
# Serve straight from the app folders, so development needs no collectstatic.
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "relayhub.web.operator_tokens.OperatorTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        # Last, so that a relay key on an operator route is recognised and refused (403).
        "relayhub.relay.auth.RelayKeyAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["relayhub.web.permissions.IsOperator"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["relayhub.web.json_body.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "relayhub.web.errors.json_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "relayhub.web.pagination.CappedPagination",
    "DEFAULT_THROTTLE_CLASSES": ["relayhub.web.throttling.OperatorThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "operator": env.str("RELAYHUB_OPERATOR_RATE", default="1200/min"),
        "anon": env.str("RELAYHUB_VERIFY_RATE", default="600/min"),
        # A busy agent sends a few requests per command; this allows hundreds per second.
        "relay": env.str("RELAYHUB_RELAY_RATE", default="60000/min"),
    },
}

# Operator API tokens (relayhub.web.operator_tokens): only a digest is stored; 0 days means no expiry.
API_TOKEN_TTL_DAYS = env.int("RELAYHUB_API_TOKEN_TTL_DAYS", default=30)
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=API_TOKEN_TTL_DAYS) if API_TOKEN_TTL_DAYS > 0 else None,
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "relayhub API",
    "DESCRIPTION": "Relay wire protocol (X-API-Key) and operator REST API.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["relayhub.web.permissions.IsStaffOperator"],
    "ENUM_NAME_OVERRIDES": {"TargetTypeEnum": "commands.choices.TargetType",
                            "ApprovalStateEnum": "commands.choices.ApprovalState",
                            "ScheduledRunStateEnum": "runbooks.models.RunState",
                            "PackageActionEnum": "commands.packages.PackageAction"},
    # Swagger UI served from our static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Its version banner on every manage.py command; lockouts still log (axes.handlers).
    "loggers": {"axes.apps": {"level": "WARNING"}},
}

# relayhub's own knobs; each limit of SPEC §7 has a default here.
RELAYHUB = {
    "ONLINE_THRESHOLD_S": env.int("RELAYHUB_ONLINE_THRESHOLD_S", default=90),
    "SIGN_OF_LIFE_WRITE_S": env.int("RELAYHUB_SIGN_OF_LIFE_WRITE_S", default=5),
    "KEY_LAST_USED_WRITE_S": 60,
    # A relay's last fetch (list, next, claim) is written at most this often.
    "FETCH_WRITE_S": env.int("RELAYHUB_FETCH_WRITE_S", default=20),
    # Online, no fetch for this long while a command waited as long for its machine: "not fetching".
    # It must exceed the longest long-poll hold (LONGPOLL_MAX_MS) and a polling relay's interval.
    "NOT_FETCHING_S": env.int("RELAYHUB_NOT_FETCHING_S", default=90),
    "MAX_BODY_BYTES": env.int("RELAYHUB_MAX_BODY_BYTES", default=4 * 1024 * 1024),
    # Arrays and objects nested deeper than this in a request body are a 400.
    "MAX_JSON_DEPTH": env.int("RELAYHUB_MAX_JSON_DEPTH", default=64),
    "OUTPUT_CAP_BYTES": env.int("RELAYHUB_OUTPUT_CAP_BYTES", default=1024 * 1024),
    # Over the cap the first fraction of it is kept (and shown live), the rest of it holds the last bytes.
    "OUTPUT_HEAD_FRACTION": env.float("RELAYHUB_OUTPUT_HEAD_FRACTION", default=0.25),
    # Keep the whole of each stream over the cap in the "command_output" storage (STORAGES), up to this size.
    "KEEP_FULL_OUTPUT": env.bool("RELAYHUB_KEEP_FULL_OUTPUT", default=False),
    "FULL_OUTPUT_MAX_BYTES": env.int("RELAYHUB_FULL_OUTPUT_MAX_BYTES", default=100 * 1024 * 1024),
    # Full copies of commands that ended longer ago are deleted (0: kept as long as their command).
    "FULL_OUTPUT_RETENTION_DAYS": env.int("RELAYHUB_FULL_OUTPUT_RETENTION_DAYS", default=30),
    # The Ed25519 key that signs agent releases (manage.py agent_release_key); its private half only here.
    "AGENT_RELEASE_KEY_FILE": env.str("RELAYHUB_AGENT_RELEASE_KEY_FILE", default=str(VAR_DIR / "agent-release-key.pem")),
    # Routes that take larger bodies than MAX_BODY_BYTES and check the size themselves.
    "OWN_BODY_LIMIT_PATHS": ("/relay/commands/full-output",),
    "LONGPOLL_MAX_MS": env.int("RELAYHUB_LONGPOLL_MAX_MS", default=30_000),
    # Refused relay keys and operator tokens per client address, then 429 (relayhub.web.failed_auth).
    "FAILED_AUTH_RATE": env.str("RELAYHUB_FAILED_AUTH_RATE", default="60/min"),
    # Proxies in front of the hub that append the client to X-Forwarded-For; 0 trusts no such header.
    "TRUSTED_PROXY_COUNT": env.int("RELAYHUB_TRUSTED_PROXY_COUNT", default=0),
    # Threads that relay requests share for their database work (relayhub.asgi).
    "RELAY_THREADS": env.int("RELAYHUB_RELAY_THREADS", default=8),
    # Without a broker, a queue from another process is only seen by polling.
    "LONGPOLL_DB_POLL_MS": env.int("RELAYHUB_LONGPOLL_DB_POLL_MS", default=250),
    # With a broker nothing needs polling: its listener wakes every waiter after a reconnect.
    "LONGPOLL_SAFETY_POLL_MS": 30_000,
    # Live admin pages (Server-Sent Events, relayhub.web.sse): a stream ends after LIVE_STREAM_S and the browser
    # reconnects after LIVE_RETRY_MS; a comment every LIVE_HEARTBEAT_S keeps proxies from closing a quiet one.
    # Wake-ups push changes at once; a stream also looks every LIVE_POLL_MS (the dashboard every
    # LIVE_DASHBOARD_POLL_MS), for what is not published (a claim, a start) and for a hub without a broker.
    "LIVE_STREAM_S": env.int("RELAYHUB_LIVE_STREAM_S", default=300),
    "LIVE_RETRY_MS": 2_000,
    "LIVE_HEARTBEAT_S": 15,
    "LIVE_POLL_MS": env.int("RELAYHUB_LIVE_POLL_MS", default=1_000),
    "LIVE_DASHBOARD_POLL_MS": env.int("RELAYHUB_LIVE_DASHBOARD_POLL_MS", default=5_000),
    # auto: Redis when REDIS_URL is set, else Postgres LISTEN/NOTIFY, else in-process only.
    "NOTIFY_BACKEND": env.str("RELAYHUB_NOTIFY_BACKEND", default="auto"),
    "PENDING_LIST_LIMIT": 10,
    "SWEEP_BATCH": env.int("RELAYHUB_SWEEP_BATCH", default=500),
    "TIMEOUT_GRACE_S": env.int("RELAYHUB_TIMEOUT_GRACE_S", default=30),
    "QUEUE_TTL_S": env.int("RELAYHUB_QUEUE_TTL_S", default=3600),
    # A command or batch waiting for approval this long is cancelled ("approval expired after 24 h").
    "APPROVAL_TTL_S": env.int("RELAYHUB_APPROVAL_TTL_S", default=24 * 3600),
    "PUSH_ACK_TIMEOUT_S": env.int("RELAYHUB_PUSH_ACK_TIMEOUT_S", default=300),
    "PUSH_MAX_TRIES": env.int("RELAYHUB_PUSH_MAX_TRIES", default=5),
    "CHUNK_RETENTION_H": env.int("RELAYHUB_CHUNK_RETENTION_H", default=24),
    "EVENT_RETENTION_DAYS": env.int("RELAYHUB_EVENT_RETENTION_DAYS", default=90),
    "METRIC_RETENTION_DAYS": env.int("RELAYHUB_METRIC_RETENTION_DAYS", default=7),
    # Notifications (README, "Notifications"): hosts (host or host:port) webhooks may reach on non-public addresses.
    "NOTIFY_ALLOWED_HOSTS": env.list("RELAYHUB_NOTIFY_ALLOWED_HOSTS", default=[]),
    "NOTIFY_TIMEOUT_S": env.int("RELAYHUB_NOTIFY_TIMEOUT_S", default=5),
    "NOTIFY_MAX_ATTEMPTS": env.int("RELAYHUB_NOTIFY_MAX_ATTEMPTS", default=5),
    "NOTIFY_RETRY_BASE_S": env.int("RELAYHUB_NOTIFY_RETRY_BASE_S", default=10),  # then x3 each time
    "NOTIFY_RETENTION_DAYS": env.int("RELAYHUB_NOTIFY_RETENTION_DAYS", default=30),
    # Audit trail (README, "Audit trail"): also send each entry to syslog: udp://host:514, tcp://host:601, /dev/log.
    "AUDIT_SYSLOG": env.str("RELAYHUB_AUDIT_SYSLOG", default=""),
    # relay_exec run by an OS user acts as (and is recorded as) this operator: "deploy=alice,root=admin".
    "OS_USER_MAP": env.dict("RELAYHUB_OS_USER_MAP", default={}),
}
# Email notifications go through Django's email backend: EMAIL_URL=smtp+tls://user:password@host:587 and so on.
vars().update(env.email_url("EMAIL_URL", default="smtp://localhost:25"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="relayhub@localhost")
REDIS_URL = env.str("REDIS_URL", default="")
# Throttle counters must be shared by all web processes when there are several.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                "KEY_PREFIX": env.str("RELAYHUB_CACHE_KEY_PREFIX", default=""),
                "OPTIONS": {"pool_class": "relayhub.web.cache.SharedConnectionPool"}}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# Celery: Redis when REDIS_URL is set; otherwise kombu's filesystem transport,
# which needs no server (the embedded mode).
# The filesystem transport ignores the host; naming one spares each process kombu's "No hostname" warning.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://localhost//")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = private_dir(private_dir(VAR_DIR) / "celery-queue")
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(VAR_DIR / "celery-processed"),
        "control_folder": str(VAR_DIR / "celery-control"),
        "store_processed": False,
    }
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Beat keeps its schedule in the database (django-celery-beat): the sweeps below, synced into it at each start,
# and the template schedules (runbooks). The runbooks scheduler stamps each schedule's message with when beat sent it.
CELERY_BEAT_SCHEDULER = "runbooks.beat:Scheduler"
SWEEP_EVERY_S = env.int("RELAYHUB_SWEEP_EVERY_S", default=15)
# Each sweep expires before the next one is due, so a slow run never piles up (expire_seconds: the
# database scheduler's name for it).
CELERY_BEAT_SCHEDULE = {
    name: {"task": task, "schedule": every, "options": {"expire_seconds": every}}
    for name, task, every in [
        ("expire-commands", "commands.tasks.expire_commands", SWEEP_EVERY_S),
        ("expire-approvals", "commands.tasks.expire_approvals", SWEEP_EVERY_S),
        ("flag-relays-not-fetching", "commands.tasks.flag_relays_not_fetching", SWEEP_EVERY_S),
        ("mark-lost-relays", "assignments.tasks.mark_lost_relays", SWEEP_EVERY_S),
        ("requeue-config-pushes", "configpush.tasks.requeue_unacked_pushes", 60),
        ("prune-output", "commands.tasks.prune_output", 3600),
        ("prune-full-output", "commands.tasks.prune_full_output", 3600),
        ("prune-relay-history", "assignments.tasks.prune_relay_history", 3600),
        ("sweep-scheduled-runs", "runbooks.tasks.sweep_scheduled_runs", SWEEP_EVERY_S),
        ("prune-notifications", "notifications.tasks.prune_notifications", 3600),
    ]
}

DATA_UPLOAD_MAX_MEMORY_SIZE = RELAYHUB["MAX_BODY_BYTES"]
