"""Remote code may not come from this machine's own services or link-local addresses (SPEC §8.2).

A code URL that reaches Courier's own admin (127.0.0.1:8000), a database
listening on localhost or a cloud metadata service (169.254.169.254) would
show their answers on Task Details. So, unless COURIER_ALLOW_LOCAL_URLS is
set, loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16, fe80::/10)
and unspecified (0.0.0.0/8, ::) addresses are refused three times over:

- when a task is saved, for a host written as such an address or "localhost"
  (no DNS look-up while saving: the web server may not resolve what the
  worker can);
- before each request and each redirect, for every address the host name
  resolves to;
- on the socket actually connected (`GuardedAdapter` in
  connections/clients/peer_guard.py), so a name that resolves differently the
  second time cannot slip through.

Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7) stay allowed:
internal GitLab servers live there.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from connections.clients.base import ClientError
from connections.urls import DEFAULT_PORTS, shown

ZERO_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # Linux connects 0.0.0.0 to this machine


def local_kind(address: str) -> str:
    """What kind of local address `address` is ("a loopback", "a link-local", "an unspecified"); "" for any other."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return ""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback"
    if ip.is_link_local:
        return "a link-local"
    if ip.is_unspecified or (ip.version == 4 and ip in ZERO_NETWORK):
        return "an unspecified"
    return ""


def refusal(host: str, address: str, kind: str) -> str:
    resolved = "" if address == host else f" ({address})"
    return (
        f"{host} is {kind} address{resolved}: remote code is not fetched from this machine's own services or "
        "link-local addresses. An administrator may allow it with COURIER_ALLOW_LOCAL_URLS=true."
    )


def allowed() -> bool:
    return settings.COURIER_ALLOW_LOCAL_URLS


def written_local(url: str) -> str:
    """The refusal for a URL whose host is written as a local address or "localhost" ("" otherwise); no DNS."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    if allowed() or not host:
        return ""
    if host == "localhost" or host.endswith(".localhost"):
        return refusal(host, host, "a loopback")
    kind = local_kind(host)
    return refusal(host, host, kind) if kind else ""


def refuse_local(url: str) -> None:
    """Raise a permanent ClientError if the URL's host resolves to a local address."""
    if allowed():
        return
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 80)
    except ValueError:
        return  # the client itself reports a URL it cannot read
    if not host:
        return
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return  # the fetch reports a name that does not resolve, in its own words
    for *_, sockaddr in found:
        kind = local_kind(sockaddr[0])
        if kind:
            raise ClientError(f"Refused {shown(url)}: {refusal(host, sockaddr[0], kind)}", permanent=True)
