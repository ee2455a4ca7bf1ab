"""NeuroFed settings. Every value comes from the environment (see README, "Configuration").

Two modes:
- embedded (no DATABASE_URL / REDIS_URL): SQLite, Celery tasks run in-process, in-memory channel layer;
- services (DATABASE_URL and REDIS_URL set): PostgreSQL through psycopg 3, Redis as Celery broker,
  result backend and channel layer.
"""

import base64
import os
import secrets
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from neurofed.env import env_bool, env_int, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("NEUROFED_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)
# seed_demo makes accounts whose passwords the README prints, a platform operator's among them: on a
# development installation only, unless this says otherwise (a shared demonstration server).
DEMO_ACCOUNTS_ALLOWED = env_bool("NEUROFED_ALLOW_DEMO_ACCOUNTS", DEBUG)
TESTING = "pytest" in sys.modules or env_bool("NEUROFED_TESTING", False)


def _check_fernet_keys(variable: str, keys) -> None:
    """A key that is no Fernet key would fail only when the first PHI column is read, deep in an import."""
    from cryptography.fernet import Fernet

    for position, key in enumerate([keys] if isinstance(keys, str) else keys, 1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"{variable}: key {position} is not a Fernet key (44 characters of URL-safe base64, 32 bytes); make "
                "one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            ) from None


def _dev_key_file(name: str, make) -> str:
    """Read, or create once, a development key kept in a git-ignored file, and say so."""
    path = VAR_DIR / name
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        # Written whole under a temporary name, then linked into place: two processes starting at once
        # both end up reading the one key that won, never an empty or half-written file.
        temporary = VAR_DIR / f".{name}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make())
        try:
            os.link(temporary, path)
            print(f"NeuroFed: created development key {path} (never use it in production)", file=sys.stderr)
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return path.read_text().strip()


SECRET_KEY = env_secret("SECRET_KEY", debug=DEBUG) or _dev_key_file(
    "secret_key", lambda: secrets.token_urlsafe(50)
)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# A form sent from an out-of-date page gets a page in the site's layout saying nothing was changed.
CSRF_FAILURE_VIEW = "frontend.views.base.stale_form"

# Envelope encryption of scan blobs (DESIGN §3): a 32-byte master key, base64, from the environment or
# a key file; it wraps each hospital's data key and never touches a blob itself.
MASTER_KEY = env_str("NEUROFED_MASTER_KEY")
MASTER_KEY_FILE = env_str("NEUROFED_MASTER_KEY_FILE")
if not MASTER_KEY and not MASTER_KEY_FILE:
    if not DEBUG:
        raise ImproperlyConfigured("NEUROFED_MASTER_KEY or NEUROFED_MASTER_KEY_FILE must be set when DEBUG is off")
    _dev_key_file("master.key", lambda: base64.b64encode(secrets.token_bytes(32)).decode())
    MASTER_KEY_FILE = str(VAR_DIR / "master.key")

# PHI columns (django-encrypted-model-fields): a comma-separated list of Fernet keys, newest first;
# older keys stay readable, which is how a rotation is rolled out.
FIELD_ENCRYPTION_KEY = env_secret("FIELD_ENCRYPTION_KEY", debug=DEBUG) or _dev_key_file(
    "field_encryption.key", lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
)
if "," in FIELD_ENCRYPTION_KEY:
    FIELD_ENCRYPTION_KEY = [k.strip() for k in FIELD_ENCRYPTION_KEY.split(",") if k.strip()]
_check_fernet_keys("FIELD_ENCRYPTION_KEY", FIELD_ENCRYPTION_KEY)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "channels",
    "encrypted_model_fields",
    "hospitals",
    "diagnostics",
    "federation",
    "frontend",
]

MIDDLEWARE = [
    # /healthz and /readyz, answered before the host check and the HTTPS redirect (neurofed/health.py).
    "neurofed.health.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before WhiteNoise, so static files carry the policy too (neurofed/csp.py).
    "neurofed.csp.ContentSecurityPolicyMiddleware",
    # Static assets are served by the app itself: hospital networks often have no CDN or proxy to do it.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise, so only the application's own answers (which may name patients) are never cached.
    "neurofed.privacy.NoStoreMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Innermost, so the page it renders for an empty 405 has the signed-in user and the messages.
    "frontend.middleware.MethodNotAllowedPageMiddleware",
]

ROOT_URLCONF = "neurofed.urls"
WSGI_APPLICATION = "neurofed.wsgi.application"
ASGI_APPLICATION = "neurofed.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# How long a service may take to answer before it counts as down. A host that has gone away drops packets
# rather than refusing them, and without a limit a request (or the readiness probe, neurofed.health) would
# wait out the operating system's TCP timeout, minutes, holding a web worker all that time.
SERVICE_TIMEOUT_S = env_int("SERVICE_TIMEOUT_S", 5)

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    # 0: a connection per request, closed at its end. The web server is ASGI (daphne), where Django cannot
    # close a persistent connection when it ages: each one left open by a request thread stays until
    # PostgreSQL refuses clients ("too many clients already"). A worker may set it higher.
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = SERVICE_TIMEOUT_S
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            "OPTIONS": {"timeout": 20},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    # People sign in with their email, which is also the username: compared as the email, the refusal
    # says "too similar to the email address", not to a "username" nobody here ever typed.
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
     "OPTIONS": {"user_attributes": ("email", "first_name", "last_name")}},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # At most 256 characters (hospitals.passwords.MAX_PASSWORD_LENGTH): each sign-in hashes what is typed.
    {"NAME": "hospitals.passwords.MaximumLengthValidator"},
    {"NAME": "hospitals.passwords.NoNulCharacterValidator"},
]
# The brake on password guessing (hospitals/throttle.py): failed sign-ins per account, and per client
# address for one client trying many accounts, within a window that opens at the first failure.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 50)
LOGIN_FAILURE_WINDOW_S = env_int("LOGIN_FAILURE_WINDOW_S", 15 * 60)
# Password-reset mails to one address per hour (ten times as many from one client address).
PASSWORD_RESET_MAILS_PER_HOUR = env_int("PASSWORD_RESET_MAILS_PER_HOUR", 3)
# How long a password-reset link works. Django's three days is long for a link that sits in a mailbox
# and, once opened, in an access log line: an hour covers a person resetting the password they forgot.
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT_S", 60 * 60)
# Reverse proxies in front of the app that append to X-Forwarded-For (0: clients connect directly).
# Without it, behind a proxy every client would share the proxy's address in the audit trail and in
# the sign-in brake's per-address count.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
WHITENOISE_USE_FINDERS = DEBUG
# Scans never live here as plain files: blobs under MEDIA_ROOT are AES-GCM ciphertext, served only by
# access-checked views (DESIGN §3).
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))

REDIS_URL = env_str("REDIS_URL")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL)
# Embedded mode: no broker, so tasks run in-process right after the transaction commits.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "OPTIONS": {"socket_connect_timeout": SERVICE_TIMEOUT_S,
                                      "socket_timeout": SERVICE_TIMEOUT_S}}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "hospitals.api_tokens.DigestTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "neurofed.api_schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "neurofed.pagination.LimitOffsetWithCeiling",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "neurofed.api_errors.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "neurofed.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "NeuroFed API",
    "DESCRIPTION": "Multi-tenant brain-tumour MRI diagnosis with federated learning.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # A scan's, a run's and an invitation's `status` are different choices under one field name, each in
    # several components (list, detail, upload): without names here drf-spectacular invents hashed ones.
    "ENUM_NAME_OVERRIDES": {"ScanStatusEnum": "diagnostics.models.scans.ScanStatus",
                            "InvitationStatusEnum": "hospitals.api.serializers.INVITATION_STATUSES"},
}

# Invitations and password resets go out by mail. The console backend writes each mail whole to the log,
# the links that open an account and patients' addresses with it, so it is only development's default: with
# DEBUG off a missing EMAIL_BACKEND means SMTP through the relay below, whose failure is logged by its type
# (`manage.py check --deploy` warns when a backend that delivers nothing is set).
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend" if DEBUG
                        else "django.core.mail.backends.smtp.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "neurofed@localhost")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
# Whether the relay was named at all: `check --deploy` warns when production would mail localhost:25 by default.
EMAIL_HOST_CONFIGURED = bool(os.environ.get("EMAIL_HOST", "").strip())
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
# The password-reset page answers before its mail goes out, so its timing does not tell whether the address
# has an account (neurofed.mail_after_response). The tests turn this off to read the outbox at once.
MAIL_AFTER_RESPONSE = True
INVITATION_TTL_HOURS = env_int("INVITATION_TTL_HOURS", 72)

# Upload limits (DESIGN §4): a decoder never sees more than this.
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 50 * 1024 * 1024)
UPLOAD_MAX_PIXELS = env_int("UPLOAD_MAX_PIXELS", 4096 * 4096)
UPLOAD_MAX_FRAMES = env_int("UPLOAD_MAX_FRAMES", 512)
# The most uploads of one account that may wait for their analysis at a hospital at once (0: no limit).
UPLOAD_MAX_WAITING = env_int("UPLOAD_MAX_WAITING", 20)
# How long one scan's analysis may run before it is stopped and the scan failed (seconds). A volume
# at the frame limit takes well under a minute on two CPU cores; an analysis still running long after
# that is hung, and would hold the hospital's diagnostics worker until the broker redelivered it.
# Celery stamps the limit on each task where it is queued (the web process, requeue_scans), so set it
# alike for every process.
ANALYSIS_TIME_LIMIT_S = env_int("ANALYSIS_TIME_LIMIT_S", 300)
# Bodies other than files: a form's fields, a JSON request (neurofed.parsers). None needs more than a few
# kilobytes; files are counted apart, against UPLOAD_MAX_BYTES.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 1024 * 1024)
API_MAX_JSON_BYTES = DATA_UPLOAD_MAX_MEMORY_SIZE
# An upload is a scan in the clear, often a DICOM whose header names the patient: Django keeps it in
# memory and never spools it to a temporary file, which a killed worker would leave on disk. (daphne's
# HTTP layer, Twisted, does spool a request body over 100 kB to TMPDIR before Django sees it: the README
# has TMPDIR point at memory in production.) The upload view
# refuses a body over the limit before it is read, so memory holds at most one limit's worth.
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
FILE_UPLOAD_MAX_MEMORY_SIZE = UPLOAD_MAX_BYTES + 64 * 1024

# The shared MRI data (read in place, never copied into the repository).
NEUROFED_DATA_DIR = Path(env_str("NEUROFED_DATA_DIR", str(BASE_DIR.parent / "shared" / "data")))
MODEL_DIR = Path(env_str("NEUROFED_MODEL_DIR", str(BASE_DIR / "diagnostics" / "weights")))
# The check that an upload looks like a brain MRI (diagnostics/ml/gate.py); not a registered model: it
# does not depend on the classifier's weights.
INPUT_GATE_PATH = Path(env_str("NEUROFED_INPUT_GATE", str(BASE_DIR / "diagnostics" / "weights" / "input_gate.json")))

if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Preloading is the hospital's to choose: once its domain is on the browsers' list, every subdomain
    # must serve HTTPS for months after removal, a commitment its IT department makes, not this
    # application. Left off, `check --deploy` need not warn about it on every release.
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    if TRUSTED_PROXY_COUNT:
        # Believed only from a proxy, which must overwrite whatever a client sent: from a client directly,
        # "X-Forwarded-Proto: https" over plain HTTP would skip the redirect to HTTPS.
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
# Where browsers send a report of what the Content-Security-Policy refused (neurofed/csp.py); empty: none.
# A refusal in production is either an attack or a page the policy breaks: worth collecting either way.
CSP_REPORT_URI = env_str("CSP_REPORT_URI")
# A sign-in lasts while it is used: it ends SESSION_IDLE_TIMEOUT_S after the last request (a ward
# computer left signed in does not stay open for the next person), and every request starts the
# count again, which costs one session write per request.
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_TIMEOUT_S", 3600)
SESSION_SAVE_EVERY_REQUEST = True
# Flash messages in the session (the database), not in a cookie: "x@example.org is now patient" would
# otherwise travel with every request in a signed but readable cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").strip().upper()  # "info", as Celery's -l takes it, too
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Set only while a master-key rotation is rolled out (see hospitals/keys.py).
PREVIOUS_MASTER_KEY = env_str("NEUROFED_PREVIOUS_MASTER_KEY")
PREVIOUS_MASTER_KEY_FILE = env_str("NEUROFED_PREVIOUS_MASTER_KEY_FILE")

# --- API docs (hospitals/API): Swagger UI and Redoc come from drf-spectacular-sidecar's bundled static
# files, never from a CDN, so /api/docs/ works on a hospital network without outside access.
INSTALLED_APPS.append("drf_spectacular_sidecar")
SPECTACULAR_SETTINGS.update(
    {"SWAGGER_UI_DIST": "SIDECAR", "SWAGGER_UI_FAVICON_HREF": "SIDECAR", "REDOC_DIST": "SIDECAR"}
)
