from __future__ import annotations

import stat
from pathlib import Path

from relay_agent.spool import ResultSpool


def body(command_id: str, attempt: int | None = 1, output: str = "out") -> dict:
    item = {"commandId": command_id, "success": True, "output": output}
    if attempt is not None:
        item["attempt"] = attempt
    return item


def test_results_survive_a_restart(store_dir: Path) -> None:
    spool = ResultSpool(store_dir)
    spool.put(body("c1"))
    spool.put(body("c2", attempt=None))
    spool.close()

    reopened = ResultSpool(store_dir)

    assert [b for _, b in reopened.pending()] == [body("c1"), body("c2", attempt=None)]
    assert reopened.count() == 2


def test_ack_deletes_only_that_result(store_dir: Path) -> None:
    spool = ResultSpool(store_dir)
    key = spool.put(body("c1"))
    spool.put(body("c2"))

    spool.ack(key)
    spool.close()

    assert [b["commandId"] for _, b in ResultSpool(store_dir).pending()] == ["c2"]


def test_ack_of_several_results_is_one_transaction(store_dir: Path) -> None:
    spool = ResultSpool(store_dir)
    keys = [spool.put(body(f"c{i}")) for i in range(4)]
    statements: list[str] = []
    spool._db.set_trace_callback(statements.append)

    spool.ack(*keys[:3])
    spool.close()

    assert [b["commandId"] for _, b in ResultSpool(store_dir).pending()] == ["c3"]
    assert [s for s in statements if s in ("BEGIN", "COMMIT")] == ["BEGIN", "COMMIT"]


def test_a_spooled_result_survives_the_agent_being_killed(store_dir: Path) -> None:
    import subprocess
    import sys

    script = (f"from relay_agent.spool import ResultSpool; import os; "
              f"ResultSpool({str(store_dir)!r}).put({{'commandId': 'c1', 'success': True}}); os._exit(9)")
    assert subprocess.run([sys.executable, "-c", script], timeout=60).returncode == 9

    assert [b["commandId"] for _, b in ResultSpool(store_dir).pending()] == ["c1"]


def test_a_result_is_kept_per_attempt(store_dir: Path) -> None:
    spool = ResultSpool(store_dir)
    spool.put(body("c1", attempt=1))
    spool.put(body("c1", attempt=2))
    spool.put(body("c1", attempt=2, output="newer"))

    assert [(k, b["output"]) for k, b in spool.pending()] == [(("c1", 1), "out"), (("c1", 2), "newer")]


def test_replace_rewrites_a_body(store_dir: Path) -> None:
    spool = ResultSpool(store_dir)
    key = spool.put(body("c1"))

    spool.replace(key, body("c1", output="short"))

    assert spool.pending() == [(key, body("c1", output="short"))]


def test_the_spool_file_is_private(store_dir: Path) -> None:
    ResultSpool(store_dir).put(body("c1"))

    for path in store_dir.glob("spool.sqlite3*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
