"""manage.py reap_runs"""

from __future__ import annotations

from connections import audit
from runs import services
from runs.management.commandline import CourierCommand
from runs.models import SiteState
from runs.reaper import reap_after


class Command(CourierCommand):
    help = "Mark runs whose worker is gone (no sign of life for a few minutes) as failed, “worker lost”, and apply their retry policy."

    def handle(self, **options):
        reaped = services.reap_runs()
        audit.record_command(SiteState.get(), f"Marked {len(reaped)} stuck run(s) as failed (worker lost)")
        for run in reaped:
            self.stdout.write(f"Run {run.pk} of {run.task}: {run.error}")
        self.stdout.write(f"{len(reaped)} run(s) marked as failed (silent for more than {reap_after().total_seconds():.0f} s).")
