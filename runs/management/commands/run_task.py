"""manage.py run_task "<project>/<task>" [--wait] [--json]"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from connections import audit
from runs import services
from runs.models import RunStatus, Trigger
from runs.reporting import run_summary
from runs.runner import execute
from tasks.lookup import NotFound, find_task


class Command(BaseCommand):
    help = "Start a run of a task now: through the queue, or with --wait in this process, printing its log."
    # The system checks import every page and its URL (a third of the start-up, issue 20); `manage.py check` runs them.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("name", help="“project/task” or the task's id")
        parser.add_argument("--wait", action="store_true", help="Run here and now and print the log as it goes.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object describing the run at the end.")
        # Every other command takes it; here it changes nothing, since the checks never run.
        parser.add_argument("--skip-checks", action="store_true", help="Accepted as by every command; run_task skips the system checks anyway.")

    def handle(self, name, wait, json: bool, **options):
        try:
            task = find_task(name)
        except NotFound as exc:
            raise CommandError(str(exc), returncode=2) from None
        # With --wait the run is not queued: this process executes it. Either way, at most one active run per task (SPEC §4).
        run = services.run_now(task, trigger=Trigger.MANUAL, queue=not wait)
        if not wait or run.status == RunStatus.SKIPPED:
            audit.record_command(task, f"Started run {run.pk} ({run.status})")
            self._report(run, json, f"Run {run.pk} of {task} is {run.status}.")
            if run.status == RunStatus.SKIPPED:
                raise CommandError(f"Run {run.pk} of {task} skipped: {run.error}", returncode=1)
            return
        audit.record_command(task, f"Started run {run.pk} here and now (--wait)")
        # With --json, stdout carries only the JSON object; the log goes to stderr.
        stream = sys.stderr if json else self.stdout
        execute(run.pk, echo=lambda line: stream.write(line + "\n"))
        run.refresh_from_db()
        self._report(run, json, f"Run {run.pk} of {task} {run.status}.")
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(f"Run {run.pk} {run.status}: {run.error or run.guard_report or 'see the log'}", returncode=1)

    def _report(self, run, as_json: bool, text: str) -> None:
        if as_json:
            self.stdout.write(json.dumps(run_summary(run), indent=2))
        else:
            self.stdout.write(text)
