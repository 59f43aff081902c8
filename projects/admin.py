"""Admin for projects, with their triggers and parameters."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from projects import scheduling
from projects.forms import ParameterForm, ParameterLinesForm, save_parameter_lines
from projects.models import Project, ProjectParameter
from runs import services
from tasks.models import Task


class ProjectParameterInline(admin.TabularInline):
    model = ProjectParameter
    form = ParameterForm
    extra = 0


class TaskInline(admin.TabularInline):
    model = Task
    fields = ["name", "enabled", "rank", "source_kind", "output_type"]
    readonly_fields = ["source_kind", "output_type"]
    show_change_link = True
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.action(description="Run all: start the enabled tasks now (honouring the sequence)", permissions=["run"])
def run_all(modeladmin, request, queryset):
    for project in queryset:
        runs = services.run_project(project, user=request.user)
        modeladmin.log_change(request, project, f"Started the enabled tasks by hand ({len(runs)} run(s)).")
        modeladmin.message_user(request, f"{project}: {len(runs)} run(s) started.", messages.SUCCESS)


def _switch_all_tasks(enabled: bool):
    """The admin action that enables (or disables) every task of the selected projects."""
    verb = "Enabled" if enabled else "Disabled"

    @admin.action(description=f"{'Enable' if enabled else 'Disable'} all tasks of the selected projects", permissions=["change_tasks"])
    def action(modeladmin, request, queryset):
        switch = services.enable_all if enabled else services.disable_all
        changed = 0
        for project in queryset:
            count = switch(project)
            modeladmin.log_change(request, project, f"{verb} all tasks ({count} changed).")
            changed += count
        modeladmin.message_user(request, f"{verb} {changed} task(s).", messages.SUCCESS)

    action.__name__ = "enable_all" if enabled else "disable_all"
    return action


enable_all = _switch_all_tasks(True)
disable_all = _switch_all_tasks(False)


@admin.action(description="Reschedule: rebuild the schedules, cancel pending retries", permissions=["change"])
def reschedule(modeladmin, request, queryset):
    for project in queryset:
        cancelled = services.reschedule_project(project, user=request.user)
        modeladmin.log_change(request, project, f"Rebuilt the schedules; cancelled {len(cancelled)} pending retry(ies).")
        modeladmin.message_user(request, f"{project}: schedules rebuilt, {len(cancelled)} pending retry(ies) cancelled.", messages.SUCCESS)


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ParameterLinesForm
    list_display = ["name", "owner", "sequence", "timezone", "cron", "interval_every", "interval_unit", "once_at"]
    list_filter = ["sequence", "owner"]
    search_fields = ["name", "description", "owner__username"]
    list_select_related = ["owner"]
    inlines = [ProjectParameterInline, TaskInline]
    fieldsets = [
        (None, {"fields": ["name", "description", "owner", "sequence", "timezone", "owner_digest"]}),
        ("Parameters", {"fields": ["parameter_lines"]}),
        ("Triggers", {
            "description": "Any combination may be active at once; leave a trigger blank to switch it off.",
            "fields": ["cron", ("interval_every", "interval_unit"), "once_at", ("start_at", "end_at"), "next_fire_times"],
        }),
    ]
    # Saving a project re-syncs its django-q2 schedules through the signals in projects/scheduling.py.
    readonly_fields = ["next_fire_times"]
    actions = [run_all, enable_all, disable_all, reschedule]

    @admin.display(description="next fire times")
    def next_fire_times(self, obj):
        if obj is None or obj.pk is None:
            return "Shown once the project is saved."
        times = scheduling.preview(obj)
        warnings = scheduling.schedule_warnings(obj, times=times)
        lines = format_html_join("", "<li>{}</li>", ((scheduling.describe_fire(fire),) for fire in times)) or "No fire time ahead."
        notes = format_html_join("", '<li class="warning">⚠ {}</li>', ((warning,) for warning in warnings))
        return format_html("<ul>{}</ul><ul>{}</ul>", lines, notes) if warnings else format_html("<ul>{}</ul>", lines)

    def has_run_permission(self, request):
        return request.user.has_perm("tasks.run_task")

    def has_change_tasks_permission(self, request):
        # Enabling or disabling tasks changes tasks: the same right as on the project page.
        return request.user.has_perm("tasks.change_task")

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        save_parameter_lines(form, form.instance.parameters)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("owner", request.user.pk)
        return initial
