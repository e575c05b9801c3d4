"""The HTTP/2 keepalive policy our services' clients and servers share.

A client that pings more often than its server allows collects "ping strikes" and, past two,
the server closes the connection with GOAWAY `too_many_pings`, killing every call on it. gRPC's
server default allows a ping without data only every five minutes, so a client pinging every 30
seconds loses any stream that sits idle for a few minutes. Both sides' channel arguments
therefore derive from one `Keepalive`, and the server always tolerates pings twice as often as
the client sends them.

The argument names are gRPC core's (include/grpc/impl/channel_arg_names.h, doc/keepalive.md).
"""

from __future__ import annotations

from dataclasses import dataclass

ChannelOptions = list[tuple[str, int]]


@dataclass(frozen=True)
class Keepalive:
    # How long a connection may go without a ping; also how fast a dead peer (a pod gone without
    # a FIN, a dropped conntrack entry) is noticed, together with the timeout.
    interval_seconds: float = 30.0
    # How long to wait for a ping's acknowledgement before declaring the connection dead.
    timeout_seconds: float = 10.0

    def __post_init__(self) -> None:
        # gRPC core's client sends at most one ping a second whatever keepalive_time says, so a
        # shorter interval would not mean what it says.
        if self.interval_seconds < 1 or self.timeout_seconds <= 0:
            raise ValueError(f"keepalive needs interval >= 1 s and a positive timeout: {self!r}")

    @property
    def _interval_ms(self) -> int:
        return max(1, round(self.interval_seconds * 1000))

    @property
    def _min_server_interval_ms(self) -> int:
        # Half the client's interval: timer jitter or an early ping never counts as a strike,
        # while a client pinging far faster than agreed still does.
        return max(1, self._interval_ms // 2)

    def client_options(self) -> ChannelOptions:
        return [
            ("grpc.keepalive_time_ms", self._interval_ms),
            ("grpc.keepalive_timeout_ms", max(1, round(self.timeout_seconds * 1000))),
            # Idle internal channels are kept warm and checked too, so the first call after a
            # quiet spell does not land on a connection that died silently.
            ("grpc.keepalive_permit_without_calls", 1),
            # The default (2) stops pinging after two pings without data, exactly when an idle
            # stream needs the pings; 0 means no limit.
            ("grpc.http2.max_pings_without_data", 0),
        ]

    def server_options(self) -> ChannelOptions:
        return [
            ("grpc.http2.min_ping_interval_without_data_ms", self._min_server_interval_ms),
            # Without this a server treats any ping on a connection with no open stream as due
            # only every two hours, and would strike the pings the clients are allowed to send.
            ("grpc.keepalive_permit_without_calls", 1),
            # gRPC's default, stated so the whole policy reads in one place: a misbehaving client
            # still gets cut off.
            ("grpc.http2.max_ping_strikes", 2),
        ]


DEFAULT_KEEPALIVE = Keepalive()
