"""Project pages: All Projects, My Projects, Project details with its controls, New/Edit/Delete Project."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_tables2 import RequestConfig

from etlsite.filters import ProjectFilter
from etlsite.pages import action_history, record, record_addition, record_deletion, render_page, require, skipped_note
from etlsite.tables import ProjectTable, TaskTable
from projects import scheduling
from projects.describe import schedule_in_words, triggers_in_words
from projects.editing import ProjectEditor
from projects.models import Project
from projects.upcoming import next_run_lookup
from runs import services
from runs.models import RunStatus, SiteState
from runs.queries import task_rows
from tasks import codeguard
from tasks.clouds import name_cloud

LIST_PAGE_SIZE = 25
TASKS_PAGE_SIZE = 50


def _projects():
    return Project.objects.select_related("owner").annotate(
        task_count=Count("tasks"), enabled_count=Count("tasks", filter=Q(tasks__enabled=True)),
    )


def project_list(request: HttpRequest) -> HttpResponse:
    return _project_list(request, mine=False)


def my_projects(request: HttpRequest) -> HttpResponse:
    return _project_list(request, mine=True)


def _project_list(request: HttpRequest, *, mine: bool) -> HttpResponse:
    require(request, "projects.view_project")
    base = _projects().filter(owner=request.user) if mine else _projects()
    filterset = ProjectFilter(request.GET, queryset=base, request=request)
    table = ProjectTable(filterset.qs, describe=schedule_in_words)
    RequestConfig(request, paginate={"per_page": LIST_PAGE_SIZE}).configure(table)
    clouds = [] if mine else [
        name_cloud("Owners", ProjectFilter, request.GET, Project.objects.all(), param="owner", key="owner_id",
                   label="owner__username", request=request),
    ]
    title = "My projects" if mine else "All projects"
    return render_page(request, "courier/project_list.html", title=title, crumbs=[(title, None)],
                       table=table, filter=filterset, clouds=clouds, mine=mine,
                       can_add=request.user.has_perm("projects.add_project"))


def project_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require(request, "projects.view_project")
    project = get_object_or_404(Project.objects.select_related("owner").prefetch_related("parameters"), pk=pk)
    paused = SiteState.get().paused
    tasks = TaskTable(task_rows(project.tasks.all()), next_run=next_run_lookup(), paused=paused, exclude=("project", "owner"),
                      empty_text="This project has no tasks yet.")
    RequestConfig(request, paginate={"per_page": TASKS_PAGE_SIZE}).configure(tasks)
    user = request.user
    now = timezone.now()
    fires = scheduling.preview(project, now)
    return render_page(
        request, "courier/project_detail.html", title=project.name,
        crumbs=[("All projects", reverse("courier:project_list")), (project.name, None)],
        project=project, triggers=triggers_in_words(project), fire_times=fires, paused=paused,
        warnings=scheduling.schedule_warnings(project, now, fires), task_table=tasks, history=action_history(project),
        can_change=user.has_perm("projects.change_project"), can_delete=user.has_perm("projects.delete_project"),
        can_add=user.has_perm("projects.add_project"), can_add_task=user.has_perm("tasks.add_task"),
        can_change_tasks=user.has_perm("tasks.change_task"), can_run=user.has_perm("tasks.run_task"),
    )


# --------------------------------------------------------------------------
# Controls (POST only)
# --------------------------------------------------------------------------


def _set_all(enabled: bool):
    def action(request: HttpRequest, project: Project) -> str:
        require(request, "tasks.change_task")
        count = services.set_all_enabled(project, enabled)
        return f"{'Enabled' if enabled else 'Disabled'} all tasks ({count} changed)."

    return action


def _run_all(request: HttpRequest, project: Project) -> str:
    require(request, "tasks.run_task")
    runs = services.run_project(project, user=request.user)
    how = "one after another" if project.sequence else "all at once"
    queued = sum(run.status != RunStatus.SKIPPED for run in runs)
    return f"Started the enabled tasks by hand, {how} ({queued} run(s) queued).{skipped_note(runs)}"


def _reschedule(request: HttpRequest, project: Project) -> str:
    require(request, "projects.change_project")
    cancelled = services.reschedule_project(project, user=request.user)
    return f"Rebuilt the project's schedules from its triggers; cancelled {len(cancelled)} pending retr{'y' if len(cancelled) == 1 else 'ies'}."


PROJECT_ACTIONS = {
    "enable-all": _set_all(True),
    "disable-all": _set_all(False),
    "run-all": _run_all,
    "reschedule": _reschedule,
}


@require_POST
def project_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    project = get_object_or_404(Project, pk=pk)
    if action == "duplicate":
        return _duplicate(request, project)
    handler = PROJECT_ACTIONS.get(action)
    if handler is None:
        messages.error(request, f"Unknown action “{action}”.")
        return redirect("courier:project_detail", pk=project.pk)
    message = handler(request, project)
    record(request, project, message)
    messages.success(request, message)
    return redirect("courier:project_detail", pk=project.pk)


def _duplicate(request: HttpRequest, project: Project) -> HttpResponse:
    require(request, "projects.add_project", "tasks.add_task")
    codeguard.refuse_copy(request.user, project.tasks.all())
    copy = services.duplicate_project(project, request.user)
    messages.success(request, f"Made the copy “{copy.name}” with its tasks disabled.")
    return redirect("courier:project_detail", pk=copy.pk)


# --------------------------------------------------------------------------
# New, edit, delete
# --------------------------------------------------------------------------


def _editor_page(request: HttpRequest, editor: ProjectEditor, title: str, crumbs) -> HttpResponse:
    """The form; for a saved project also its next fire times and daylight-saving warnings, as saved."""
    project, fires, warnings = editor.form.instance, [], []
    if project.pk:
        now = timezone.now()
        saved = Project.objects.get(pk=project.pk)  # the form may hold unsaved, invalid values
        fires = scheduling.preview(saved, now)
        warnings = scheduling.schedule_warnings(saved, now, fires)
    return render_page(request, "courier/project_form.html", title=title, crumbs=crumbs, editor=editor,
                       fire_times=fires, warnings=warnings)


def project_new(request: HttpRequest) -> HttpResponse:
    require(request, "projects.add_project")
    editor = ProjectEditor(request.POST or None, instance=Project(owner=request.user))
    if request.method == "POST" and editor.is_valid():
        project = editor.save()
        record_addition(request, project)
        messages.success(request, f"Added the project “{project.name}”.")
        return redirect("courier:project_detail", pk=project.pk)
    return _editor_page(request, editor, "New project", [("All projects", reverse("courier:project_list")), ("New project", None)])


def project_edit(request: HttpRequest, pk: int) -> HttpResponse:
    require(request, "projects.change_project")
    project = get_object_or_404(Project, pk=pk)
    editor = ProjectEditor(request.POST or None, instance=project)
    if request.method == "POST" and editor.is_valid():
        changed = editor.changed()
        editor.save()
        record(request, project, f"Changed {', '.join(changed)}." if changed else "Saved without changes.")
        messages.success(request, f"Saved the project “{project.name}”.")
        return redirect("courier:project_detail", pk=project.pk)
    crumbs = [(project.name, reverse("courier:project_detail", args=[project.pk])), ("Edit", None)]
    return _editor_page(request, editor, f"Edit project {project.name}", crumbs)


def project_delete(request: HttpRequest, pk: int) -> HttpResponse:
    require(request, "projects.delete_project", "tasks.delete_task")
    project = get_object_or_404(Project, pk=pk)
    if request.method == "POST":
        name = project.name
        record_deletion(request, project)
        project.delete()
        messages.success(request, f"Deleted the project “{name}”, its tasks and their history.")
        return redirect("courier:project_list")
    return render_page(
        request, "courier/confirm_delete.html", title=f"Delete project {project.name}?",
        crumbs=[(project.name, reverse("courier:project_detail", args=[project.pk])), ("Delete", None)],
        object=project, what="project",
        consequences=[f"its {project.tasks.count()} task(s) with their code, destinations and emails",
                      "the whole run history of those tasks", "its schedules"],
        cancel_url=reverse("courier:project_detail", args=[project.pk]),
    )
