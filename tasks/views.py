"""Task pages: All Tasks, My Tasks, Task Details with its controls, New/Edit/Delete Task.

Views stay thin: they check a permission, call a query or a service, and
render or redirect. Every state change is a POST (CSRF-checked by the admin
wrapper) and is written to the admin log.
"""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Exists, OuterRef, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_tables2 import LazyPaginator, RequestConfig

from etlsite.filters import MyTaskFilter, TaskFilter
from etlsite.pages import action_history, record, record_addition, record_deletion, render_page, require
from etlsite.tables import FileTable, RunTable, TaskTable
from projects.models import Project
from projects.upcoming import next_run_lookup
from runs import held, services
from runs.live import TaskState, state_runs, task_state
from runs.models import Run, RunFile, RunStatus, SiteState
from runs.preview import preview
from runs.queries import task_rows
from tasks import charts, codeguard
from tasks.clouds import name_cloud
from tasks.forms import TaskEditor
from tasks.masking import shown_masker
from tasks.models import Task
from tasks.summary import summary

LIST_PAGE_SIZE = 25
HISTORY_PAGE_SIZE = 15
# The duration chart shows the runs that ended among the task's newest runs (read with its live state, one query).
CHART_RUNS = 50


def detail_queryset() -> QuerySet[Task]:
    """A task with everything its summary and preview read, in a fixed number of queries.

    Whether it runs after other tasks, and whether a run of it is held, are asked in the task's own
    query: most tasks have neither, and then no list of them is read (tasks/summary.py, Task Details).
    """
    runs_after = Task.wait_for.through.objects.filter(from_task=OuterRef("pk"))
    held = Run.objects.filter(task=OuterRef("pk"), status=RunStatus.HELD)
    return Task.objects.select_related("project__owner", "source_connection__organization", "gpg_key").prefetch_related(
        "parameters", "project__parameters", "code_locations__connection__organization",
        "destinations__connection__organization", "notifications",
    ).annotate(runs_after_others=Exists(runs_after), has_held_runs=Exists(held))


# --------------------------------------------------------------------------
# Lists
# --------------------------------------------------------------------------


def task_list(request: HttpRequest) -> HttpResponse:
    return _task_list(request, mine=False)


def my_tasks(request: HttpRequest) -> HttpResponse:
    return _task_list(request, mine=True)


def _task_list(request: HttpRequest, *, mine: bool) -> HttpResponse:
    require(request, "tasks.view_task")
    base = task_rows()
    if mine:
        base = base.filter(project__owner=request.user)
    filter_class = MyTaskFilter if mine else TaskFilter
    filterset = filter_class(request.GET, queryset=base, request=request)
    filtered = any(request.GET.get(name) for name in filterset.filters)
    table = TaskTable(filterset.qs, next_run=next_run_lookup(), paused=SiteState.get().paused,
                      empty_text=None if filtered else "No tasks yet: a task is made on its project's page (New task).")
    RequestConfig(request, paginate={"per_page": LIST_PAGE_SIZE}).configure(table)
    clouds = [] if mine else [
        name_cloud("Owners", filter_class, request.GET, base, param="owner", key="project__owner_id",
                   label="project__owner__username", request=request),
    ]
    clouds.append(name_cloud("Projects", filter_class, request.GET, base, param="project", key="project_id",
                             label="project__name", request=request))
    title = "My tasks" if mine else "All tasks"
    return render_page(request, "courier/task_list.html", title=title, crumbs=[(title, None)],
                       table=table, filter=filterset, clouds=clouds, mine=mine)


# --------------------------------------------------------------------------
# Details
# --------------------------------------------------------------------------


def _controls(request: HttpRequest, state: TaskState) -> dict:
    """What the user may do, and what the task's runs allow: one run at a time, Cancel Retry not while it runs."""
    user, states, active = request.user, state.statuses, state.active
    running = RunStatus.RUNNING in states
    return {
        "can_run": user.has_perm("tasks.run_task"),
        "can_change": user.has_perm("tasks.change_task"),
        "can_add": user.has_perm("tasks.add_task"),
        "can_delete": user.has_perm("tasks.delete_task"),
        "busy": active and f"Run {active.pk} is {active.get_status_display().lower()}; a task runs one run at a time",
        # The page asks for news often while a run or a resend is under way (static/courier/live_log.js).
        "follow": bool(active) or state.resending,
        "running": running,
        "retry_pending": RunStatus.RETRY_SCHEDULED in states,
        "can_cancel_retry": user.has_perm("tasks.run_task") and RunStatus.RETRY_SCHEDULED in states and not running,
        # A run waiting for other tasks is the task's active run; a person may stop the wait.
        "waiting": state.active if state.active is not None and state.active.status == RunStatus.WAITING else None,
    }


def _history_tables(request: HttpRequest, task: Task, runs: list[Run], state: TaskState) -> tuple[RunTable, FileTable]:
    # Both ordered by id only and lazily paginated: no COUNT(*) over the history. The first pages of runs are
    # among `runs` (its newest CHART_RUNS, read whole): no second query for them.
    zone = task.project.timezone
    first_pages = (HISTORY_PAGE_SIZE + 1) * _page(request, "runs-page") <= CHART_RUNS
    run_rows = sorted(runs, key=lambda run: -run.pk) if first_pages else task.runs.select_related("started_by").order_by("-id")
    run_table = RunTable(run_rows, zone=zone, prefix="runs-")
    resends: dict[int, list] = {}
    for row in state.resends:
        resends.setdefault(row.file_id, []).append(row)
    files = RunFile.objects.filter(run__task=task).order_by("-id")
    file_table = FileTable(files, masker=shown_masker(task), zone=zone, resends=resends, prefix="files-")
    for table in (run_table, file_table):
        RequestConfig(request, paginate={"per_page": HISTORY_PAGE_SIZE, "paginator_class": LazyPaginator}).configure(table)
    return run_table, file_table


def _page(request: HttpRequest, name: str) -> int:
    number = request.GET.get(name, "1")
    return int(number) if number.isdigit() and int(number) > 0 else 1


def _logged_run(request: HttpRequest, task: Task) -> Run | None:
    """The run whose log Task Details shows when asked (`?run=<id>`, linked from the run's admin page)."""
    wanted = request.GET.get("run")
    if wanted is None:
        return None
    if not wanted.isdigit():
        raise Http404("“run” must be the number of one of this task's runs.")
    return get_object_or_404(task.runs.only("id", "status"), pk=int(wanted))


def _live_parts(request: HttpRequest, task: Task, runs: list[Run], state: TaskState) -> dict:
    """What Task Details shows of the runs (`runs` from runs.live.state_runs, `state` from them); the page and its live
    updates render it alike."""
    newest = sorted(runs, key=lambda run: -run.pk)[:CHART_RUNS]
    durations = [{"id": run.pk, "status": run.status, "started_at": run.started_at, "finished_at": run.finished_at}
                 for run in newest if run.started_at and run.finished_at]
    run_table, file_table = _history_tables(request, task, runs, state)
    return {"task": task, "controls": _controls(request, state), "current_run": state.current, "live_version": state.version,
            "run_table": run_table, "file_table": file_table, "chart": charts.duration_chart(durations, task.project.timezone)}


def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require(request, "tasks.view_task")
    task = get_object_or_404(detail_queryset(), pk=pk)
    runs = state_runs(task, CHART_RUNS, whole=True)
    return render_page(
        request, "courier/task_detail.html", title=task.name,
        crumbs=[("All tasks", reverse("courier:task_list")), (task.project.name, reverse("courier:project_detail", args=[task.project_id])),
                (task.name, None)],
        summary=summary(task), preview=preview(task), history=action_history(task), pinned_run=_logged_run(request, task),
        held_runs=held.held_runs(task).prefetch_related("files") if task.has_held_runs else [],
        **_live_parts(request, task, runs, task_state(task, runs)),
    )


def task_live(request: HttpRequest, pk: int) -> HttpResponse:
    """Task Details' live state as JSON (static/courier/live_log.js): the run it follows, the controls, the
    run and file history as HTML. The ETag is the state's version: unchanged, the answer is an empty 304."""
    require(request, "tasks.view_task")
    followed = get_object_or_404(Task.objects.only("id"), pk=pk)
    known = request.headers.get("If-None-Match")
    # Polled every few seconds: the ETag's state is read lightly, whole rows only when the page is sent.
    runs = state_runs(followed, CHART_RUNS, whole=not known)
    state = task_state(followed, runs)
    etag = f'"{state.version}"'
    if known == etag:
        return HttpResponseNotModified(headers={"ETag": etag})
    if known:
        runs = state_runs(followed, CHART_RUNS, whole=True)
        state = task_state(followed, runs, state.resends)
    task = get_object_or_404(detail_queryset(), pk=pk)
    parts = _live_parts(request, task, runs, state)
    run = state.current
    response = JsonResponse({
        "resending": state.resending,
        "current": run and {"id": run.pk, "status": run.status, "status_label": run.get_status_display(),
                            "finished": run.status in Run.AT_REST, "log_url": reverse("courier:run_log", args=[run.pk])},
        **{key: render_to_string(f"courier/task_{key}.html", parts, request) for key in ("controls", "runs", "files")},
    })
    response["ETag"] = etag
    return response


# --------------------------------------------------------------------------
# Controls (POST only)
# --------------------------------------------------------------------------


def _run(request: HttpRequest, task: Task) -> str | None:
    require(request, "tasks.run_task")
    run = services.run_now(task, user=request.user)
    if run.status != RunStatus.SKIPPED:
        return f"Started run {run.pk} by hand."
    # The run engine keeps one run of a task at a time and recorded this start as skipped, with the reason.
    said = f"Not started: {run.error} A task runs one run at a time; this start is recorded as skipped run {run.pk}."
    record(request, task, said)
    messages.warning(request, said)
    return None


def _reschedule(request: HttpRequest, task: Task) -> str:
    require(request, "tasks.change_task")
    cancelled = services.reschedule_task(task, user=request.user)
    retries = f"cancelled {len(cancelled)} pending retr{'y' if len(cancelled) == 1 else 'ies'} of this task"
    return f"Rebuilt the schedules of project {task.project.name} from its triggers; {retries}."


def _cancel_retry(request: HttpRequest, task: Task) -> str:
    require(request, "tasks.run_task")
    run = services.cancel_retry(task, user=request.user)
    return f"Cancelled the retry (run {run.pk})."


def _held_run(request: HttpRequest, task: Task) -> Run:
    require(request, "tasks.run_task")
    wanted = request.POST.get("run", "")
    run = task.runs.filter(pk=int(wanted)).first() if wanted.isdigit() else None
    if run is None:
        raise services.ServiceError(f"“{wanted}” is not a run of {task}.")
    return run


def _release(request: HttpRequest, task: Task) -> str:
    run = services.release_held(_held_run(request, task), user=request.user)
    return f"Released the held files of run {run.pk}: they are queued for delivery."


def _discard(request: HttpRequest, task: Task) -> str:
    run = services.discard_held(_held_run(request, task), user=request.user)
    return f"Discarded the held files of run {run.pk}: nothing was delivered."


def _stop_waiting(request: HttpRequest, task: Task) -> str:
    require(request, "tasks.run_task")
    run = services.cancel_waiting(task, user=request.user)
    return f"Cancelled run {run.pk}, which waited for other tasks."


def _set_enabled(enabled: bool):
    def action(request: HttpRequest, task: Task) -> str:
        require(request, "tasks.change_task")
        Task.objects.filter(pk=task.pk).update(enabled=enabled)
        return "Enabled." if enabled else "Disabled."

    return action


ACTIONS = {
    "run": _run,
    "reschedule": _reschedule,
    "cancel-retry": _cancel_retry,
    "release": _release,
    "discard": _discard,
    "stop-waiting": _stop_waiting,
    "enable": _set_enabled(True),
    "disable": _set_enabled(False),
}


@require_POST
def task_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    task = get_object_or_404(Task.objects.select_related("project"), pk=pk)
    if action == "duplicate":
        return _duplicate(request, task)
    handler = ACTIONS.get(action)
    if handler is None:
        messages.error(request, f"Unknown action “{action}”.")
        return redirect("courier:task_detail", pk=task.pk)
    try:
        message = handler(request, task)
    except services.ServiceError as exc:
        messages.error(request, str(exc))
    else:
        if message:  # None: the action said and recorded its own outcome
            record(request, task, message)
            messages.success(request, message)
    return redirect("courier:task_detail", pk=task.pk)


def _duplicate(request: HttpRequest, task: Task) -> HttpResponse:
    require(request, "tasks.add_task")
    codeguard.refuse_copy(request.user, [task])
    copy = services.duplicate_task(task, request.user)
    messages.success(request, f"Made the disabled copy “{copy.name}”.")
    return redirect("courier:task_detail", pk=copy.pk)


# --------------------------------------------------------------------------
# New, edit, delete
# --------------------------------------------------------------------------


def _editor_page(request: HttpRequest, editor: TaskEditor, title: str, crumbs) -> HttpResponse:
    return render_page(request, "courier/task_form.html", title=title, crumbs=crumbs, editor=editor)


def task_new(request: HttpRequest, project_pk: int) -> HttpResponse:
    require(request, "tasks.add_task")
    project = get_object_or_404(Project, pk=project_pk)
    editor = TaskEditor(request.POST or None, instance=Task(project=project), user=request.user)
    if request.method == "POST" and editor.is_valid():
        task = editor.save()
        record_addition(request, task)
        messages.success(request, f"Added the task “{task.name}”.")
        return redirect("courier:task_detail", pk=task.pk)
    crumbs = [(project.name, reverse("courier:project_detail", args=[project.pk])), ("New task", None)]
    return _editor_page(request, editor, f"New task in {project.name}", crumbs)


def task_edit(request: HttpRequest, pk: int) -> HttpResponse:
    require(request, "tasks.change_task")
    task = get_object_or_404(detail_queryset(), pk=pk)
    editor = TaskEditor(request.POST or None, instance=task, user=request.user)
    if request.method == "POST" and editor.is_valid():
        changed = editor.changed()
        editor.save()
        record(request, task, f"Changed {', '.join(changed)}." if changed else "Saved without changes.")
        messages.success(request, f"Saved the task “{task.name}”.")
        return redirect("courier:task_detail", pk=task.pk)
    crumbs = [(task.project.name, reverse("courier:project_detail", args=[task.project_id])),
              (task.name, reverse("courier:task_detail", args=[task.pk])), ("Edit", None)]
    return _editor_page(request, editor, f"Edit task {task.name}", crumbs)


def task_delete(request: HttpRequest, pk: int) -> HttpResponse:
    require(request, "tasks.delete_task")
    task = get_object_or_404(Task.objects.select_related("project"), pk=pk)
    if request.method == "POST":
        project_pk, name = task.project_id, task.name
        record_deletion(request, task)
        task.delete()
        messages.success(request, f"Deleted the task “{name}” and its history.")
        return redirect("courier:project_detail", pk=project_pk)
    return render_page(
        request, "courier/confirm_delete.html", title=f"Delete task {task.name}?",
        crumbs=[(task.project.name, reverse("courier:project_detail", args=[task.project_id])),
                (task.name, reverse("courier:task_detail", args=[task.pk])), ("Delete", None)],
        object=task, what="task", consequences=["its parameters, code, destinations and emails",
                                                "its whole run history, log lines and the records of its files"],
        cancel_url=reverse("courier:task_detail", args=[task.pk]),
    )
