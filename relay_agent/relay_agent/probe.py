"""SSH probe ("test connection"): reach a target, read and judge its host key, log in only to a trusted one.

A claimed command with ``"probe": true`` runs nothing. The agent opens a fresh connection of its
own (never a pooled one), times the TCP connect and the SSH handshake, and classifies the server's
host key exactly as the pool would accept it. Only a trusted key is offered the credentials the
store binds to the target; an unknown or mismatched key is never offered any, since that server
may be a man in the middle. The answer is an ordinary finished command whose output is one line of JSON.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .host_keys import sha256_fingerprint
from .logs import AGENT_LOGGER, get_logger
from .output import ExecResult
from .ssh import SSHHostKeyError, SSHPool
from .ssh_auth import SSHAuthError, SSHError, authenticate

log = get_logger(AGENT_LOGGER)

_REFUSING = "; refusing to connect"


def probe_ssh(pool: SSHPool, host: str, port: int, username: str | None) -> ExecResult:
    """Exit code 0 when the target is reachable, its key trusted and the login accepted; 1 otherwise."""
    started = time.monotonic()
    report: dict[str, Any] = {
        "reachable": False,
        "hostKey": None,
        "fingerprint": None,
        "hostKeyStatus": None,
        "login": None,
        "error": None,
        "rttMs": None,
    }
    _probe(pool, host, port, username, report)
    ok = report["reachable"] and report["hostKeyStatus"] == "trusted" and report["login"] is True
    log.info(
        "ssh probe",
        host=host,
        port=port,
        reachable=report["reachable"],
        hostKeyStatus=report["hostKeyStatus"] or "",
        login=report["login"],
        error=report["error"] or "",
    )
    return ExecResult(
        status="completed",
        exit_code=0 if ok else 1,
        output=json.dumps(report),
        duration_ms=int((time.monotonic() - started) * 1000),
    )


def _probe(pool: SSHPool, host: str, port: int, username: str | None, report: dict[str, Any]) -> None:
    try:
        accepted, source = pool.accepted_keys(host, port)
        disagreement = None
    except SSHHostKeyError as exc:
        # Pins and known_hosts disagree: no key can be trusted, but the key is still worth reporting.
        accepted, source, disagreement = [], "", exc
    connecting = time.monotonic()
    try:
        transport = pool.open_transport(host, port, accepted)
    except SSHError as exc:
        report["error"] = str(exc)
        return
    try:
        report["rttMs"] = int((time.monotonic() - connecting) * 1000)
        key = transport.get_remote_server_key()
        report.update(reachable=True, hostKey=f"{key.get_name()} {key.get_base64()}")
        report["fingerprint"] = sha256_fingerprint(key)
        try:
            if disagreement is not None:
                raise disagreement
            pool.verify_host_key(host, port, key, accepted, source)
        except SSHHostKeyError as exc:
            report["hostKeyStatus"] = "unknown" if exc.unknown else "mismatch"
            report["error"] = str(exc).removesuffix(_REFUSING) + "; no login attempted"
            return
        report["hostKeyStatus"] = "trusted"
        user = pool.username_for(host, port, username)
        if not user:
            report["error"] = f"no ssh username for {host}:{port}: set targetUsername or a credential username"
            return
        try:
            credentials = pool.credentials_for(host, port, user)
        except SSHAuthError as exc:
            report["error"] = str(exc)
            return
        try:
            authenticate(transport, user, credentials, f"{host}:{port}")
        except SSHError as exc:
            report.update(login=False, error=str(exc))
            return
        report["login"] = True
    finally:
        transport.close()
