"""manage.py check_connections ["<organization>/<name>" ...] [--pin FINGERPRINT]

An SFTP/SSH connection with no pinned host key fails its check with the
server's fingerprint (nothing else is sent to it). After checking that
fingerprint with the server's administrator, an operator pins it with
`check_connections NAME --pin SHA256:…`: only the key the last check read,
and only if the fingerprint matches; the check then logs in.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from connections import audit
from connections.checks import check_connection
from connections.host_keys import PinRefused, pin_host_key
from connections.models import Connection


def find_connection(name: str) -> Connection:
    """A connection by “Organization/name” (either may contain “/”) or by id."""
    name = name.strip()
    connections = Connection.objects.select_related("organization")
    if name.isdigit():
        match = connections.filter(pk=int(name)).first()
    else:
        parts = name.split("/")
        match = next(
            (c for cut in range(1, len(parts))
             if (c := connections.filter(organization__name="/".join(parts[:cut]), name="/".join(parts[cut:])).first())),
            None,
        )
    if match is None:
        form = "" if "/" in name or name.isdigit() else " (write “Organization/name”)"
        raise CommandError(f"No connection “{name}”{form}.", returncode=2)
    return match


class Command(BaseCommand):
    help = "Really connect to each named connection (default: all) and report; exit 1 if any failed."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", help="“Organization/name” or id; none means every connection")
        parser.add_argument(
            "--pin", metavar="FINGERPRINT",
            help="pin the SFTP/SSH host key the last check of the one named connection read, if this is its "
                 "fingerprint (“SHA256:…” as printed), then check it again",
        )

    def handle(self, names: list[str], pin: str | None, **options):
        if pin is not None and len(names) != 1:
            raise CommandError("--pin needs exactly one connection name.", returncode=2)
        targets = [find_connection(n) for n in names] if names else list(Connection.objects.select_related("organization"))
        if not targets:
            self.stdout.write("There are no connections to check.")
            return
        if pin is not None:
            self._pin(targets[0], pin)
        failed = 0
        for conn in targets:
            result = check_connection(conn)
            failed += not result.ok
            self.stdout.write(f"{'ok    ' if result.ok else 'FAILED'} {result.message}")
        if failed:
            raise CommandError(f"{failed} of {len(targets)} connection(s) failed.", returncode=1)

    def _pin(self, conn: Connection, fingerprint: str) -> None:
        try:
            message = pin_host_key(conn, fingerprint)
        except PinRefused as exc:
            raise CommandError(str(exc), returncode=1) from None
        audit.record_command(conn, message)
        self.stdout.write(message)
