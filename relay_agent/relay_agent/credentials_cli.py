"""`relay-agent credentials add|list|remove`: the local credential store from the command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .settings import DEFAULT_STORE_DIR, store_dir


def credentials_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store-dir", metavar="DIR", default=argparse.SUPPRESS, help=f"default {DEFAULT_STORE_DIR} or RELAY_STORE_DIR"
    )
    parser = argparse.ArgumentParser(
        prog="relay-agent credentials", parents=[common], description="Manage the local encrypted credential store."
    )
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", parents=[common], help="add or replace a credential")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--type", dest="credential_type", required=True, choices=["ssh_key", "password", "api_key"])
    add.add_argument(
        "--target-host",
        metavar="H[:PORT]",
        help="the SSH target this credential is bound to: HOST (any port), HOST:PORT or [IPv6]:PORT. "
        "An ssh_key or password credential is offered only to that target, and without --target-host "
        "to no target at all",
    )
    add.add_argument("--username", metavar="U", help="offer it only for logins as this user")
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("--value-file", metavar="F", help="read the secret from this file")
    source.add_argument("--value-stdin", action="store_true", help="read the secret from standard input")
    listing = sub.add_parser("list", parents=[common], help="list credentials (metadata only)")
    listing.add_argument("--json", action="store_true", help="print the inventory as JSON")
    remove = sub.add_parser("remove", parents=[common], help="remove a credential")
    remove.add_argument("name", metavar="NAME")
    return parser


def credentials_main(argv: list[str]) -> int:
    args = credentials_parser().parse_args(argv)
    from .store import SSH_TYPES, CredentialStore, CredentialStoreError

    store = CredentialStore(store_dir(getattr(args, "store_dir", None)))
    try:
        if args.action == "add":
            raw = sys.stdin.read() if args.value_stdin else Path(args.value_file).read_text()
            # A trailing newline from `echo` or an editor is not part of a password or token.
            value = raw if args.credential_type == "ssh_key" else raw.rstrip("\r\n")
            cred = store.put(args.name, args.credential_type, value, args.target_host, args.username)
            print(f"stored credential {cred.name} ({cred.credential_type})")
            if cred.credential_type in SSH_TYPES and not cred.target_host:
                print(
                    f"relay-agent: warning: {cred.name} is bound to no host, so it is offered to no SSH target; "
                    "add it again with --target-host HOST or HOST:PORT",
                    file=sys.stderr,
                )
        elif args.action == "list":
            creds = store.all()
            if args.json:
                print(json.dumps(store.inventory(), indent=2))
            elif not creds:
                print("no credentials")
            else:
                rows = [("NAME", "TYPE", "TARGET HOST", "USERNAME", "MODE", "UPDATED")]
                for c in creds:
                    updated = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(c.last_updated_at / 1000))
                    rows.append(
                        (c.name, c.credential_type, c.target_host or "-", c.username or "-", c.storage_mode, updated)
                    )
                widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
                for row in rows:
                    print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        elif args.action == "remove":
            if not store.remove(args.name):
                print(f"relay-agent: no credential named {args.name}", file=sys.stderr)
                return 1
            print(f"removed credential {args.name}")
    except (CredentialStoreError, OSError) as exc:
        print(f"relay-agent: error: {exc}", file=sys.stderr)
        return 1
    return 0
