"""`relay-agent API_KEY HUB_URL [options]` and `relay-agent credentials add|list|remove`."""

from __future__ import annotations

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
    return agent.run()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    index = credentials_index(argv)
    if index is not None:
        return credentials_main(argv[:index] + argv[index + 1 :])
    return agent_main(argv)


if __name__ == "__main__":
    sys.exit(main())
