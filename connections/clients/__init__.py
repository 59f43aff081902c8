"""One client module per protocol; connections/kinds.py says which kind uses which client."""

from __future__ import annotations

from connections.clients.base import ClientError

__all__ = ["ClientError"]
