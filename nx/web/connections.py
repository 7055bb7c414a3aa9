"""How the viewer's server treats connections: a deadline for each request's headers.

uvicorn closes a keep-alive connection that stays idle after a response, but waits without
limit for the head of a request: 200 clients that connect and send half a request line (or
nothing) hold every place of ``limit_concurrency``, and every later request got a 503 for as
long as they stayed. ``HeaderDeadline`` (uvicorn's h11 protocol, which the viewer uses) gives a
connection ``header_timeout`` seconds, from when it opened or from the end of its last response,
to deliver a whole request line and headers, at most ``MAX_HEAD_BYTES`` of them; a trickle
of bytes does not reset the clock. Past it the connection is closed. A request whose head has
arrived is never cut: a slow query ends with its own time limit.

Imported by ``nx.web.serve`` only (it loads uvicorn and h11).
"""
from __future__ import annotations

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT = 10.0
MAX_HEAD_BYTES = 16 * 1024  # h11's own default, stated: a longer head is a 400


class HeaderDeadline(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request head is late (see above).
    The deadline is ``config.header_timeout`` (``HEADER_TIMEOUT`` if not set)."""

    def __init__(self, config, server_state, app_state, _loop=None):
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout = float(getattr(config, "header_timeout", HEADER_TIMEOUT))
        self._deadline = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # a whole request head arrived (or the connection failed)
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm()  # the next request's head, if any, has the same time

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()
