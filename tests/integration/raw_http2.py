"""HTTP/2 driven frame by frame (h2 over a plain socket), for requests no well-behaved client
sends: gRPC calls that end without their message, truncated messages, streams left open.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions


def grpc_frame(message: bytes, *, declared_length: int | None = None) -> bytes:
    """A gRPC length-prefixed message; a declared length past the bytes makes it truncated."""
    length = len(message) if declared_length is None else declared_length
    return struct.pack(">BI", 0, length) + message


@dataclass
class StreamEnd:
    """How the server ended a stream: its headers and trailers merged, or a reset."""

    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False

    @property
    def status(self) -> str:
        return self.headers.get(":status", "")

    @property
    def grpc_status(self) -> str:
        return self.headers.get("grpc-status", "")


class RawHttp2:
    """One cleartext HTTP/2 connection (prior knowledge, as gRPC speaks it)."""

    def __init__(self, host: str, port: int, *, timeout: float = 5.0) -> None:
        self.authority = f"{host}:{port}"
        self.sock = socket.create_connection((host, port), timeout=timeout)
        # As real clients do: Nagle would hold each frame until the last one is acknowledged.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Header validation off: the point is to send what h2 would refuse to.
        config = h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_outbound_headers=False
        )
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.headers: dict[int, dict[str, str]] = {}
        self.ended: dict[int, StreamEnd] = {}
        self.settings_received = False
        self.closed = False
        self._flush()

    def close(self) -> None:
        self.closed = True
        self.sock.close()

    def wait_for_settings(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.settings_received and time.monotonic() < deadline:
            self.pump(wait=deadline - time.monotonic())
        assert self.settings_received, "the server sent no SETTINGS"

    @property
    def max_concurrent_streams(self) -> int:
        return int(self.conn.remote_settings.max_concurrent_streams)

    def request(
        self,
        path: str,
        *,
        body: bytes | None = None,
        end_stream: bool = True,
        content_type: str = "application/grpc",
        method: str = "POST",
        extra: list[tuple[str, str]] | None = None,
    ) -> int:
        """Opens a stream; with end_stream the request ends after the body (or the headers)."""
        stream_id = self.conn.get_next_available_stream_id()
        headers = [
            (":method", method),
            (":scheme", "http"),
            (":path", path),
            (":authority", self.authority),
            ("content-type", content_type),
            ("te", "trailers"),
            *(extra or []),
        ]
        self.conn.send_headers(stream_id, headers, end_stream=end_stream and body is None)
        if body is not None:
            self.conn.send_data(stream_id, body, end_stream=end_stream)
        self._flush()
        return stream_id

    def wait_for_end(self, stream_id: int, timeout: float) -> StreamEnd | None:
        """The stream's end, or None when the server has not ended it within the timeout."""
        deadline = time.monotonic() + timeout
        while stream_id not in self.ended and not self.closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.pump(wait=remaining)
        return self.ended.get(stream_id)

    def pump(self, wait: float = 0.0) -> None:
        """Reads what the server sent (waiting at most `wait`) and answers what h2 must."""
        self.sock.settimeout(max(wait, 0.001))
        try:
            data = self.sock.recv(65536)
        except (TimeoutError, BlockingIOError):
            return
        except OSError:
            self.closed = True
            return
        if not data:
            self.closed = True
            return
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.closed = True
            return
        for event in events:
            self._handle(event)
        self._flush()

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RemoteSettingsChanged):
            self.settings_received = True
        elif isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
            assert event.stream_id is not None and event.headers is not None
            fields = self.headers.setdefault(event.stream_id, {})
            fields.update({_text(name): _text(value) for name, value in event.headers})
        elif isinstance(event, h2.events.DataReceived):
            assert event.stream_id is not None and event.flow_controlled_length is not None
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            assert event.stream_id is not None
            self.ended[event.stream_id] = StreamEnd(self.headers.get(event.stream_id, {}))
        elif isinstance(event, h2.events.StreamReset):
            assert event.stream_id is not None
            self.ended[event.stream_id] = StreamEnd(self.headers.get(event.stream_id, {}), True)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.closed = True

    def _flush(self) -> None:
        outbound = self.conn.data_to_send()
        if outbound and not self.closed:
            try:
                self.sock.sendall(outbound)
            except OSError:
                self.closed = True


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
