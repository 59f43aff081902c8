"""manage.py held_runs [NAME] | --release RUN [--wait] | --discard RUN"""

from __future__ import annotations

import sys

from connections import audit
from runs import held, services
from runs.management.commandline import CourierCommand, bad_input, failed, positive_int
from runs.models import Run, RunStatus
from runs.runner import execute


class Command(CourierCommand):
    help = ("List the runs the row guard held (of one task, or all); release one (its stored files are delivered once) "
            "or discard one (its stored files are removed).")

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="“project/task” or the task's id: list only its held runs")
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--release", type=positive_int, metavar="RUN", help="Deliver the held files of this run.")
        action.add_argument("--discard", type=positive_int, metavar="RUN", help="Remove the held files of this run; nothing is delivered.")
        parser.add_argument("--wait", action="store_true", help="With --release: deliver here and now and print the log.")

    def handle(self, name=None, release=None, discard=None, wait=False, **options):
        if release is None and discard is None:
            self._list(self.task(name) if name else None)
            return
        run = self._run(release or discard)
        try:
            if discard is not None:
                services.discard_held(run)
                audit.record_command(run.task, f"Discarded the held files of run {run.pk}")
                self.stdout.write(f"Discarded run {run.pk} of {run.task}: its held files are removed.")
                return
            services.release_held(run, queue=not wait)
            audit.record_command(run.task, f"Released the held files of run {run.pk}")
        except services.ServiceError as exc:
            raise failed(str(exc)) from None
        if not wait:
            self.stdout.write(f"Released run {run.pk} of {run.task}: its files are queued for delivery.")
            return
        execute(run.pk, echo=lambda line: sys.stdout.write(line + "\n"))
        run.refresh_from_db()
        if run.status != RunStatus.SUCCEEDED:
            raise failed(f"Run {run.pk} {run.status}: {run.error or 'see the log'}")
        self.stdout.write(f"Run {run.pk} of {run.task} delivered its held files.")

    def _run(self, run_id: int) -> Run:
        run = Run.objects.select_related("task__project").filter(pk=run_id).first()
        if run is None:
            raise bad_input(f"There is no run {run_id}.")
        return run

    def _list(self, task) -> None:
        runs = list(held.held_runs(task))
        if not runs:
            self.stdout.write("No held runs.")
        for run in runs:
            self.stdout.write(f"{run.pk}\t{run.task}\t{run.finished_at:%Y-%m-%d %H:%M}\t{run.guard_report}")
