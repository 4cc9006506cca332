"""Production settings: every secret must come from the environment."""

from django.core.exceptions import ImproperlyConfigured

from relayhub.settings import *  # noqa: F403
from relayhub.settings import (
    BASE_DIR,
    DEV_CREDENTIAL_KEYS,
    DEV_SECRET_KEY,
    DEV_TRANSPORT_KEYS,
    STORAGES,
    env,
)

DEBUG = False
SECRET_KEY = env.str("SECRET_KEY")
CREDENTIAL_KEYS = env.str("CREDENTIAL_KEYS")
TRANSPORT_KEYS = env.str("TRANSPORT_KEYS")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
for _name, _value, _dev in (
    ("SECRET_KEY", SECRET_KEY, DEV_SECRET_KEY),
    ("CREDENTIAL_KEYS", CREDENTIAL_KEYS, DEV_CREDENTIAL_KEYS),
    ("TRANSPORT_KEYS", TRANSPORT_KEYS, DEV_TRANSPORT_KEYS),
):
    if _value == _dev:
        raise ImproperlyConfigured(f"{_name} must not use the development default in production")

STORAGES["staticfiles"] = {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}
WHITENOISE_USE_FINDERS = False
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
# Only for a plain-HTTP demo on localhost (compose.yaml); check --deploy flags it off.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
