"""`relay-agent API_KEY HUB_URL [options]` and `relay-agent credentials add|list|remove`."""

from __future__ import annotations

import os
import sys

from .credentials_cli import credentials_main
from .options import agent_parser, credentials_index
from .settings import resolve


def agent_main(argv: list[str]) -> int:
    parser = agent_parser()
    args = parser.parse_args(argv)
    settings, log_level = resolve(args, parser)

    from . import logs
    from .agent import Agent
    from .launcher import ENV_UNDER_LAUNCHER, RESTART_EXIT
    from .selfupdate import exec_launcher
    from .config import ConfigError
    from .store import CredentialStoreError

    logs.configure(log_level)
    logs.register_secret(settings.api_key)
    logs.register_secret(settings.shared_secret)
    try:
        agent = Agent(settings)
    except (ConfigError, CredentialStoreError, OSError) as exc:
        print(f"relay-agent: error: {exc}", file=sys.stderr)
        return 1
    code = agent.run()
    if code == RESTART_EXIT and os.environ.get(ENV_UNDER_LAUNCHER) != "1":
        # The first update: this process becomes the launcher, which runs the new version and watches it.
        exec_launcher(settings.store_dir, settings.install_root or settings.store_dir / "agent")
    return code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    index = credentials_index(argv)
    if index is not None:
        return credentials_main(argv[:index] + argv[index + 1 :])
    return agent_main(argv)


if __name__ == "__main__":
    sys.exit(main())
