"""Organizations, the connections grouped under them, and GPG public keys."""

from __future__ import annotations

from pathlib import PurePosixPath

from django.core.exceptions import ValidationError
from django.db import models

from connections.secrets import SecretField
from connections.urls import base_url_problem
from connections.validators import validate_plain_name


class Organization(models.Model):
    name = models.CharField(
        "name", max_length=100, unique=True, validators=[validate_plain_name],
        help_text="The vendor or department, e.g. “Acme”.",
    )
    description = models.TextField("description", blank=True, help_text="What this organization is to us.")
    address = models.TextField("address", blank=True, help_text="Postal address, for reference.")
    contact_name = models.CharField("contact name", max_length=200, blank=True, help_text="Who to call about its data.")
    contact_email = models.EmailField("contact email", blank=True, help_text="The contact's email address.")
    contact_phone = models.CharField("contact phone", max_length=50, blank=True, help_text="The contact's phone number.")

    class Meta:
        ordering = ["name"]
        verbose_name = "organization"

    def __str__(self) -> str:
        return self.name


class ConnectionKind(models.TextChoices):
    DATABASE = "database", "Database (ODBC)"
    SFTP = "sftp", "SFTP"
    FTP = "ftp", "FTP"
    SMB = "smb", "SMB"
    SSH = "ssh", "SSH"
    GITLAB = "gitlab", "GitLab"
    WEB = "web", "Web URL"
    FOLDER = "folder", "Local folder"


class Dialect(models.TextChoices):
    MSSQL = "mssql", "SQL Server"
    POSTGRESQL = "postgresql", "PostgreSQL"
    MYSQL = "mysql", "MySQL / MariaDB"
    SQLITE = "sqlite", "SQLite"
    OTHER = "other", "Other"


# Which fields each kind uses (beyond name, organization and kind); the admin
# and the config format read this, and clean() enforces the required ones.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    ConnectionKind.DATABASE: ("dialect", "odbc", "query_timeout", "login_timeout", "read_only"),
    ConnectionKind.SFTP: ("host", "port", "folder", "username", "password", "private_key", "key_passphrase", "host_key"),
    ConnectionKind.FTP: ("host", "port", "folder", "username", "password", "tls"),
    ConnectionKind.SMB: ("host", "port", "share", "folder", "domain", "username", "password"),
    ConnectionKind.SSH: ("host", "port", "username", "password", "private_key", "key_passphrase", "host_key"),
    ConnectionKind.GITLAB: ("url", "token", "verify_tls"),
    ConnectionKind.WEB: ("url", "header", "token", "verify_tls"),
    ConnectionKind.FOLDER: ("folder",),
}
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    ConnectionKind.DATABASE: ("odbc",),
    ConnectionKind.SFTP: ("host", "username"),
    ConnectionKind.FTP: ("host",),
    ConnectionKind.SMB: ("host", "share", "username"),
    ConnectionKind.SSH: ("host", "username"),
    ConnectionKind.GITLAB: ("url",),
    ConnectionKind.WEB: ("url",),
    ConnectionKind.FOLDER: ("folder",),
}
DEFAULT_PORTS = {"sftp": 22, "ssh": 22, "ftp": 21, "smb": 445}
SECRET_FIELDS = ("odbc", "password", "private_key", "key_passphrase", "token")


class Connection(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="connections",
        verbose_name="organization", help_text="The organization this connection belongs to.",
    )
    name = models.CharField(
        "name", max_length=100, validators=[validate_plain_name],
        help_text="Unique within the organization; tasks refer to “Organization/name”.",
    )
    kind = models.CharField("kind", max_length=20, choices=ConnectionKind.choices, help_text="The kind of system this connects to.")
    description = models.TextField("description", blank=True, help_text="Notes for other administrators.")

    # Database
    dialect = models.CharField(
        "SQL dialect", max_length=20, choices=Dialect.choices, default=Dialect.OTHER, blank=True,
        help_text="Decides how queries are prepared (SQL Server gets SET NOCOUNT ON) and which streaming options are added.",
    )
    odbc = SecretField("ODBC connection string", blank=True, help_text="DSN-less ODBC string, e.g. Driver={PostgreSQL Unicode};Server=…;Database=…;Uid=…;Pwd=…; Stored encrypted.")
    query_timeout = models.PositiveIntegerField("query timeout (s)", default=3600, help_text="A query running longer than this is stopped. 0 means no limit.")
    login_timeout = models.PositiveIntegerField("login timeout (s)", default=30, help_text="How long to wait for the database to accept the login.")
    read_only = models.BooleanField("read only", default=False, help_text=(
        "Reject queries that change data. PostgreSQL, MariaDB and SQLite sessions are made read only on the server; "
        "SQL Server and other databases have no such setting, so Courier only refuses statements that change data "
        "there: give their login read rights only."
    ))

    # Servers (SFTP, FTP, SMB, SSH)
    host = models.CharField("host", max_length=255, blank=True, help_text="Host name or IP address of the server.")
    port = models.PositiveIntegerField("port", null=True, blank=True, help_text="Blank for the protocol's default (22 SFTP/SSH, 21 FTP, 445 SMB).")
    share = models.CharField("share", max_length=255, blank=True, help_text="SMB share name.")
    domain = models.CharField("domain", max_length=255, blank=True, help_text="SMB domain (blank for none).")
    folder = models.CharField(
        "base folder", max_length=1000, blank=True,
        help_text="Folder that paths are relative to. For a local folder connection: the only folder tasks may write below.",
    )
    username = models.CharField("username", max_length=255, blank=True, help_text="Login name on the server.")
    password = SecretField("password", blank=True, help_text="Stored encrypted; never shown again.")
    private_key = SecretField("private key", blank=True, help_text="OpenSSH or PEM private key (RSA, ECDSA, Ed25519). Stored encrypted.")
    key_passphrase = SecretField("key passphrase", blank=True, help_text="Passphrase of the private key, if it has one. Stored encrypted.")
    host_key = models.TextField(
        "pinned host key", blank=True,
        help_text="The server's public host key (“ssh-ed25519 AAAA…”), checked on every connection. Until one is pinned "
                  "nothing is sent to the server: a test only reads its key and shows the fingerprint for a superuser to pin.",
    )
    pending_host_key = models.TextField(
        "host key waiting to be pinned", blank=True, editable=False,
        help_text="The key the last test read from the server without logging in (“[host]:port ssh-ed25519 AAAA…”); "
                  "pinned only when a superuser confirms its fingerprint.",
    )
    tls = models.BooleanField("use TLS (FTPS)", default=False, help_text="Explicit FTPS: AUTH TLS on the control connection and a protected data channel.")

    # Code hosts
    url = models.URLField(
        "base URL", max_length=1000, blank=True,
        help_text="GitLab: the instance's URL, e.g. https://gitlab.example.com; its token goes only to this host. "
                  "Web: e.g. https://raw.githubusercontent.com/acme/; its token is sent only to URLs under it.",
    )
    header = models.CharField("token header", max_length=100, blank=True, help_text="HTTP header that carries the token, e.g. Authorization.")
    token = SecretField("token", blank=True, help_text="API or access token. Stored encrypted.")
    verify_tls = models.BooleanField("verify TLS", default=True, help_text="Check the server's certificate. Switch off only for an internal server with a private CA.")

    tested_at = models.DateTimeField("last tested", null=True, blank=True, editable=False, help_text="When “Test connection” last ran.")
    test_ok = models.BooleanField("last test passed", null=True, editable=False, help_text="Outcome of the last test.")
    test_message = models.TextField("last test result", blank=True, editable=False, help_text="What the last test reported (never a secret).")

    created_at = models.DateTimeField("created", auto_now_add=True)
    updated_at = models.DateTimeField("updated", auto_now=True)

    class Meta:
        ordering = ["organization__name", "name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="connection_unique_name_per_org")]
        verbose_name = "connection"

    def __str__(self) -> str:
        return f"{self.organization.name}/{self.name}" if self.organization_id else self.name

    @property
    def effective_port(self) -> int | None:
        return self.port or DEFAULT_PORTS.get(self.kind)

    def clean(self) -> None:
        errors = {}
        for field in REQUIRED_FIELDS.get(self.kind, ()):
            if not getattr(self, field):
                errors[field] = f"A {self.get_kind_display()} connection needs a {self._meta.get_field(field).verbose_name}."
        if self.kind == ConnectionKind.FOLDER and self.folder and not PurePosixPath(self.folder).is_absolute():
            errors["folder"] = "The base folder of a local folder connection must be an absolute path."
        if self.kind in (ConnectionKind.GITLAB, ConnectionKind.WEB) and self.url and base_url_problem(self.url):
            errors["url"] = base_url_problem(self.url)
        if errors:
            raise ValidationError(errors)


class GpgKey(models.Model):
    name = models.CharField("name", max_length=100, unique=True, validators=[validate_plain_name], help_text="How tasks refer to this key.")
    public_key = models.TextField("public key", help_text="ASCII-armoured OpenPGP public key (-----BEGIN PGP PUBLIC KEY BLOCK-----).")
    fingerprint = models.CharField("fingerprint", max_length=64, blank=True, editable=False, help_text="Read from the key when it is saved.")
    user_ids = models.TextField("user ids", blank=True, editable=False, help_text="Read from the key when it is saved.")
    expires_at = models.DateTimeField("expires", null=True, blank=True, editable=False, help_text="Read from the key; blank means it never expires.")
    created_at = models.DateTimeField("created", auto_now_add=True)
    updated_at = models.DateTimeField("updated", auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "GPG key"

    def __str__(self) -> str:
        return self.name
