"""The API's connections: a deadline for each request head, and a cap on connections.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`) but gives a connection
that is still sending its request head all the time it wants, so a few thousand clients
trickling header bytes hold every file descriptor of the process. This protocol (uvicorn's
httptools one) arms a timer when a connection opens and when the next request's first
bytes arrive, and closes the connection if the head is not complete by then. The cap
(`limit_concurrency`) answers requests beyond it with an immediate 503.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

import structlog
from prometheus_client import Counter
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from casebook.metrics import REGISTRY
from casebook.settings import Settings

log = structlog.get_logger("casebook.api.connections")
CLOSED = Counter(
    "casebook_http_connections_closed",
    "Connections the API closed itself, by reason (header_timeout: the request head did "
    "not arrive in time).",
    ["reason"],
    registry=REGISTRY,
)


@cache
def _header_timeout() -> float:
    # Read once per process: API workers inherit the serving process's settings.
    return Settings().api_header_timeout_seconds


class HeadDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol, closing a connection whose request head comes too slowly."""

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def data_received(self, data: bytes) -> None:
        # The first bytes of the next request on a kept-alive connection start its clock.
        if self._head_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._await_head()
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._head_arrived()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._head_timer = self.loop.call_later(_header_timeout(), self._head_too_slow)

    def _head_arrived(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        CLOSED.labels("header_timeout").inc()
        client: Any = self.client
        log.info(
            "api.connection.closed", reason="header_timeout", client=client[0] if client else None
        )
        self.transport.close()


def connection_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the limits above (with the settings' figures)."""
    return {
        "http": "api.connections:HeadDeadlineProtocol",
        "timeout_keep_alive": settings.api_idle_timeout_seconds,
        "limit_concurrency": settings.api_max_connections,
    }
