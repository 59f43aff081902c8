"""manage.py cancel_retry NAME"""

from __future__ import annotations

from connections import audit
from runs import services
from runs.management.commandline import CourierCommand, failed


class Command(CourierCommand):
    help = "Cancel a task's pending retry: its schedule is deleted and the run recorded as cancelled."

    def add_arguments(self, parser):
        parser.add_argument("name", help="“project/task” or the task's id")

    def handle(self, name: str, **options):
        task = self.task(name)
        try:
            run = services.cancel_retry(task)
        except services.ServiceError as exc:
            raise failed(str(exc)) from None
        audit.record_command(task, f"Cancelled the retry (run {run.pk})")
        self.stdout.write(f"Cancelled the retry of {task} (run {run.pk}, attempt {run.attempt}).")
