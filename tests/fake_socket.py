"""A stand-in for the viewer's listening socket (``nx.web.listen_socket``), for tests that
stop ``nx.web.serve`` before uvicorn runs: it names a port and binds nothing, so any host
(one this machine does not have) and any port can be asked for."""
from __future__ import annotations


class FakeSocket:
    def __init__(self, port):
        self.port = port

    def getsockname(self):
        return ("", self.port)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass
