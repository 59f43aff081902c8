"""The last of the three refusals of local addresses (connections/clients/addresses.py): on the connected socket.

Apart from the address rules because it needs requests and urllib3, which
only the HTTP client loads: tasks and forms check addresses without them
(each command and worker starts faster, issue 20).
"""

from __future__ import annotations

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from connections.clients.addresses import allowed, local_kind, refusal
from connections.clients.base import ClientError


class _PeerCheck:
    """Checks the address a new socket is connected to before anything is sent on it."""

    def _new_conn(self):
        sock = super()._new_conn()
        if not allowed():
            peer = sock.getpeername()[0]
            kind = local_kind(peer)
            if kind:
                sock.close()
                # Not an OSError: urllib3 must not retry it or wrap it in a connection error.
                raise ClientError(refusal(self.host, peer, kind), permanent=True)
        return sock


class _GuardedHTTPConnection(_PeerCheck, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_PeerCheck, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose direct connections refuse local peers (through a proxy, only the resolved check applies)."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}
