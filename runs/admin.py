"""Admin for runs: read-only history with the log, the files and the deliveries of each run."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils.html import format_html

from connections.admin import SuperuserOnly
from runs import state
from runs.models import Delivery, LateAlert, Run, RunFile, RunLog
from tasks.masking import shown_masker

# A run may log some 10,000 lines (a processing script's output); its admin page shows the last
# ones and links to Task Details, whose live log reads the whole log in batches.
LOG_LINES_SHOWN = 200


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def shown(self, run: Run, text: str) -> str:
        """`text` through the masker of the run's task: a file name may hold a sensitive value (SPEC §8.2).

        Django makes the inlines anew for each request, so a masker is kept for one page only.
        """
        maskers = self.__dict__.setdefault("_maskers", {})
        if run.task_id not in maskers:
            maskers[run.task_id] = shown_masker(run.task)
        return maskers[run.task_id].mask(text)


def masked_column(description: str, text_of):
    """A read-only column of an inline showing `text_of(record)` through the run's masker."""

    @admin.display(description=description)
    def column(inline: ReadOnlyInline, record) -> str:
        return inline.shown(record.run, text_of(record))

    return column


class LastLogLines(BaseInlineFormSet):
    """The run's last LOG_LINES_SHOWN log lines, oldest first: two small queries however long the log."""

    def get_queryset(self):
        if not hasattr(self, "_queryset"):
            lines = super().get_queryset().order_by("id")
            first = list(lines.order_by("-id").values_list("id", flat=True)[LOG_LINES_SHOWN - 1:LOG_LINES_SHOWN])
            self._queryset = lines.filter(id__gte=first[0]) if first else lines
        return self._queryset


class RunLogInline(ReadOnlyInline):
    model = RunLog
    formset = LastLogLines
    fields = ["at", "stage", "level", "message"]
    readonly_fields = fields
    verbose_name_plural = "last log lines"


class RunFileInline(ReadOnlyInline):
    model = RunFile
    fields = ["file_name", "size", "rows", "md5", "sha256", "stored_at"]
    readonly_fields = fields

    file_name = masked_column("name", lambda record: record.name)

    @admin.display(description="stored file")
    def stored_at(self, record: RunFile) -> str:
        # The download link of Task Details, not the storage URL: that would carry the name unmasked.
        # The name is in its own column; the storage path beside it only widened the table.
        if not record.stored:
            return "not kept"
        return format_html('<a href="{}">Download</a>', reverse("courier:runfile_download", args=[record.pk]))


class DeliveryInline(ReadOnlyInline):
    model = Delivery
    fields = ["kind", "file_name", "shown_target", "status", "verified", "at", "shown_error"]
    readonly_fields = fields

    file_name = masked_column("file", lambda delivery: delivery.file.name if delivery.file_id else "-")
    shown_target = masked_column("target", lambda delivery: delivery.target)
    shown_error = masked_column("error", lambda delivery: delivery.error)


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["id", "task_link", "status", "trigger", "attempt", "due_at", "started_at", "finished_at", "rows"]
    list_filter = ["status", "trigger"]
    search_fields = ["task__name", "task__project__name"]
    list_select_related = ["task__project"]
    # Counting a large history on every page load is what makes admin lists slow.
    show_full_result_count = False
    inlines = [RunFileInline, DeliveryInline, RunLogInline]

    class Media:
        css = {"all": ["courier/run_admin.css"]}
    fieldsets = [
        (None, {"fields": ["task_link", "status", "trigger", "attempt", "started_by", "retry_of", "sequence_from"]}),
        ("Times", {"fields": ["intended_at", "due_at", "queued_at", "started_at", "finished_at", "heartbeat_at", "worker"]}),
        ("Outcome", {"fields": ["rows", "error_stage", "error", "permanent", "waiting_for", "catch_up_planned", "guard_report",
                                "decided_by", "decided_at", "failure_alerted"]}),
        ("Log", {"fields": ["log_summary"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Run._meta.fields] + ["task_link", "log_summary"]

    @admin.display(description="task", ordering="task__name")
    def task_link(self, run: Run) -> str:
        # Straight to Task Details: a task's page is Courier's (tasks/admin.py).
        return format_html('<a href="{}">{}</a>', reverse("courier:task_detail", args=[run.task_id]), run.task)

    @admin.display(description="log")
    def log_summary(self, run: Run) -> str:
        total = run.log_lines.count()
        link = reverse("courier:task_detail", args=[run.task_id]) + f"?run={run.pk}#live-log-module"
        if total <= LOG_LINES_SHOWN:
            return format_html('All {} log lines are shown below (also on <a href="{}">Task Details</a>).', total, link)
        return format_html('The last {} of {} log lines are shown below. Read <a href="{}">the whole log on Task Details</a>.',
                           LOG_LINES_SHOWN, f"{total:,}", link)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_queryset(self, request, queryset):
        tasks = set(queryset.values_list("task_id", flat=True))
        super().delete_queryset(request, queryset)
        state.refresh_latest(tasks)  # a task whose newest run went shows the one before it

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        state.refresh_latest([obj.task_id])


@admin.register(LateAlert)
class LateAlertAdmin(admin.ModelAdmin):
    """Late alerts and their recovery, as recorded (runs/lateness.py); nothing to change by hand."""

    list_display = ["task", "day", "expected_at", "late_mail", "recovered_at"]
    list_filter = ["day"]
    search_fields = ["task__name", "task__project__name"]
    list_select_related = ["task__project"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in LateAlert._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# --------------------------------------------------------------------------
# Scheduler internals and the audit trail: superusers only (SPEC §7, §8)
# --------------------------------------------------------------------------


class SuperusersAnd:
    """Adds “superuser” to whatever an admin class allows (django-q2's own refusals, e.g. adding results, stay)."""

    def _superuser(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request):
        return self._superuser(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._superuser(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        return self._superuser(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return self._superuser(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._superuser(request) and super().has_delete_permission(request, obj)


def _superusers_only_for_django_q() -> None:
    """django-q2's own schedule, result and queue lists are scheduler tools: superusers only, as Courier's."""
    for model, model_admin in list(admin.site._registry.items()):
        if model._meta.app_label == "django_q" and not isinstance(model_admin, SuperusersAnd):
            base = type(model_admin)
            admin.site.unregister(model)
            admin.site.register(model, type(base.__name__, (SuperusersAnd, base), {"__module__": __name__}))


_superusers_only_for_django_q()


@admin.register(LogEntry)
class AuditTrailAdmin(SuperuserOnly, admin.ModelAdmin):
    """Every manual action and change, with who and when (connections/audit.py), read only."""

    list_display = ["action_time", "user", "content_type", "object_repr", "action_flag", "message"]
    list_filter = ["action_flag", "content_type"]
    search_fields = ["object_repr", "change_message", "user__username"]
    list_select_related = ["user", "content_type"]
    date_hierarchy = "action_time"
    show_full_result_count = False
    readonly_fields = ["action_time", "user", "content_type", "object_id", "object_repr", "action_flag", "change_message"]

    @admin.display(description="what was done")
    def message(self, obj: LogEntry) -> str:
        # The admin's own entries hold JSON; this reads them as the object's history page does.
        return obj.get_change_message()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
