"""Free loopback ports for the nodes' listeners, and KRaft cluster ids."""

from __future__ import annotations

import base64
import random
import socket
import uuid
from pathlib import Path

from entrypoints.broker import HOST


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports nobody uses now, below the kernel's ephemeral range.

    A port from bind(0) is an ephemeral one: between choosing it and the JVM binding it
    (a second or more), any outgoing connection on the machine, our own readiness probes
    included, may take it as its local port, and a probe of a port nobody listens on yet
    can even connect to itself. Below the ephemeral range neither can happen. Each port is
    checked by binding it; all stay bound until the last is chosen, so none repeats.
    """
    low, high = _SAFE_PORTS
    rng = random.SystemRandom()
    sockets: list[socket.socket] = []
    misses = 0
    try:
        while len(sockets) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            # After many taken ports in a row (a crowded range), the kernel's choice will do.
            safe = low < high and misses < 200
            try:
                sock.bind((HOST, rng.randint(low, high) if safe else 0))
            except OSError:
                sock.close()
                misses += 1
                continue
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _safe_port_range() -> tuple[int, int]:
    """10000 up to the start of the ephemeral range; (0, 0) means 'let the kernel choose'."""
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return (0, 0)
    return (10_000, ephemeral_low - 1) if ephemeral_low > 12_000 else (0, 0)


_SAFE_PORTS = _safe_port_range()


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID in URL-safe base64 without padding (22 chars)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
