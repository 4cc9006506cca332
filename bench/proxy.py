"""A tiny loopback HTTP/1.1 reverse proxy: makes the hub look like the original one, or spreads relays
over several hub processes.

    python -m bench.proxy LISTEN_PORT UPSTREAM_PORT[,UPSTREAM_PORT...] [BLOCKED_PATH ... | --no-block]

Requests to a blocked path (by default the long-poll and batch-result extensions)
get ``404 {"success": false, "error": "not found"}``; everything else is forwarded
to 127.0.0.1:UPSTREAM_PORT over one upstream connection per client connection.
The agent answers a 404 on /relay/commands/next by falling back to the original's
plain polling, which is how the bench measures that mode without touching the hub.

With several upstream ports, each client connection is given the next one in turn
(round robin, as a TCP load balancer does); ``--no-block`` forwards every path.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys

DEFAULT_BLOCKED = ("/relay/commands/next", "/relay/commands/results")


async def read_message(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes] | None:
    """One HTTP/1.1 message: (start line + headers raw, lower-cased headers, body)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    headers: dict[str, str] = {}
    for line in head.split(b"\r\n")[1:]:
        if b":" in line:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode()] = value.strip().decode()
    body = b""
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            parts.append(size_line + chunk)
            if size == 0:
                break
        body = b"".join(parts)
    return head, headers, body


class Proxy:
    def __init__(self, upstream_ports: list[int], blocked: tuple[str, ...]) -> None:
        self._upstreams = itertools.cycle(upstream_ports)
        self.blocked = {path.rstrip("/") for path in blocked}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        upstream_port = next(self._upstreams)
        try:
            while True:
                message = await read_message(reader)
                if message is None:
                    return
                head, headers, body = message
                path = head.split(b" ", 2)[1].decode().split("?")[0].rstrip("/")
                if path in self.blocked:
                    payload = json.dumps({"success": False, "error": "not found"}).encode()
                    writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n"
                                 b"content-length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)
                    await writer.drain()
                    continue
                if upstream is None:
                    upstream = await asyncio.open_connection("127.0.0.1", upstream_port)
                upstream[1].write(head + body)
                await upstream[1].drain()
                answer = await read_message(upstream[0])
                if answer is None:
                    return
                writer.write(answer[0] + answer[2])
                await writer.drain()
                if answer[1].get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()
            if upstream is not None:
                upstream[1].close()


async def main(listen_port: int, upstream_ports: list[int], blocked: tuple[str, ...]) -> None:
    proxy = Proxy(upstream_ports, blocked)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    listen, upstreams, *paths = sys.argv[1:]
    with contextlib.suppress(ImportError):  # as the hub's uvicorn does: the proxy's own CPU, kept small
        import uvloop

        uvloop.install()
    asyncio.run(main(int(listen), [int(port) for port in upstreams.split(",")],
                     () if paths == ["--no-block"] else tuple(paths) or DEFAULT_BLOCKED))
