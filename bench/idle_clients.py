"""Many simulated idle relays on raw asyncio streams, each with its own key, long-polling one hub.

    python -m bench.idle_clients KEYS_FILE HUB_PORT DURATION_S [RAMP_PER_S] [WAIT_MS]

Each relay keeps one HTTP/1.1 keep-alive connection and loops
``POST /relay/commands/next {"max": 1, "waitMs": WAIT_MS}``; its first request
uses waitMs 0, which proves the key and the connection before it starts waiting,
and its first hold is a random part of WAIT_MS (relays start at random times).
A long hold's answer is chunked, with keep-alive spaces before the JSON; they are counted.
Once a second a JSON line of counters goes to stdout; after DURATION_S every
connection is closed and the process exits (bounded, self-terminating).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections import Counter


class Stats:
    def __init__(self) -> None:
        self.ready = 0  # relays whose first (waitMs 0) request was answered 200
        self.waiting = 0  # long-polls sent and not yet answered
        self.ok = 0
        self.empty_longpolls = 0  # long-polls the hub held to the end and answered with no command
        self.errors: Counter[str] = Counter()
        self.hold_s: list[float] = []
        self.keepalives = 0  # whitespace bytes before a JSON body

    def line(self) -> str:
        held = sorted(self.hold_s)
        return json.dumps({"t": round(time.monotonic(), 3), "ready": self.ready, "waiting": self.waiting,
                           "ok": self.ok, "emptyLongpolls": self.empty_longpolls, "errors": dict(self.errors), "keepalives": self.keepalives,
                           "holdMinS": round(held[0], 2) if held else None,
                           "holdMaxS": round(held[-1], 2) if held else None})


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length, chunked = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
    if not chunked:
        return status, await reader.readexactly(length)
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers
            return status, b"".join(parts)
        parts.append((await reader.readexactly(size + 2))[:-2])


async def relay(key: str, port: int, start_after: float, wait_ms: int, stats: Stats, stop: asyncio.Event) -> None:
    try:
        await asyncio.wait_for(stop.wait(), start_after)
        return
    except TimeoutError:
        pass
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    first, phase = True, True
    while not stop.is_set():
        try:
            if conn is None:
                conn = await asyncio.open_connection("127.0.0.1", port)
            wait = 0 if first else random.randint(0, wait_ms) if phase else wait_ms
            if not first:
                phase = False
            body = json.dumps({"max": 1, "waitMs": wait}).encode()
            conn[1].write(b"POST /relay/commands/next HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: " + key.encode()
                          + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
                          + b"\r\n\r\n" + body)
            await conn[1].drain()
            sent = time.monotonic()
            if not first:
                stats.waiting += 1
            try:
                status, payload = await read_response(conn[0])
            finally:
                if not first:
                    stats.waiting -= 1
            if status != 200:
                stats.errors[str(status)] += 1
                await asyncio.sleep(1)
                continue
            stats.ok += 1
            if first:
                stats.ready += 1
                first = False
            elif not json.loads(payload).get("commands"):
                stats.empty_longpolls += 1
                if wait == wait_ms:
                    stats.hold_s.append(time.monotonic() - sent)
                stats.keepalives += len(payload) - len(payload.lstrip())
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            if stop.is_set():
                break
            stats.errors[type(exc).__name__] += 1
            if conn is not None:
                conn[1].close()
            conn = None
            await asyncio.sleep(1)
    if conn is not None:
        conn[1].close()


async def main(keys: list[str], port: int, duration: float, ramp_per_s: float, wait_ms: int) -> None:
    stats = Stats()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(relay(key, port, i / ramp_per_s, wait_ms, stats, stop)) for i, key in enumerate(keys)]
    end = time.monotonic() + duration
    while time.monotonic() < end:
        await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
        print(stats.line(), flush=True)
    stop.set()
    await asyncio.wait(tasks, timeout=5)
    for task in tasks:
        task.cancel()
    print(stats.line(), flush=True)


if __name__ == "__main__":
    keys_file, hub_port, duration_s, *rest = sys.argv[1:]
    ramp = float(rest[0]) if rest else 200.0
    wait = int(rest[1]) if len(rest) > 1 else 25_000
    with open(keys_file) as handle:
        relay_keys = json.load(handle)
    asyncio.run(main(relay_keys, int(hub_port), float(duration_s), ramp, wait))
