"""The tables of the pages (django-tables2): tasks, projects, run history, file history.

History tables are ordered by id only and paginated with LazyPaginator: a
page fetches per_page + 1 rows and never counts the whole history.
Part of the site's page layer, shared by the apps' pages (etlsite/pages.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from connections.masking import Masker
from etlsite.times import paused_note, when
from projects.models import Project
from runs.models import Delivery, DeliveryStatus, Run, RunFile
from tasks.models import Task

TABLE_ATTRS = {"class": "courier-table"}


def status_badge(status: str | None, label: str | None = None) -> str:
    if not status:
        return format_html('<span class="status status-none">never run</span>')
    return format_html('<span class="status status-{}">{}</span>', status, label or status.replace("_", " "))


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


class TaskTable(tables.Table):
    name = tables.Column("Task", linkify=lambda record: reverse("courier:task_detail", args=[record.pk]))
    project = tables.Column("Project", order_by=("project__name",),
                            linkify=lambda record: reverse("courier:project_detail", args=[record.project_id]))
    owner = tables.Column("Owner", accessor="project__owner__username", order_by=("project__owner__username",))
    last_status = tables.Column("Last run", order_by=("last_status",))
    last_run_at = tables.Column("Last run at")
    next_run = tables.Column("Next run", empty_values=(), orderable=False)
    enabled = tables.BooleanColumn("Enabled")

    class Meta:
        model = Task
        fields = ("name", "project", "owner", "last_status", "last_run_at", "next_run", "enabled")
        attrs = TABLE_ATTRS
        empty_text = "No task matches these filters."

    def __init__(self, *args, next_run: Callable[[Project], datetime | None] | None = None, paused: bool = False, **kwargs):
        """`next_run` gives a project's next fire time; `paused` says the scheduler is paused beside each."""
        super().__init__(*args, **kwargs)
        self._next_run = next_run
        self._paused = paused

    def render_last_status(self, value, record):
        return status_badge(value)

    def render_last_run_at(self, value, record):
        return when(value, record.project.timezone)

    def render_next_run(self, record):
        if not record.enabled:
            return "— (disabled)"
        at = self._next_run(record.project) if self._next_run else None
        if at is None:
            return "—"
        return format_html("{} {}", when(at, record.project.timezone, hint=True), paused_note(self._paused))


class ProjectTable(tables.Table):
    name = tables.Column("Project", linkify=lambda record: reverse("courier:project_detail", args=[record.pk]))
    owner = tables.Column("Owner", accessor="owner__username", order_by=("owner__username",))
    schedule = tables.Column("Schedule", empty_values=(), orderable=False)
    task_count = tables.Column("Tasks")
    enabled_count = tables.Column("Enabled")
    sequence = tables.BooleanColumn("In sequence")

    class Meta:
        model = Project
        fields = ("name", "owner", "schedule", "task_count", "enabled_count", "sequence")
        attrs = TABLE_ATTRS
        empty_text = "No project matches these filters."

    def __init__(self, *args, describe: Callable[[Project], str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._describe = describe

    def render_schedule(self, record):
        return self._describe(record) if self._describe else ""


class RunTable(tables.Table):
    id = tables.Column("Run", linkify=lambda record: reverse("admin:runs_run_change", args=[record.pk]))
    status = tables.Column("Status")
    trigger = tables.Column("Trigger")
    attempt = tables.Column("Attempt")
    due_at = tables.Column("Due")
    started_at = tables.Column("Started")
    finished_at = tables.Column("Ended")
    duration = tables.Column("Duration", empty_values=())
    rows = tables.Column("Rows")
    guard_report = tables.Column("Row guard", attrs={"td": {"class": "guard-cell"}})
    error = tables.Column("Error", attrs={"td": {"class": "error-cell"}})

    class Meta:
        model = Run
        fields = ("id", "status", "trigger", "attempt", "due_at", "started_at", "finished_at", "duration", "rows", "guard_report", "error")
        attrs = TABLE_ATTRS
        orderable = False  # newest first, always: the index order, cheap at any size
        empty_text = "This task has not run yet."

    def __init__(self, data, zone: str | None = None, **kwargs) -> None:
        """`zone`: the task's project's, which its times are shown in."""
        super().__init__(data, **kwargs)
        self.zone = zone

    def render_status(self, value, record):
        return status_badge(record.status, record.get_status_display())

    def render_trigger(self, value, record):
        who = f" by {record.started_by.username}" if record.started_by_id and record.started_by else ""
        return f"{record.get_trigger_display()}{who}"

    def render_due_at(self, value):
        return when(value, self.zone)

    def render_started_at(self, value):
        return when(value, self.zone)

    def render_finished_at(self, value):
        return when(value, self.zone)

    def render_duration(self, record):
        span = record.duration
        return duration_text(span.total_seconds()) if span else "—"

    def render_error(self, value, record):
        stage = f"[{record.error_stage}] " if record.error_stage else ""
        return f"{stage}{value[:200]}"


class FileTable(tables.Table):
    """A task's stored files; names are shown through the task's masker (a name may hold a sensitive value)."""

    name = tables.Column("File")
    run = tables.Column("Run", accessor="run_id", linkify=lambda record: reverse("admin:runs_run_change", args=[record.run_id]))
    created_at = tables.Column("Made")
    size = tables.Column("Bytes")
    rows = tables.Column("Rows")
    md5 = tables.Column("MD5", attrs={"td": {"class": "hash"}})
    resends = tables.Column("Resent", accessor="pk", orderable=False)
    actions = tables.TemplateColumn(template_name="courier/file_actions.html", verbose_name="", orderable=False)

    class Meta:
        model = RunFile
        fields = ("name", "run", "created_at", "size", "rows", "md5", "resends", "actions")
        attrs = TABLE_ATTRS
        orderable = False
        empty_text = "No files yet."

    def __init__(self, data, masker: Masker, zone: str | None = None, resends: dict[int, list[Delivery]] | None = None,
                 **kwargs) -> None:
        """`resends`: the resends by hand to show, by file id, newest first (runs/live.py `recent_resends`)."""
        super().__init__(data, **kwargs)
        self.masker = masker
        self.zone = zone
        self.resends = resends or {}

    def render_name(self, value):
        return self.masker.mask(value)

    def render_created_at(self, value):
        return when(value, self.zone)

    def render_resends(self, value):
        """Each resend by hand of the file (`value`: its id): its state, where, who, when."""
        value = self.resends.get(value)
        if not value:
            return "—"
        return format_html_join(
            mark_safe("<br>"), "{} {} <span class=\"quiet\">({}, {})</span>",
            ((self._resend_badge(d), self.masker.mask(d.target), d.resent_by.username, when(d.at or d.queued_at, self.zone))
             for d in value),
        )

    def _resend_badge(self, delivery: Delivery) -> str:
        # "Pending" on a resend means a worker has it: say what is happening. The error shows on hover.
        label = "sending" if delivery.status == DeliveryStatus.PENDING else delivery.get_status_display().lower()
        badge = status_badge(delivery.status, label)
        return format_html('<span title="{}">{}</span>', self.masker.mask(delivery.error), badge) if delivery.error else badge
