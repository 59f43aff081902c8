"""One client module per protocol, looked up by connection kind."""

from __future__ import annotations

import importlib
from types import ModuleType

from connections.clients.base import ClientError

_MODULES = {
    "database": "connections.clients.odbc",
    "sftp": "connections.clients.sftp",
    "folder": "connections.clients.folder",
    "ftp": "connections.clients.ftp",
    "smb": "connections.clients.smb",
    "ssh": "connections.clients.ssh",
    "gitlab": "connections.clients.http",
    "web": "connections.clients.http",
}


def client_for(kind: str) -> ModuleType:
    """The client module for a connection kind (each has `test()`; file kinds have `session()`)."""
    try:
        return importlib.import_module(_MODULES[kind])
    except KeyError:
        raise ClientError(f"Courier cannot talk to {kind} connections yet.", permanent=True) from None


__all__ = ["ClientError", "client_for"]
