"""A PostgreSQL proxy that notes every statement its clients run: for the tests and the bench
that count what a burst of requests costs the database."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from psycopg.conninfo import conninfo_to_dict, make_conninfo


class StatementLog:
    """A TCP proxy to PostgreSQL noting each statement its clients run: every simple query,
    and every extended-protocol Execute, by the text of the statement it binds."""

    def __init__(self, conninfo: str) -> None:
        self.statements: list[str] = []
        self.delay = 0.0
        upstream = conninfo_to_dict(conninfo)
        self._host = str(upstream.get("host") or "localhost")
        self._port = int(upstream.get("port") or 5432)
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop
        ).result()
        port = self._server.sockets[0].getsockname()[1]
        # No TLS or GSS negotiation, so the first message is the startup message.
        self.conninfo = make_conninfo(
            conninfo, host="127.0.0.1", port=port, sslmode="disable", gssencmode="disable"
        )

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)

    def wait_until_quiet(self, seconds: float = 1.0, timeout: float = 30.0) -> int:
        """Wait until no statement has run for `seconds` (start-up's migrations and
        housekeeping); answer how many have run so far."""
        deadline = time.monotonic() + timeout
        seen = -1
        while len(self.statements) != seen:
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL never went quiet")
            seen = len(self.statements)
            time.sleep(seconds)
        return seen

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._host.startswith("/"):
            return await asyncio.open_unix_connection(f"{self._host}/.s.PGSQL.{self._port}")
        return await asyncio.open_connection(self._host, self._port)

    async def _serve(self, client: asyncio.StreamReader, answer: asyncio.StreamWriter) -> None:
        server, request = await self._open_upstream()
        answers = asyncio.create_task(_copy(server, answer))
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await self._relay(client, request)
        request.close()
        await asyncio.gather(answers, return_exceptions=True)
        answer.close()

    async def _relay(self, client: asyncio.StreamReader, server: asyncio.StreamWriter) -> None:
        prepared: dict[bytes, str] = {}
        portals: dict[bytes, str] = {}
        startup_length = await client.readexactly(4)
        server.write(startup_length + await client.readexactly(_length(startup_length) - 4))
        while True:
            header = await client.readexactly(5)
            body = await client.readexactly(_length(header[1:]) - 4)
            kind = header[:1]
            if kind == b"P":
                name, query = body.split(b"\0", 2)[:2]
                prepared[name] = query.decode()
            elif kind == b"B":
                portal, name = body.split(b"\0", 2)[:2]
                portals[portal] = prepared[name]
            elif kind in (b"Q", b"E"):
                name = body.split(b"\0", 1)[0]
                self.statements.append(name.decode() if kind == b"Q" else portals[name])
                await asyncio.sleep(self.delay)
            server.write(header + body)
            await server.drain()


def _length(field: bytes) -> int:
    return int.from_bytes(field, "big")


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    sink.close()
