"""SSH errors, and how the agent proves who it is to an SSH server whose host key it has already verified."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from .store import Credential

if TYPE_CHECKING:
    import paramiko


class SSHError(Exception):
    pass


class SSHConnectError(SSHError):
    pass


class SSHAuthError(SSHError):
    pass


def load_private_key(text: str) -> paramiko.PKey:
    import paramiko

    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError, TypeError, IndexError):
            continue
    raise SSHAuthError("stored ssh key is not a readable unencrypted private key")


def authenticate(transport: paramiko.Transport, username: str, credentials: list[Credential], where: str) -> None:
    """Offer each credential in turn until one is accepted; SSHAuthError when none is, SSHConnectError on a drop.

    Call it only once the server's host key is verified: every credential offered is handed to that server.
    """
    import paramiko

    reasons = []
    for cred in credentials:
        try:
            if cred.credential_type == "ssh_key":
                transport.auth_publickey(username, load_private_key(cred.value))
            else:
                transport.auth_password(username, cred.value, fallback=False)
        except (paramiko.AuthenticationException, SSHAuthError) as exc:
            reasons.append(f"{cred.name}: {type(exc).__name__}")
            continue
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise SSHConnectError(f"ssh connection to {where} failed during authentication: {exc}") from None
        if transport.is_authenticated():
            return
    raise SSHAuthError(f"ssh authentication failed for {username}@{where} ({'; '.join(reasons)})")
