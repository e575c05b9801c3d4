"""The sandbox's HTTP server: routing, the control endpoints, start and stop."""

from __future__ import annotations

import dataclasses
import logging
import re
import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dev.sandbox import amazon, walmart
from dev.sandbox.http import Answer, Interrupt, Request, Route, json_answer, route
from dev.sandbox.state import Faults, SandboxState

logger = logging.getLogger(__name__)


def set_faults(state: SandboxState, request: Request, _: re.Match[str]) -> Answer:
    """`POST /_sandbox/faults {"account": ..., <switches>}` replaces the account's switches."""
    document = request.json()
    account = document.get("account") if isinstance(document, dict) else None
    if not account:
        return json_answer(400, {"message": "account is required"})
    try:
        faults = Faults.from_json(document)
    except (TypeError, ValueError) as error:
        return json_answer(400, {"message": str(error)})
    state.set_faults(account, faults)
    return json_answer(200, {"account": account, "faults": dataclasses.asdict(faults)})


def stats(state: SandboxState, request: Request, _: re.Match[str]) -> Answer:
    """`GET /_sandbox/stats?account=...`: calls per operation, faulted ones included, and the
    timeline: the latest calls in order, as [operation, time.monotonic() when it arrived]
    (one clock for every process on the machine, so a test can set its own times beside it).
    """
    account = request.param("account")
    if not account:
        return json_answer(400, {"message": "account is required"})
    return json_answer(
        200,
        {"account": account, "calls": state.stats(account), "timeline": state.timeline(account)},
    )


ROUTES: tuple[Route, ...] = (
    *amazon.ROUTES,
    *walmart.ROUTES,
    route("POST", r"/_sandbox/faults", set_faults),
    route("GET", r"/_sandbox/stats", stats),
)


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    # Hundreds of syncs connect at once; past the default backlog of 5, a connection attempt is
    # dropped and retried a second later.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.state = SandboxState()

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        # A client that goes away mid-call (a sync cancelled or stopped) is not the sandbox's
        # error: only others are printed.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        if host in ("0.0.0.0", ""):  # noqa: S104 - names the wildcard, binds nothing
            host = "127.0.0.1"
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: SandboxServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this Nagle delays each answer 40 ms.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        logger.debug(format, *args)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        target = urlsplit(self.path)
        # The Host header is never consulted: sp_api sends a mangled one over plain HTTP.
        request = Request(
            method=self.command,
            path=target.path,
            query=parse_qs(target.query),
            headers=self.headers,
            body=body,
            base_url=self.server.url,
        )
        answer: Answer | None
        try:
            answer = self._dispatch(request)
        except Interrupt as interrupt:
            answer = interrupt.answer
        if answer is None:
            self._reset()
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def _dispatch(self, request: Request) -> Answer:
        for candidate in ROUTES:
            match = candidate.pattern.match(request.path)
            if match and candidate.method == request.method:
                return candidate.handler(self.server.state, request, match)
        return json_answer(404, {"errors": [{"code": "NotFound", "message": request.path}]})

    def _reset(self) -> None:
        # A zero linger time makes close() send RST: the client sees a reset, not an answer.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True


@dataclasses.dataclass
class SandboxHandle:
    """A sandbox serving in a background thread."""

    server: SandboxServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def start_sandbox(host: str = "127.0.0.1", port: int = 0) -> SandboxHandle:
    """Serves both marketplaces on host:port (0: a free port) until the handle is stopped."""
    server = SandboxServer((host, port))
    thread = threading.Thread(target=server.serve_forever, name="sandbox", daemon=True)
    thread.start()
    return SandboxHandle(server, thread)
