"""The command queue's statements on the relay hot path: claim, start and finish.

(``nosec B608``: the SQL text holds only names quoted from the model's ``_meta``
and placeholders; every value is a parameter.)

Hand-written once per database (``relayhub.relay.rawsql`` says why), each one
conditional UPDATE ... RETURNING whose row count decides who won, like every
other move of ``Command``. ``Command.claim_next``, ``start_claimed`` and
``finish_claimed`` call them; the rest of the state machine stays in the ORM.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db import connection, models

from assignments.models import RelayApiKey, RelayAssignment
from commands.choices import CommandStatus
from relayhub.relay import rawsql
from relayhub.relay.rawsql import RowReader

# What the wire needs of a claimed command (``Command.to_wire``), and its order.
WIRE_FIELDS = ("id", "command", "kind", "target_type", "target_host", "target_port", "target_username", "timeout_ms",
               "created_at", "attempt", "priority", "working_directory", "environment", "run_as", "script", "interpreter",
               "secret_environment", "packages", "package_action", "agent_release", "status")


@functools.cache
def _reader(model: type[models.Model]) -> RowReader:
    return RowReader(model, WIRE_FIELDS)


@functools.cache
def _finished_reader(model: type[models.Model]) -> RowReader:
    return RowReader(model, ("claimed_at", "batch", "secret_environment"))


@functools.cache
def _names(model: type[models.Model], vendor: str) -> dict[str, str]:  # vendor: quoting differs, so it keys the cache
    names = {field.name: rawsql.quote(field.column) for field in model._meta.concrete_fields}
    names["table"] = rawsql.table(model)
    names["wire"] = rawsql.columns(model, _reader(model).names)
    names["best"] = f"{names['priority']} DESC, {names['created_at']}, {names['id']}"
    names["deadline"] = rawsql.plus_milliseconds("%s", names["timeout_ms"])
    names["relay_live"] = _relay_live_sql()
    names["finished"] = rawsql.columns(model, _finished_reader(model).names)
    return names


def _relay_live_sql() -> str:
    """A condition, with the relay's pk and True as parameters: the relay is enabled and its key not revoked.

    Authentication checks this at the start of a request; checking it inside each statement too means a
    long-poll opened before a relay was disabled or its key revoked cannot claim, start or finish anything.
    """
    relay, key = rawsql.table(RelayAssignment), rawsql.table(RelayApiKey)
    return (f"EXISTS (SELECT 1 FROM {relay} r JOIN {key} k "  # nosec B608
            f"ON k.{rawsql.column(RelayApiKey, 'id')} = r.{rawsql.column(RelayAssignment, 'api_key')} "
            f"WHERE r.{rawsql.column(RelayAssignment, 'id')} = %s AND r.{rawsql.column(RelayAssignment, 'enabled')} = %s "
            f"AND k.{rawsql.column(RelayApiKey, 'revoked_at')} IS NULL)")


def _live_params(relay: Any) -> list[Any]:
    return [rawsql.param(RelayAssignment, "id", relay.pk), rawsql.param(RelayAssignment, "enabled", True)]


def _ordered(model: type[models.Model], rows: list[tuple]) -> list[Any]:
    commands = [_reader(model).build(row) for row in rows]
    commands.sort(key=lambda command: (-command.priority, command.created_at, command.pk))
    return commands


def redeliver_held(model: type[models.Model], relay: Any, limit: int, holding: Sequence[int],
                   now: datetime, session: str = "") -> list[Any]:
    """The relay's claims it never started, and those its ``session`` started by claiming, that it does not say it
    holds, best first; their time starts again."""
    n = _names(model, connection.vendor)
    not_held = f"AND {n['id']} NOT IN ({rawsql.placeholders(len(holding))})" if holding else ""
    ours = f"({n['status']} = %s OR ({n['status']} = %s AND {n['claim_session']} = %s))"
    ours_params = [CommandStatus.CLAIMED, CommandStatus.EXECUTING if session else CommandStatus.CLAIMED, session]
    sql = (f"UPDATE {n['table']} SET {n['deadline_at']} = {n['deadline']} "  # nosec B608
           f"WHERE {n['id']} IN (SELECT {n['id']} FROM {n['table']} WHERE {n['machine_id']} = %s "
           f"AND {ours} AND {n['claimed_by']} = %s {not_held} ORDER BY {n['best']} LIMIT %s) "
           f"AND {ours} AND {n['relay_live']} RETURNING {n['wire']}")
    params = [rawsql.param(model, "updated_at", now), relay.machine_id, *ours_params,
              rawsql.param(model, "claimed_by", relay.pk), *holding, limit, *ours_params, *_live_params(relay)]
    return _ordered(model, rawsql.execute(sql, params))


def claim_new(model: type[models.Model], relay: Any, limit: int, now: datetime, session: str = "") -> list[Any]:
    """Up to ``limit`` of the best pending commands, claimed in one statement; with a ``session``, started too."""
    n = _names(model, connection.vendor)
    pick = (f"SELECT {n['id']} FROM {n['table']} WHERE {n['machine_id']} = %s AND {n['status']} = %s "  # nosec B608
            f"ORDER BY {n['best']} LIMIT %s")
    if connection.features.has_select_for_update_skip_locked:
        # Rows a concurrent claimer is taking are passed over, not waited for. Through ARRAY() the
        # pick runs once; a plain IN (subquery) may be re-run per row and claim more than the limit.
        pick = f"SELECT unnest(ARRAY({pick} FOR UPDATE SKIP LOCKED))"
    sql = (f"UPDATE {n['table']} SET {n['status']} = %s, {n['claimed_by']} = %s, {n['claimed_at']} = %s, "  # nosec B608
           f"{n['updated_at']} = %s, {n['deadline_at']} = {n['deadline']}, {n['attempt']} = {n['attempt']} + 1, "
           f"{n['claim_session']} = %s, {n['started_at']} = %s "
           f"WHERE {n['id']} IN ({pick}) AND {n['status']} = %s AND {n['relay_live']} RETURNING {n['wire']}")
    at = rawsql.param(model, "updated_at", now)
    params = [CommandStatus.EXECUTING if session else CommandStatus.CLAIMED,
              rawsql.param(model, "claimed_by", relay.pk), at, at, at, session, at if session else None,
              relay.machine_id, CommandStatus.PENDING, limit, CommandStatus.PENDING, *_live_params(relay)]
    return _ordered(model, rawsql.execute(sql, params))


def start_claimed(model: type[models.Model], relay: Any, items: Iterable[tuple[int, int]],
                  now: datetime) -> dict[tuple[int, int], bool]:
    """Start the relay's claimed commands at the given attempts: ``{(pk, attempt): cancel_requested}`` of those
    it moved."""
    n = _names(model, connection.vendor)
    by_attempt: dict[int, list[int]] = {}
    for pk, attempt in items:
        by_attempt.setdefault(attempt, []).append(pk)
    started: dict[tuple[int, int], bool] = {}
    at, claimant = rawsql.param(model, "updated_at", now), rawsql.param(model, "claimed_by", relay.pk)
    for attempt, pks in by_attempt.items():  # one statement per attempt, and a batch shares one
        sql = (f"UPDATE {n['table']} SET {n['status']} = %s, "  # nosec B608
               f"{n['started_at']} = %s, {n['updated_at']} = %s "
               f"WHERE {n['id']} IN ({rawsql.placeholders(len(pks))}) AND {n['machine_id']} = %s "
               f"AND {n['claimed_by']} = %s AND {n['attempt']} = %s AND {n['status']} = %s AND {n['relay_live']} "
               f"RETURNING {n['id']}, {n['cancel_requested']}")
        params = [CommandStatus.EXECUTING, at, at, *pks, relay.machine_id, claimant, attempt, CommandStatus.CLAIMED,
                  *_live_params(relay)]
        started.update(((pk, attempt), bool(cancel)) for pk, cancel in rawsql.execute(sql, params))
    return started


# The result columns ``finish_claimed`` writes, with the casts that give a column of NULLs its type on Postgres.
RESULT_CASTS = {"exit_code": "integer", "duration_ms": "integer", "output_truncated": "boolean"}


def finish_claimed(model: type[models.Model], relay: Any, items: Sequence[tuple[int, int, dict[str, Any]]],
                   now: datetime) -> dict[tuple[int, int], tuple[int | None, datetime, dict]]:
    """Finish the relay's active commands, each at its attempt with its own result, in one statement.

    ``items`` are ``(pk, attempt, changes)``, every ``changes`` with the same keys and no pk twice.
    Answers ``{(pk, attempt): (batch_id, claimed_at, secret_environment)}`` of those it moved.
    """
    if not items:
        return {}
    n = _names(model, connection.vendor)
    names = list(items[0][2])
    given = ["pk", "attempt", *names]
    row = f"({rawsql.placeholders(len(given))})"
    assignments = ", ".join(
        f"{n[name]} = " + (f"CAST(v_{name} AS {RESULT_CASTS[name]})" if name in RESULT_CASTS else f"v_{name}")
        for name in names)
    active = sorted(CommandStatus.active())
    # A CTE, not FROM (VALUES ...) AS v(...): SQLite cannot name the columns of VALUES. The v_ names
    # keep RETURNING's unqualified columns unambiguous, which SQLite needs for UPDATE ... FROM.
    values = ", ".join([row] * len(items))
    sql = (f"WITH v ({', '.join('v_' + name for name in given)}) AS (VALUES {values}) "  # nosec B608
           f"UPDATE {n['table']} SET {assignments}, {n['completed_at']} = %s, {n['updated_at']} = %s FROM v "
           f"WHERE {n['id']} = v_pk AND {n['attempt']} = v_attempt AND {n['machine_id']} = %s "
           f"AND {n['claimed_by']} = %s AND {n['status']} IN ({rawsql.placeholders(len(active))}) "
           f"AND {n['relay_live']} RETURNING {n['id']}, {n['attempt']}, {n['finished']}")
    params = []
    for pk, attempt, changes in items:
        params += [pk, attempt, *(rawsql.param(model, name, changes[name]) for name in names)]
    at = rawsql.param(model, "updated_at", now)
    params += [at, at, relay.machine_id, rawsql.param(model, "claimed_by", relay.pk), *active, *_live_params(relay)]
    reader = _finished_reader(model)
    moved = {}
    for pk, attempt, *finished in rawsql.execute(sql, params):
        row = dict(zip(reader.names, reader.values(finished)))
        moved[(pk, attempt)] = (row["batch"], row["claimed_at"], row["secret_environment"])
    return moved
