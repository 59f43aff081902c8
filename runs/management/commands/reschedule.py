"""manage.py reschedule [--all | --project NAME | --task NAME]"""

from __future__ import annotations

from connections import audit
from runs import services
from runs.management.commandline import CourierCommand
from runs.models import SiteState


class Command(CourierCommand):
    help = ("Rebuild schedules from the projects' triggers: of one project or task (cancelling its pending retries), "
            "or --all (every project, and the schedules of pending retries, which are kept).")

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--all", action="store_true", help="Every project, and pending retries (kept).")
        which.add_argument("--project", metavar="NAME", help="One project (name or id).")
        which.add_argument("--task", metavar="NAME", help="The project of one task (“project/task” or id); cancels that task's retries.")

    def handle(self, all: bool, project: str | None, task: str | None, **options):
        if all:
            armed = services.reschedule_all()
            audit.record_command(SiteState.get(), f"Rebuilt every schedule ({armed} trigger schedule(s))")
            self.stdout.write(f"Rebuilt every schedule: {armed} trigger schedule(s) armed, pending retries kept.")
        elif project:
            target = self.project(project)
            cancelled = services.reschedule_project(target)
            audit.record_command(target, f"Rebuilt the schedules; cancelled {_retries(cancelled)}")
            self.stdout.write(f"Rebuilt the schedules of {target.name}; cancelled {_retries(cancelled)}.")
        else:
            target = self.task(task)
            cancelled = services.reschedule_task(target)
            audit.record_command(target, f"Rebuilt the schedules of {target.project.name}; cancelled {_retries(cancelled)}")
            self.stdout.write(f"Rebuilt the schedules of {target.project.name}; cancelled {_retries(cancelled)} of {target}.")


def _retries(cancelled: list) -> str:
    return f"{len(cancelled)} pending retr{'y' if len(cancelled) == 1 else 'ies'}"
