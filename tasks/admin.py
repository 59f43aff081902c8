"""Admin for tasks: one page whose sections follow the SPEC (general, source, processing, output, deliveries).

A user who may not write code sees the code fields locked, as on the task
pages (tasks/codeguard.py); a save that changes code anyway is refused and
undone inside the admin's own transaction.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.forms.models import BaseInlineFormSet

from connections.kinds import Reads
from projects.forms import ParameterForm, ParameterLinesForm, save_parameter_lines
from projects.parameters import ParameterError, parse_lines
from runs import services
from runs.models import RunStatus
from tasks import codeguard, placeholders, sqlbind
from tasks.models import CodeLocation, CodeLocationKind, CodeRole, Destination, Notification, Task, TaskParameter


class TaskParameterInline(admin.TabularInline):
    model = TaskParameter
    form = ParameterForm
    extra = 0
    verbose_name_plural = "parameters (override the project's)"


class CodeLocationForm(codeguard.CodeLockMixin, forms.ModelForm):
    may_write_code = True  # set per request by CodeLocationInline.get_formset

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A new row is judged by what it saves (TaskAdmin.save_related): its role is not known yet.
        if not self.may_write_code and self.instance.pk:
            code = self.instance
            self.lock_code(codeguard.location_locks(code, code.role, code.task.source_kind))


class TaskAdminForm(codeguard.CodeLockMixin, ParameterLinesForm):
    may_write_code = True  # set per request by TaskAdmin.get_form

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.may_write_code:
            self.lock_code(codeguard.task_locks(self.instance))


class CodeFormSet(BaseInlineFormSet):
    """The query's :name placeholders must each have a parameter among those saved with it (SPEC 6)."""

    parameter_keys = None  # set by TaskAdmin._create_formsets: a callable, None while the rows have errors

    def clean(self):
        super().clean()
        task, keys = self.instance, self.parameter_keys() if self.parameter_keys else None
        if task.source_reads != Reads.QUERY or keys is None:
            return
        for form in self.forms:
            code = getattr(form, "cleaned_data", {})
            if code.get("role") == CodeRole.SOURCE and code.get("location") == CodeLocationKind.INLINE and not code.get("DELETE"):
                if problem := sqlbind.problem(code.get("text") or "", placeholders.dialect_of(task.source_connection), keys):
                    form.add_error("text", problem)


def parameter_keys(task: Task, rows, pasted: str) -> list[str] | None:
    """Keys of the parameters a save leaves the task with: the project's, the rows' and the pasted lines'; None while the rows have errors."""
    if rows is not None and not rows.is_valid():
        return None
    if rows is None:
        own = [p.key for p in task.parameters.all()] if task.pk else []
    else:
        own = [f.cleaned_data.get("key") for f in rows.forms if f not in rows.deleted_forms]
    try:
        own += [p.key for p in parse_lines(pasted)]
    except ParameterError:
        pass  # the main form reports it
    return placeholders.project_keys(task.project if task.project_id else None) + [k for k in own if k]


class CodeLocationInline(admin.StackedInline):
    model = CodeLocation
    form = CodeLocationForm
    formset = CodeFormSet
    extra = 0
    max_num = 2
    fields = ["role", "location", "text", "connection", "path", "url", "cache", "cached_at"]
    readonly_fields = ["cached_at"]
    verbose_name_plural = "code: the query or command, and the processing script"

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form.may_write_code = codeguard.may_write_code(request.user)  # a class made for this request
        return formset


class DestinationInline(admin.TabularInline):
    model = Destination
    extra = 0
    fields = ["kind", "connection", "folder", "if_exists", "skip_empty", "done_file", "done_manifest", "position"]


class NotificationInline(admin.StackedInline):
    model = Notification
    extra = 0
    max_num = 2
    fields = ["event", "recipients", "subject", "message", ("attach", "embed", "skip_empty"), ("after_failures", "recovered")]


@admin.action(description="Run the selected tasks now", permissions=["run"])
def run_selected(modeladmin, request, queryset):
    for task in queryset.select_related("project"):
        run = services.run_now(task, user=request.user)
        modeladmin.log_change(request, task, f"Started run {run.pk} by hand ({run.status}).")
        if run.status == RunStatus.SKIPPED:
            modeladmin.message_user(request, f"Run {run.pk} of {task} skipped: {run.error}", messages.WARNING)
        else:
            modeladmin.message_user(request, f"Run {run.pk} of {task} is queued.", messages.SUCCESS)


@admin.action(description="Duplicate the selected tasks (as disabled copies)", permissions=["add"])
def duplicate_selected(modeladmin, request, queryset):
    tasks = list(queryset.select_related("project"))
    codeguard.refuse_copy(request.user, tasks)
    for task in tasks:
        copy = services.duplicate_task(task, request.user)
        modeladmin.message_user(request, f"Made the disabled copy “{copy}”.", messages.SUCCESS)


@admin.action(description="Cancel the pending retry of the selected tasks", permissions=["run"])
def cancel_retry_selected(modeladmin, request, queryset):
    for task in queryset.select_related("project"):
        try:
            run = services.cancel_retry(task, user=request.user)
        except services.ServiceError as exc:
            modeladmin.message_user(request, str(exc), messages.WARNING)
        else:
            modeladmin.log_change(request, task, f"Cancelled the retry (run {run.pk}).")
            modeladmin.message_user(request, f"Cancelled the retry of {task} (run {run.pk}).", messages.SUCCESS)


@admin.action(description="Reschedule: rebuild the project schedules, cancel pending retries", permissions=["change"])
def reschedule_selected(modeladmin, request, queryset):
    for task in queryset.select_related("project"):
        cancelled = services.reschedule_task(task, user=request.user)
        modeladmin.log_change(request, task, f"Rebuilt the schedules of {task.project.name}; cancelled {len(cancelled)} pending retry(ies).")
        modeladmin.message_user(request, f"Rebuilt the schedules of {task.project}; cancelled {len(cancelled)} pending retry(ies) of {task}.", messages.SUCCESS)


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    form = TaskAdminForm
    list_display = ["name", "project", "enabled", "rank", "source_kind", "output_type"]
    list_filter = ["enabled", "source_kind", "output_type", "project"]
    search_fields = ["name", "project__name"]
    list_select_related = ["project"]
    inlines = [TaskParameterInline, CodeLocationInline, DestinationInline, NotificationInline]
    actions = [run_selected, duplicate_selected, cancel_retry_selected, reschedule_selected]
    fieldsets = [
        (None, {"fields": ["project", "name", "enabled", "rank", "timeout_minutes"]}),
        ("Parameters", {"fields": ["parameter_lines"]}),
        ("Retries", {"fields": ["retry_max", "retry_delay_minutes", "retry_backoff", "retry_on_every_failure"]}),
        ("Data source", {"fields": [
            "source_kind", "source_connection", "source_headers",
            "source_path", ("source_missing_ok", "source_delimiter"), "source_stdout_as_file",
        ]}),
        ("Row guard", {"fields": [
            "source_fail_on_empty", ("guard_min_rows", "guard_max_rows"), ("guard_median_runs", "guard_median_percent"), "guard_action",
        ]}),
        ("Processing script", {"fields": ["processing_entry", "processing_requirements", "script_network"], "classes": ["collapse"]}),
        ("Output file", {"fields": [
            "output_type", "output_name", ("output_delimiter", "output_headers", "output_quoting", "output_escape_char"),
            ("output_encoding", "output_line_ending", "output_line_suffix"),
        ]}),
        ("Zip and encryption", {"fields": [("zip_enabled", "zip_name"), ("gpg_key", "gpg_armor")]}),
    ]

    def _create_formsets(self, request, obj, change):
        # Django's one place where all inline formsets of a save are at hand: the query's
        # formset gets the parameters saved with it (rows and pasted lines) to check against.
        formsets, inlines = super()._create_formsets(request, obj, change)
        rows = next((f for f in formsets if f.model is TaskParameter), None)  # absent for a user who may not edit them
        for formset in formsets:
            if isinstance(formset, CodeFormSet):
                formset.parameter_keys = lambda: parameter_keys(obj, rows, request.POST.get("parameter_lines", ""))
        return formsets, inlines

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Django honours "save as new" even where the admin offers no such button: it is a copy.
        if request.method == "POST" and "_saveasnew" in request.POST and object_id:
            source = self.get_object(request, unquote(object_id))
            codeguard.refuse_copy(request.user, [source] if source else [])
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.may_write_code = codeguard.may_write_code(request.user)  # a class made for this request
        return form

    def save_model(self, request, obj, form, change):
        form.code_before = codeguard.saved_code(obj.pk)  # the database still holds the old task
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        save_parameter_lines(form, form.instance.parameters)
        codeguard.refuse_saved_change(request.user, form.code_before, form.instance.pk)

    def has_run_permission(self, request):
        return request.user.has_perm("tasks.run_task")
