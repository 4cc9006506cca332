"""Operator API tokens: django-rest-knox, which keeps only a SHA-512 digest of each token.

A token is shown once, when it is made (``manage.py drf_create_token``), and
lapses after ``REST_KNOX["TOKEN_TTL"]``. Clients send ``Authorization: Token <key>``.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication
from knox.models import AuthToken
from rest_framework import exceptions

from relayhub.web import failed_auth


def issue(user: AbstractBaseUser) -> str:
    """A new token for ``user``; the caller shows it once, since only its digest is kept."""
    return AuthToken.objects.create(user=user)[1]


def revoke_all(user: AbstractBaseUser) -> int:
    """Delete every token of ``user``; answers how many there were."""
    return AuthToken.objects.filter(user=user).delete()[0]


class OperatorTokenAuthentication(TokenAuthentication):
    def authenticate(self, request):  # noqa: ANN001, ANN201 - DRF's signature
        """A refused token counts against the client's address; past the limit any token from there is a 429."""
        return failed_auth.guard(lambda: super(OperatorTokenAuthentication, self).authenticate(request))

    def authenticate_credentials(self, token: bytes):  # noqa: ANN201 - knox's signature
        try:
            token.decode("utf-8")
        except UnicodeDecodeError:
            # knox would let this escape as a 500.
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        return super().authenticate_credentials(token)


class OperatorTokenScheme(OpenApiAuthenticationExtension):
    """The OpenAPI scheme DRF's token authentication had: same name and header."""

    target_class = OperatorTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):  # noqa: ANN001, ANN201 - drf-spectacular's signature
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": 'Token-based authentication with required prefix "Token"'}
