"""Run pages: the live log endpoint, the Dashboard and the Scheduler tools.

Views stay thin: permission check, one query or service call, render or redirect.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.db.models import Case, Count, Exists, F, OuterRef, Prefetch, Q, When, Window
from django.db.models.functions import RowNumber
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from etlsite.pages import action_history, record, render_page, require, require_superuser, skipped_note
from etlsite.times import zoned
from projects.models import Project
from projects.upcoming import day_plan, fire_times
from runs import keywatch, lateness, reaper, services
from runs.models import Run, RunFile, RunStatus, SiteState
from runs.queries import task_rows
from runs.resend import ResendError, queue_resend, targets
from tasks import charts
from tasks.masking import shown_masker
from tasks.models import Task

LOG_BATCH = 500  # lines per poll; the page asks again at once while `more` is true
DASHBOARD_ROWS = 50
PLAN_HOURS = 24


# --------------------------------------------------------------------------
# Live log
# --------------------------------------------------------------------------


def run_log(request: HttpRequest, pk: int) -> JsonResponse:
    """Log lines of a run after the id `after`, and the run's status, as JSON for the live log."""
    require(request, "tasks.view_task")
    run = get_object_or_404(Run.objects.select_related("task__project").only("id", "status", "rows", "task__project__timezone"), pk=pk)
    try:
        after = max(0, int(request.GET.get("after", "0") or 0))
    except ValueError:
        return JsonResponse({"error": "“after” must be a log line id (a whole number)."}, status=400)
    lines = list(run.log_lines.filter(id__gt=after).order_by("id").values("id", "at", "stage", "level", "message")[:LOG_BATCH])
    return JsonResponse({
        "run": run.pk,
        "status": run.status,
        "status_label": run.get_status_display(),
        "finished": run.status in Run.AT_REST,
        "rows": run.rows,
        "more": len(lines) == LOG_BATCH,
        # Times of day in the project's zone, as everywhere on Task Details.
        "lines": [{**line, "at": zoned(line["at"], run.task.project.timezone).strftime("%H:%M:%S")} for line in lines],
    })


# --------------------------------------------------------------------------
# Resend a stored file (Task Details → Files)
# --------------------------------------------------------------------------


@require_POST
def file_resend(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a stored file for its task's current destinations (runs/resend.py); a worker sends it, the page follows."""
    require(request, "tasks.run_task")
    record_file = get_object_or_404(RunFile.objects.select_related("run__task__project"), pk=pk)
    try:
        deliveries = queue_resend(record_file, request.user)
    except ResendError as exc:
        messages.error(request, str(exc))
    else:
        said = f"Resent {record_file.name}: queued for {targets(deliveries)}. Its progress shows under Files."
        messages.success(request, shown_masker(record_file.run.task).mask(said))
    return redirect(reverse("courier:task_detail", args=[record_file.run.task_id]) + "#files")


# --------------------------------------------------------------------------
# Dashboard
# --------------------------------------------------------------------------


def _scheduled_projects() -> list[tuple[Project, list[str]]]:
    """Projects with a trigger and at least one enabled task, with those tasks' names (two queries)."""
    has_trigger = ~Q(cron="") | Q(interval_every__isnull=False) | Q(once_at__isnull=False)
    # EXISTS, not a DISTINCT over the join with every task (30–36 ms → 22 ms at 10,000 tasks).
    enabled = Task.objects.filter(project=OuterRef("pk"), enabled=True)
    projects = {p.pk: p for p in Project.objects.filter(has_trigger).filter(Exists(enabled))}
    names: dict[int, list[str]] = {pk: [] for pk in projects}
    enabled = Task.objects.filter(enabled=True, project__in=projects.keys()).order_by("rank", "name")
    for project_id, name in enabled.values_list("project_id", "name"):
        names[project_id].append(name)
    return [(projects[pk], names[pk]) for pk in projects]


def _next_runs(firings: list, scheduled: list[tuple[Project, list[str]]], now, count: int = 10) -> list[dict]:
    """The next `count` firings: from the day's plan, and past it only when the plan has too few."""
    upcoming = [{"at": at, "project": project, "tasks": names} for at, project, names in firings[:count]]
    if len(upcoming) < count:
        planned = {entry["project"].pk for entry in upcoming}
        for project, names in scheduled:
            times = [] if project.pk in planned else fire_times(project, now, count=1)
            upcoming += [{"at": times[0], "project": project, "tasks": names}] if times else []
    return sorted(upcoming, key=lambda entry: entry["at"].timestamp())[:count]


def dashboard(request: HttpRequest) -> HttpResponse:
    require(request, "tasks.view_task")
    now = timezone.now()
    # The count of all errored tasks comes with the rows shown, in the same query (a window over the filter).
    errored = list(task_rows().filter(last_status=RunStatus.FAILED).annotate(errored=Window(Count("pk")))
                   .order_by("project__name", "name")[:DASHBOARD_ROWS])
    panels = _run_panels()
    scheduled = _scheduled_projects()
    plan = day_plan(scheduled, now, PLAN_HOURS)
    return render_page(
        request, "courier/dashboard.html", title="Dashboard", crumbs=[("Dashboard", None)],
        errored=errored, errored_count=errored[0].errored if errored else 0,
        running=panels[RunStatus.RUNNING], retries=panels[RunStatus.RETRY_SCHEDULED],
        next_runs=_next_runs(plan.firings, scheduled, now), site_zone=timezone.get_current_timezone_name(),
        plan_chart=charts.hourly_plan_chart(plan.start, plan.hours), plan_total=plan.total,
        plan_hours=[(plan.start + timedelta(hours=i), len(names), charts.tally(names)) for i, names in enumerate(plan.hours) if names],
        orphans=services.orphaned_schedules(), site=SiteState.get(),
        can_run=request.user.has_perm("tasks.run_task"),
        late=list(lateness.open_alerts()[:DASHBOARD_ROWS]), waiting=panels[RunStatus.WAITING],
        held=panels[RunStatus.HELD], expiring_keys=keywatch.expiring_keys(now),
    )


@require_POST
def run_errored(request: HttpRequest) -> HttpResponse:
    """“Run all errored”: a manual run of every task whose latest run failed."""
    require(request, "tasks.run_task")
    tasks = list(task_rows().filter(last_status=RunStatus.FAILED))
    runs = [services.run_now(task, user=request.user) for task in tasks]
    for task, run in zip(tasks, runs):
        record(request, task, f"Started run {run.pk} by hand (run all errored)." if run.status != RunStatus.SKIPPED
               else f"Run all errored: not started.{skipped_note([run])}")
    started = sum(run.status != RunStatus.SKIPPED for run in runs)
    (messages.success if started == len(runs) else messages.warning)(
        request, f"Started {started} errored task(s).{skipped_note(runs)}" if tasks else "No task is in error.")
    return redirect("courier:dashboard")


# --------------------------------------------------------------------------
# Scheduler tools (superusers)
# --------------------------------------------------------------------------


def _running_runs(order: str = "started_at"):
    # Prefetched, not joined: a join lets SQLite's planner walk every run of every task instead of the
    # few running ones on the status index (measured: 0.5 s at 1,000,000 runs).
    return Run.objects.filter(status=RunStatus.RUNNING).prefetch_related("task__project").order_by(order)


# The Dashboard's lists of runs by their status, each in its own order: running by start, retries by when
# they are due, waiting runs by their fire time, held runs as they came.
PANELS = {RunStatus.RUNNING: "started_at", RunStatus.RETRY_SCHEDULED: "due_at", RunStatus.WAITING: "intended_at",
          RunStatus.HELD: "queued_at"}


def _run_panels(rows: int = DASHBOARD_ROWS) -> dict[str, list[Run]]:
    """The first `rows` runs of each panel, in one query on the status index (a window numbers them per status).

    Their tasks (with the projects) prefetched, not joined (see `_running_runs`): one more small query when any is shown.
    """
    order = Case(*[When(status=status, then=F(field)) for status, field in PANELS.items()])
    numbered = Run.objects.filter(status__in=list(PANELS)).annotate(
        place=Window(RowNumber(), partition_by=F("status"), order_by=[order.asc(), F("id").asc()]),
    )
    panels: dict[str, list[Run]] = {status: [] for status in PANELS}
    tasks = Prefetch("task", queryset=Task.objects.select_related("project"))
    for run in sorted(numbered.filter(place__lte=rows).prefetch_related(tasks, "retry_of"), key=lambda run: run.place):
        panels[run.status].append(run)
    return panels


def scheduler_tools(request: HttpRequest) -> HttpResponse:
    require_superuser(request)
    site = SiteState.get()
    stale_before = timezone.now() - reaper.reap_after()
    running = list(_running_runs("heartbeat_at")[:DASHBOARD_ROWS])
    return render_page(
        request, "courier/scheduler.html", title="Scheduler tools", crumbs=[("Scheduler tools", None)],
        site=site, orphans=services.orphaned_schedules(), running=running, stale_before=stale_before,
        counts=Run.objects.filter(status__in=Run.UNFINISHED).aggregate(  # on the status index
            running=Count("id", filter=Q(status=RunStatus.RUNNING)), retries=Count("id", filter=Q(status=RunStatus.RETRY_SCHEDULED)),
        ),
        history=action_history(site),
    )


def _pause(request: HttpRequest) -> str:
    services.pause_scheduler(user=request.user)
    return "Paused the scheduler: no schedule fires and no retry starts until it is resumed."


def _resume(request: HttpRequest) -> str:
    services.resume_scheduler(user=request.user)
    return "Resumed the scheduler; the fire times of the pause are not run."


def _resume_catch_up(request: HttpRequest) -> str:
    paused_at = SiteState.get().paused_at
    services.resume_scheduler(user=request.user, catch_up=True)
    missed = Run.objects.filter(status=RunStatus.MISSED, intended_at__gte=paused_at).count() if paused_at else 0
    return (f"Resumed the scheduler and caught up: the pause counts as downtime, {missed} missed run(s) recorded, "
            "run late as each project's missed-run policy says.")


def _reschedule_all(request: HttpRequest) -> str:
    count = services.reschedule_all()
    return f"Rebuilt every schedule from the projects' triggers ({count} schedule entries)."


def _delete_orphans(request: HttpRequest) -> str:
    count = services.delete_orphans()
    return f"Deleted {count} orphaned schedule entr{'y' if count == 1 else 'ies'}."


def _reset_stuck(request: HttpRequest) -> str:
    runs = services.reap_runs()
    return f"Marked {len(runs)} stuck run(s) as failed (worker lost)."


SCHEDULER_ACTIONS = {
    "pause": _pause,
    "resume": _resume,
    "resume-catch-up": _resume_catch_up,
    "reschedule-all": _reschedule_all,
    "delete-orphans": _delete_orphans,
    "reset-stuck": _reset_stuck,
}


@require_POST
def scheduler_action(request: HttpRequest, action: str) -> HttpResponse:
    require_superuser(request)
    handler = SCHEDULER_ACTIONS.get(action)
    if handler is None:
        messages.error(request, f"Unknown scheduler action “{action}”.")
    else:
        message = handler(request)
        record(request, SiteState.get(), message)
        messages.success(request, message)
    return redirect("courier:scheduler")


# --------------------------------------------------------------------------
# Output file history: download a stored file
# --------------------------------------------------------------------------


@require_GET
def download_run_file(request: HttpRequest, pk: int) -> FileResponse:
    """Stream a stored output file exactly as it was delivered (Task Details → file history)."""
    require(request, "runs.view_run")
    record = get_object_or_404(RunFile, pk=pk)
    try:
        handle = record.stored.open("rb")
    except (FileNotFoundError, ValueError):
        raise Http404(f"The stored copy of {record.name} is gone (pruned or removed).") from None
    return FileResponse(handle, as_attachment=True, filename=record.name)
