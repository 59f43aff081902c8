"""manage.py run_project NAME [--wait]"""

from __future__ import annotations

import time
from collections import deque

from connections import audit
from runs import services
from runs.management.commandline import CourierCommand, failed
from runs.models import Run, RunStatus, Trigger
from runs.runner import execute

POLL_SECONDS = 1.0


class Command(CourierCommand):
    help = "Run every enabled task of a project now, honouring its sequence; with --wait, here and now, printing the logs."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The project's name or id.")
        parser.add_argument("--wait", action="store_true",
                            help="Run in this process and print the logs; a sequence is followed to its end.")

    def handle(self, name: str, wait: bool, **options):
        project = self.project(name)
        runs = services.run_project(project, trigger=Trigger.COMMAND, queue=not wait)
        audit.record_command(project, f"Started the enabled tasks ({len(runs)} run(s){', here and now' if wait else ''})")
        if not runs:
            raise failed(f"Project {project.name} has no enabled tasks.")
        if not wait:
            for run in runs:
                self.stdout.write(self._line(run, run.status))
            return
        finished = self._follow(runs)
        bad = [run for run in finished if run.status != RunStatus.SUCCEEDED]
        if bad:
            raise failed(f"{len(bad)} of {len(finished)} run(s) of {project.name} did not succeed: "
                         + "; ".join(f"run {run.pk} {run.status}" for run in bad))

    def _follow(self, runs: list[Run]) -> list[Run]:
        """Execute each run here; in a sequence, go on with the runs each success starts."""
        pending, finished = deque(run.pk for run in runs), []
        while pending:
            run_id = pending.popleft()
            run = Run.objects.select_related("task__project").get(pk=run_id)
            if run.status in Run.CLAIMABLE:
                self.stdout.write(f"--- {run.task} (run {run.pk})")
                if execute(run_id, echo=lambda line: self.stdout.write(line)) is None:
                    self._await(run_id)  # a worker claimed it first
            run.refresh_from_db()
            self.stdout.write(self._line(run, run.status))
            finished.append(run)
            pending.extend(Run.objects.filter(sequence_from_id=run_id).order_by("id").values_list("pk", flat=True))
        return finished

    def _await(self, run_id: int) -> None:
        while Run.objects.filter(pk=run_id).exclude(status__in=Run.AT_REST).exists():
            time.sleep(POLL_SECONDS)

    @staticmethod
    def _line(run: Run, status: str) -> str:
        detail = f": {run.error}" if run.error else ""
        return f"Run {run.pk} of {run.task} {status}{detail}"
