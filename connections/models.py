"""Organizations, the connections grouped under them, and GPG public keys."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from connections.kinds import KINDS, kind_choices
from connections.secrets import SecretField
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


class Dialect(models.TextChoices):
    MSSQL = "mssql", "SQL Server"
    POSTGRESQL = "postgresql", "PostgreSQL"
    MYSQL = "mysql", "MySQL / MariaDB"
    SQLITE = "sqlite", "SQLite"
    OTHER = "other", "Other"


class Connection(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="connections",
        verbose_name="organization", help_text="The organization this connection belongs to.",
    )
    name = models.CharField(
        "name", max_length=100, validators=[validate_plain_name],
        help_text="Unique within the organization; tasks refer to “Organization/name”.",
    )
    kind = models.CharField("kind", max_length=20, choices=kind_choices, help_text="The kind of system this connects to.")
    description = models.TextField("description", blank=True, help_text="Notes for other administrators.")

    # Database
    dialect = models.CharField(
        "SQL dialect", max_length=20, choices=Dialect.choices, default=Dialect.OTHER, blank=True,
        help_text="Decides how queries are prepared (SQL Server gets SET NOCOUNT ON) and which streaming options are added.",
    )
    odbc = SecretField("ODBC connection string", blank=True, help_text="DSN-less ODBC string, e.g. Driver={PostgreSQL Unicode};Server=…;Database=…;Uid=…;Pwd=…;")
    query_timeout = models.PositiveIntegerField("query timeout (s)", default=3600, help_text="A query running longer than this is stopped. 0 means no limit.")
    login_timeout = models.PositiveIntegerField("login timeout (s)", default=30, help_text="How long to wait for the database to accept the login.")
    read_only = models.BooleanField("read only", default=False, help_text=(
        "Reject queries that change data. PostgreSQL, MariaDB and SQLite sessions are made read only on the server; "
        "SQL Server and other databases have no such setting, so Courier only refuses statements that change data "
        "there: give their login read rights only."
    ))
    copy_export = models.BooleanField("fast PostgreSQL export (COPY)", default=True, help_text=(
        "PostgreSQL with CSV or delimited text output: read the result through the server's COPY, several times "
        "faster, where it gives exactly the bytes the ODBC driver would; the run log says when it cannot. "
        "Switch off to always read through ODBC."
    ))

    # Servers (SFTP, FTP, SMB, SSH)
    host = models.CharField("host", max_length=255, blank=True, help_text="Host name or IP address of the server.")
    port = models.PositiveIntegerField("port", null=True, blank=True, help_text="Blank for the protocol's default port.")
    share = models.CharField("share", max_length=255, blank=True, help_text="SMB share name.")
    domain = models.CharField("domain", max_length=255, blank=True, help_text="SMB domain (blank for none).")
    folder = models.CharField(
        "base folder", max_length=1000, blank=True,
        help_text="Folder that paths are relative to. For a local folder connection: the only folder tasks may write below.",
    )
    username = models.CharField("username", max_length=255, blank=True, help_text="Login name on the server.")
    password = SecretField("password", blank=True, help_text="Password of the login above.")
    private_key = SecretField("private key", blank=True, help_text="OpenSSH or PEM private key (RSA, ECDSA, Ed25519).")
    key_passphrase = SecretField("key passphrase", blank=True, help_text="Passphrase of the private key, if it has one.")
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
    token = SecretField("token", blank=True, help_text="API or access token.")
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
        kind = KINDS.get(self.kind)
        return self.port or (kind.default_port if kind else None)

    def clean(self) -> None:
        kind = KINDS.get(self.kind)
        errors = kind.problems(self) if kind else {}
        if errors:
            raise ValidationError(errors)


# Every field stored encrypted; each kind names those it uses (connections/kinds.py).
SECRET_FIELDS = tuple(field.name for field in Connection._meta.fields if isinstance(field, SecretField))


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
