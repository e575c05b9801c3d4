"""The stack's ports: picked where no outgoing connection can take them before a server binds."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from dev.stack import LOWEST_PICKED_PORT, free_port

OUTGOING_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")


@pytest.mark.skipif(not OUTGOING_PORTS.exists(), reason="Linux names its outgoing port range")
def test_ports_are_below_the_outgoing_range_free_and_never_the_same_twice() -> None:
    first_outgoing = int(OUTGOING_PORTS.read_text().split()[0])
    ports = [free_port() for _ in range(500)]
    assert all(LOWEST_PICKED_PORT <= port < first_outgoing for port in ports)
    assert len(set(ports)) == len(ports)
    with socket.socket() as server:
        server.bind(("127.0.0.1", ports[-1]))  # nothing holds it
