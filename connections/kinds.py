"""Every kind of connection Courier knows, in one registry (SPEC §7).

Each kind declares what it stores, what a task may use it as, and the client
that speaks its protocol. Everything else reads this registry: the choices of
Connection.kind and of a task's source, destinations and code locations, the
admin form, export and import, the task form and the pipeline. Adding a kind
is one entry here, its client module (a `Client` subclass, base.py) and its
tests; `tests/test_kinds.py` checks that the client does what the entry
promises.

The client is named by its import path and loaded on first use, so a process
loads only the protocol libraries it talks: pyodbc needs libodbc at import and
smbprotocol takes a quarter of a second, and the web process needs neither.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import PurePosixPath

from django.utils.module_loading import import_string

from connections.clients.base import Client, ClientError
from connections.urls import base_url_problem


class Reads(str, Enum):
    """What a task's data source of a kind does (SPEC §3.4)."""

    QUERY = "query"  # runs the task's query; the first result set becomes the output file
    FILES = "files"  # downloads every file that matches the task's remote path
    COMMAND = "command"  # runs the task's command; its stdout may become the output file


@dataclass(frozen=True)
class SourceUse:
    label: str  # as the task form names the source, e.g. “SFTP file”
    reads: Reads


@dataclass(frozen=True)
class CodeUse:
    """Code kept on a connection of this kind (SPEC §3.5)."""

    label: str
    # The CodeLocation field that names the code: "path" is read with
    # Client.download, "url" with Client.fetch.
    address: str
    also: tuple[str, ...] = ()  # further CodeLocation fields it reads
    connection_optional: bool = False  # fetched without a connection (and so without a token) when none is chosen


@dataclass(frozen=True)
class Kind:
    key: str  # stored in Connection.kind and written in the config format
    label: str
    client: str  # import path of its Client subclass
    fields: tuple[str, ...]  # the Connection fields it uses, in the order the admin shows them
    required: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()  # stored encrypted, left out of exports without --include-secrets
    default_port: int | None = None
    source: SourceUse | None = None
    destination: str = ""  # its label as a task's destination; blank: it cannot be one
    code: CodeUse | None = None
    config_keys: tuple[tuple[str, str], ...] = ()  # (field, JSON key) where the export format names a field otherwise
    check: Callable[[object], dict[str, str]] | None = None  # problems beyond missing fields, by field

    @property
    def client_class(self) -> type[Client]:
        return import_string(self.client)

    def config_key(self, field: str) -> str:
        return dict(self.config_keys).get(field, field)

    def problems(self, conn) -> dict[str, str]:
        """What keeps `conn` from being a usable connection of this kind, by field."""
        errors = {
            field: f"A {self.label} connection needs a {conn._meta.get_field(field).verbose_name}."
            for field in self.required
            if not getattr(conn, field)
        }
        if self.check:
            errors.update({k: v for k, v in self.check(conn).items() if k not in errors})
        return errors


def _absolute_folder(conn) -> dict[str, str]:
    if conn.folder and not PurePosixPath(conn.folder).is_absolute():
        return {"folder": "The base folder of a local folder connection must be an absolute path."}
    return {}


def _plain_base_url(conn) -> dict[str, str]:
    problem = base_url_problem(conn.url) if conn.url else ""
    return {"url": problem} if problem else {}


_FILE_SERVER = ("host", "port", "folder", "username", "password")
_SSH_LOGIN = ("host", "port", "username", "password", "private_key", "key_passphrase", "host_key")

KINDS: dict[str, Kind] = {kind.key: kind for kind in (
    Kind(
        "database", "Database (ODBC)", "connections.clients.odbc.DatabaseClient",
        fields=("dialect", "odbc", "query_timeout", "login_timeout", "read_only", "copy_export"),
        required=("odbc",), secrets=("odbc",),
        source=SourceUse("Database query", Reads.QUERY),
    ),
    Kind(
        "sftp", "SFTP", "connections.clients.sftp.SftpClient",
        fields=(*_FILE_SERVER, "private_key", "key_passphrase", "host_key"),
        required=("host", "username"), secrets=("password", "private_key", "key_passphrase"), default_port=22,
        source=SourceUse("SFTP file", Reads.FILES), destination="SFTP", code=CodeUse("SFTP", "path"),
    ),
    Kind(
        "ftp", "FTP", "connections.clients.ftp.FtpClient",
        fields=(*_FILE_SERVER, "tls"),
        required=("host",), secrets=("password",), default_port=21,
        source=SourceUse("FTP file", Reads.FILES), destination="FTP", code=CodeUse("FTP", "path"),
    ),
    Kind(
        "smb", "SMB", "connections.clients.smb.SmbClient",
        fields=("host", "port", "share", "folder", "domain", "username", "password"),
        required=("host", "share", "username"), secrets=("password",), default_port=445,
        source=SourceUse("SMB file", Reads.FILES), destination="SMB", code=CodeUse("SMB", "path"),
        config_keys=(("host", "server"),),
    ),
    Kind(
        "ssh", "SSH", "connections.clients.ssh.SshClient",
        fields=_SSH_LOGIN,
        required=("host", "username"), secrets=("password", "private_key", "key_passphrase"), default_port=22,
        source=SourceUse("SSH command", Reads.COMMAND),
    ),
    Kind(
        "gitlab", "GitLab", "connections.clients.http.GitLabClient",
        fields=("url", "token", "verify_tls"),
        required=("url",), secrets=("token",),
        code=CodeUse("GitLab", "url", also=("path",)), check=_plain_base_url,
    ),
    Kind(
        "web", "Web URL", "connections.clients.http.WebClient",
        fields=("url", "header", "token", "verify_tls"),
        required=("url",), secrets=("token",),
        code=CodeUse("Web URL", "url", connection_optional=True), check=_plain_base_url,
    ),
    Kind(
        "folder", "Local folder", "connections.clients.folder.FolderClient",
        fields=("folder",),
        required=("folder",), destination="Local folder",
        config_keys=(("folder", "path"),), check=_absolute_folder,
    ),
)}


def get(key: str) -> Kind:
    try:
        return KINDS[key]
    except KeyError:
        raise ClientError(f"Courier cannot talk to “{key}” connections.", permanent=True) from None


def client_for(conn) -> Client:
    """A client for `conn`, not yet connected: `with client_for(conn) as client: ...`, or `client_for(conn).test()`."""
    return get(conn.kind).client_class(conn)


# Choices, as callables so that a new kind needs no migration.


def kind_choices() -> list[tuple[str, str]]:
    return [(kind.key, kind.label) for kind in KINDS.values()]


def source_choices() -> list[tuple[str, str]]:
    return [(kind.key, kind.source.label) for kind in KINDS.values() if kind.source]


def destination_choices() -> list[tuple[str, str]]:
    return [(kind.key, kind.destination) for kind in KINDS.values() if kind.destination]


def code_choices() -> list[tuple[str, str]]:
    return [(kind.key, kind.code.label) for kind in KINDS.values() if kind.code]


def reads(source_kind: str) -> Reads | None:
    """What a source of this kind does; None for a source that is no connection kind (a script-only task)."""
    kind = KINDS.get(source_kind)
    return kind.source.reads if kind and kind.source else None


def sources_reading(*what: Reads) -> list[str]:
    return [kind.key for kind in KINDS.values() if kind.source and kind.source.reads in what]


def code_kinds(*addresses: str) -> list[str]:
    """The code location kinds whose code is named by one of `addresses` ("path", "url"); all with none given."""
    return [kind.key for kind in KINDS.values() if kind.code and (not addresses or kind.code.address in addresses)]


def code_kinds_reading(field: str) -> list[str]:
    """The code location kinds that read this CodeLocation field."""
    return [kind.key for kind in KINDS.values() if kind.code and field in (kind.code.address, *kind.code.also)]
