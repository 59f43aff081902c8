"""Admin for projects, with their triggers and parameters."""

from __future__ import annotations

from django.contrib import admin

from projects.forms import ParameterForm, ParameterLinesForm, save_parameter_lines
from projects.models import Project, ProjectParameter


class ProjectParameterInline(admin.TabularInline):
    model = ProjectParameter
    form = ParameterForm
    extra = 0


class TaskInline(admin.TabularInline):
    from tasks.models import Task

    model = Task
    fields = ["name", "enabled", "rank", "source_kind", "output_type"]
    readonly_fields = ["source_kind", "output_type"]
    show_change_link = True
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ParameterLinesForm
    list_display = ["name", "owner", "sequence", "timezone", "cron", "interval_every", "interval_unit", "once_at"]
    list_filter = ["sequence", "owner"]
    search_fields = ["name", "description", "owner__username"]
    list_select_related = ["owner"]
    inlines = [ProjectParameterInline, TaskInline]
    fieldsets = [
        (None, {"fields": ["name", "description", "owner", "sequence", "timezone"]}),
        ("Parameters", {"fields": ["parameter_lines"]}),
        ("Triggers", {
            "description": "Any combination may be active at once; leave a trigger blank to switch it off.",
            "fields": ["cron", ("interval_every", "interval_unit"), "once_at", ("start_at", "end_at")],
        }),
    ]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        save_parameter_lines(form, form.instance.parameters)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("owner", request.user.pk)
        return initial
