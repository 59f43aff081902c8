"""manage.py check_connections ["<organization>/<name>" ...]"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from connections.checks import check_connection
from connections.models import Connection
from runs import audit


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

    def handle(self, names: list[str], **options):
        targets = [find_connection(n) for n in names] if names else list(Connection.objects.select_related("organization"))
        if not targets:
            self.stdout.write("There are no connections to check.")
            return
        failed = 0
        for conn in targets:
            pinned = conn.host_key
            result = check_connection(conn)
            if conn.host_key != pinned:
                audit.record_command(conn, f"Pinned the server's host key ({conn.host_key.split()[0]}) on a successful test")
            failed += not result.ok
            self.stdout.write(f"{'ok    ' if result.ok else 'FAILED'} {result.message}")
        if failed:
            raise CommandError(f"{failed} of {len(targets)} connection(s) failed.", returncode=1)
