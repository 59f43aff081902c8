"""manage.py scheduler pause|resume|status"""

from __future__ import annotations

from django.utils import timezone

from connections import audit
from projects import scheduling
from projects.models import Project
from runs import reaper, services
from runs.management.commandline import CourierCommand
from runs.models import Run, RunStatus, SiteState


class Command(CourierCommand):
    help = "Pause or resume every schedule and retry (kept across restarts), or show the next fire times of each project."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["pause", "resume", "status"], help="pause, resume or status")
        parser.add_argument(
            "--catch-up", action="store_true",
            help="with resume: the pause counts as downtime — its fire times are recorded as missed and run late as each project's policy says",
        )

    def handle(self, action: str, catch_up: bool = False, **options):
        if action == "pause":
            audit.record_command(services.pause_scheduler(), "Paused the scheduler")
            self.stdout.write("Scheduler paused: no schedule starts a task and no retry starts until `manage.py scheduler resume`.")
        elif action == "resume":
            paused_at = SiteState.get().paused_at
            site = services.resume_scheduler(catch_up=catch_up)
            if catch_up and paused_at:
                missed = Run.objects.filter(status=RunStatus.MISSED, intended_at__gte=paused_at).count()
                audit.record_command(site, "Resumed the scheduler and caught up on the pause")
                self.stdout.write(f"Scheduler resumed; the pause counts as downtime: {missed} missed run(s) recorded since "
                                  f"{timezone.localtime(paused_at):%Y-%m-%d %H:%M %Z}, run late as each project's policy says.")
            else:
                audit.record_command(site, "Resumed the scheduler")
                self.stdout.write("Scheduler resumed.")
        else:
            self._status()

    def _status(self) -> None:
        site, now = SiteState.get(), timezone.now()
        if site.paused:
            since = f" since {timezone.localtime(site.paused_at):%Y-%m-%d %H:%M %Z}" if site.paused_at else ""
            self.stdout.write(f"Scheduler: PAUSED{since}" + (f" by {site.paused_by}" if site.paused_by else "") + ".")
        else:
            self.stdout.write("Scheduler: active (not paused).")
        self.stdout.write(
            f"Reaper: in every worker of the cluster, every {reaper.patrol_every():.0f} s; "
            f"a run silent for {reaper.reap_after().total_seconds():.0f} s is failed as worker lost."
        )
        for project in Project.objects.order_by("name"):
            self._project(project, now)
        pending = Run.objects.filter(status=RunStatus.RETRY_SCHEDULED).count()
        self.stdout.write(f"Pending retries: {pending}.")
        waiting = Run.objects.filter(status=RunStatus.WAITING).count()
        self.stdout.write(f"Runs waiting for other tasks: {waiting}.")
        orphans = len(services.orphaned_schedules())
        self.stdout.write(f"Orphaned schedule entries: {orphans}" + (" (see `manage.py orphans`)." if orphans else "."))

    def _project(self, project: Project, now) -> None:
        kinds = scheduling.active_kinds(project)
        self.stdout.write(f"\n{project.name} ({project.timezone}{', sequence' if project.sequence else ''}): "
                          + (", ".join(_trigger_text(project, kind) for kind in kinds) if kinds else "no active trigger"))
        times = scheduling.preview(project, now)
        for fire in times:
            self.stdout.write(f"  {scheduling.describe_fire(fire)}")
        if kinds and not times:
            self.stdout.write("  no fire time ahead")
        for warning in scheduling.schedule_warnings(project, now, times):
            self.stdout.write(f"  warning: {warning}")


def _trigger_text(project: Project, kind: str) -> str:
    if kind == "cron":
        return f"cron “{project.cron}”"
    if kind == "interval":
        return f"every {project.interval_every} {project.interval_unit}"
    return f"once at {project.once_at.astimezone(scheduling.zone_of(project)):%Y-%m-%d %H:%M %Z}"
