"""Before its key leaves the process, the agent checks that a relayhub answers at the hub URL (GET /relay/hello)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from .stub_http import stub_server
from .test_cli import reject_key, without_relay_env

KEY = "rly_AAAAAAAAAAAA_" + "K" * 38
REFUSED = "the server at the hub URL is not a relayhub; not sending the api key"


def carries_the_key(headers: dict[str, str]) -> bool:
    return any(name.lower() == "x-api-key" for name in headers) or any(KEY in value for value in headers.values())


@pytest.mark.parametrize(
    "foreign",
    [
        (404, {"detail": "Not Found"}),  # another web app on the port
        (200, {"service": "something-else"}),
        (200, {}),
        (401, {"error": "unauthorized"}),
        (302, {}),
    ],
    ids=["404", "other-service", "empty-object", "401", "redirect"],
)
def test_a_server_that_is_not_a_relayhub_never_gets_the_key(run_cli, store_dir: Path, foreign: tuple) -> None:
    headers: list[dict[str, str]] = []
    with stub_server(lambda path, body: foreign, hello=None, headers=headers) as (hub, received):
        result = run_cli(KEY, hub, "--store-dir", str(store_dir), env=without_relay_env())

    assert result.returncode == 2, result.stderr
    assert REFUSED in result.stderr
    assert "--skip-hub-check" in result.stderr
    assert [path for path, _ in received] == ["/relay/hello"]
    assert headers and not any(carries_the_key(h) for h in headers)
    assert KEY not in result.stderr


def test_a_relayhub_is_asked_without_the_key_then_gets_it(run_cli, store_dir: Path) -> None:
    headers: list[dict[str, str]] = []
    with stub_server(reject_key, headers=headers) as (hub, received):
        result = run_cli(KEY, hub, "--store-dir", str(store_dir), env=without_relay_env())

    assert result.returncode == 2, result.stderr
    assert REFUSED not in result.stderr
    assert "hub rejected the api key" in result.stderr
    assert [path for path, _ in received] == ["/relay/hello", "/relay/verify"]
    hello, verify = headers
    assert not carries_the_key(hello)
    assert carries_the_key(verify) and received[1][1] == {"apiKey": KEY}


def test_a_hub_still_starting_is_waited_for(run_cli, store_dir: Path) -> None:
    """A 503 (or a refused connection) is the hub not being ready yet, as under `make run`: retry, not refuse."""
    answers = itertools.chain([(503, {"error": "starting"})], itertools.repeat((200, {"service": "relayhub"})))

    def answer(path: str, body: dict) -> tuple[int, dict]:
        return next(answers) if path == "/relay/hello" else reject_key(path, body)

    with stub_server(answer, hello=None) as (hub, received):
        result = run_cli(KEY, hub, "--store-dir", str(store_dir), env=without_relay_env())

    assert "level=info" in result.stderr and 'event="waiting for the hub"' in result.stderr
    assert "level=warning" not in result.stderr
    assert [path for path, _ in received] == ["/relay/hello", "/relay/hello", "/relay/verify"]


@pytest.mark.parametrize("how", [("--skip-hub-check",), ()])
def test_the_check_can_be_skipped_for_a_hub_without_hello(run_cli, store_dir: Path, how: tuple) -> None:
    env = without_relay_env(**({} if how else {"RELAY_SKIP_HUB_CHECK": "1"}))
    with stub_server(reject_key, hello=None) as (hub, received):
        result = run_cli(KEY, hub, *how, "--store-dir", str(store_dir), env=env)

    assert "not checking that the hub is a relayhub (--skip-hub-check)" in result.stderr
    assert "hub rejected the api key" in result.stderr
    assert [path for path, _ in received] == ["/relay/verify"]
