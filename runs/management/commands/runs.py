"""manage.py runs [NAME] [--limit N] [--json]"""

from __future__ import annotations

import json

from runs.management.commandline import CourierCommand, bad_input, positive_int
from runs.models import Run
from runs.reporting import iso, run_row
from tasks.lookup import NotFound, find_project, find_task


class Command(CourierCommand):
    help = "The latest runs, newest first: of one task (“project/task” or id), one project, or all."

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="“project/task”, a task id, or a project name; all runs if left out.")
        parser.add_argument("--limit", type=positive_int, default=20, help="How many runs to show (default 20).")
        parser.add_argument("--json", action="store_true", help="Print a JSON list of runs.")

    def handle(self, name: str | None, limit: int, json: bool, **options):
        runs = self._runs(name).select_related("task__project").order_by("-id")[:limit]
        rows = [run_row(run) for run in runs]
        if json:
            self.stdout.write(_dumps(rows))
            return
        for run, row in zip(runs, rows, strict=True):
            self.stdout.write(
                f"{row['run']:>7}  {row['task']:<40} {row['status']:<15} {row['trigger']:<8} #{row['attempt']}  "
                f"due {iso(run.due_at)[:19]}  rows {row['rows'] if row['rows'] is not None else '-'}"
                + (f"  {row['error']}" if row["error"] else "")
            )

    def _runs(self, name: str | None):
        if not name:
            return Run.objects.all()
        try:
            return Run.objects.filter(task=find_task(name))
        except NotFound as task_error:
            try:
                return Run.objects.filter(task__project=find_project(name))
            except NotFound:
                raise bad_input(f"{task_error} No project has that name either.") from None


def _dumps(rows: list[dict]) -> str:
    return json.dumps(rows, indent=2)
