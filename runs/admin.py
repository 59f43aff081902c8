"""Admin for runs: read-only history with the log, the files and the deliveries of each run."""

from __future__ import annotations

from django.contrib import admin

from runs.models import Delivery, Run, RunFile, RunLog


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class RunLogInline(ReadOnlyInline):
    model = RunLog
    fields = ["at", "stage", "level", "message"]
    readonly_fields = fields


class RunFileInline(ReadOnlyInline):
    model = RunFile
    fields = ["name", "size", "rows", "md5", "sha256", "stored"]
    readonly_fields = fields


class DeliveryInline(ReadOnlyInline):
    model = Delivery
    fields = ["kind", "file", "target", "status", "at", "error"]
    readonly_fields = fields


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "status", "trigger", "attempt", "due_at", "started_at", "finished_at", "rows"]
    list_filter = ["status", "trigger"]
    search_fields = ["task__name", "task__project__name"]
    list_select_related = ["task__project"]
    # Counting a large history on every page load is what makes admin lists slow.
    show_full_result_count = False
    inlines = [RunFileInline, DeliveryInline, RunLogInline]
    fieldsets = [
        (None, {"fields": ["task", "status", "trigger", "attempt", "started_by", "retry_of", "sequence_from"]}),
        ("Times", {"fields": ["intended_at", "due_at", "queued_at", "started_at", "finished_at", "heartbeat_at", "worker"]}),
        ("Outcome", {"fields": ["rows", "error_stage", "error", "permanent"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Run._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
