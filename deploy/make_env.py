"""Print a .env for compose.yaml with fresh random secrets."""

import base64
import os
import secrets


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


print(f"POSTGRES_PASSWORD={secrets.token_urlsafe(24)}")
print(f"SECRET_KEY={secrets.token_urlsafe(50)}")
print(f"CREDENTIAL_KEYS=k1:{key()}")
print(f"TRANSPORT_KEYS=t1:{key()}")
