"""manage.py orphans [--delete]"""

from __future__ import annotations

from connections import audit
from runs import services
from runs.management.commandline import CourierCommand
from runs.models import SiteState


class Command(CourierCommand):
    help = "List Courier's schedule entries that match no project trigger or pending retry; --delete removes them."

    def add_arguments(self, parser):
        parser.add_argument("--delete", action="store_true", help="Delete the orphaned entries.")

    def handle(self, delete: bool, **options):
        found = services.orphaned_schedules()
        for schedule in found:
            when = f"{schedule.next_run:%Y-%m-%d %H:%M:%S %Z}" if schedule.next_run else "-"
            self.stdout.write(f"{schedule.pk:>7}  {schedule.name:<40} {schedule.func} {schedule.args or ''}  next {when}")
        if delete:
            count = services.delete_orphans()
            audit.record_command(SiteState.get(), f"Deleted {count} orphaned schedule entr{'y' if count == 1 else 'ies'}")
            self.stdout.write(f"Deleted {count} orphaned schedule entr{'y' if count == 1 else 'ies'}.")
        else:
            self.stdout.write(f"{len(found)} orphaned schedule entr{'y' if len(found) == 1 else 'ies'}.")
