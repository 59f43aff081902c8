"""Runs of tasks, their log lines, the files they made and the deliveries of those files."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from connections.models import GpgKey
from tasks.models import Destination, Task


class RunStatus(models.TextChoices):
    RETRY_SCHEDULED = "retry_scheduled", "Retry scheduled"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    SKIPPED = "skipped", "Skipped"
    # A fire time that passed while the scheduler was down: recorded, never attempted (SPEC §4.1).
    MISSED = "missed", "Missed"
    # A scheduled run held until the tasks it waits for have succeeded.
    WAITING = "waiting", "Waiting"
    # The row guard stopped the delivery: the files wait in storage until a person releases or discards them.
    HELD = "held", "Held"


class Trigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Manual"
    RETRY = "retry", "Retry"
    SEQUENCE = "sequence", "Sequence"
    COMMAND = "command", "Command line"
    CATCH_UP = "catch_up", "Catch-up"


# Triggers that stand for one fire time of a project: each (task, intended time, trigger) at most
# once, held by the database (Run's constraint), whatever restarts or second deliveries happen.
FIRE_TIME_TRIGGERS = (Trigger.SCHEDULE, Trigger.CATCH_UP)


class Stage(models.TextChoices):
    CLAIM = "claim", "Claim"
    PARAMETERS = "parameters", "Parameters"
    SOURCE = "source", "Source"
    PROCESSING = "processing", "Processing"
    GUARD = "guard", "Row guard"
    OUTPUT = "output", "Output"
    DELIVERY = "delivery", "Delivery"
    NOTIFY = "notify", "Notify"
    FINISH = "finish", "Finish"


class Run(models.Model):
    # The sets of states that Courier's rules are written in, named once here (SPEC §4).
    # A worker may only claim a waiting run; anything else means another delivery of the
    # same queue message got there first, or someone cancelled it. Only waiting runs can be cancelled.
    CLAIMABLE = (RunStatus.QUEUED, RunStatus.RETRY_SCHEDULED)
    # At most one active run per task: a start that finds one records a skipped run.
    # A run waiting for other tasks counts: it will start, and the next firing must not start beside it.
    ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING)
    # Not over yet: a retry still to come counts, so a failure with one of these after it is not final,
    # and a sequence with one of these is still going. A held run waits for a person's decision.
    UNFINISHED = (RunStatus.RETRY_SCHEDULED, RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.WAITING, RunStatus.HELD)
    # Over without success and with no retry to come: a task waiting for this one will not run.
    ENDED_UNSUCCESSFULLY = (RunStatus.FAILED, RunStatus.CANCELLED)
    FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.SKIPPED, RunStatus.MISSED)
    # No worker does anything more with these without a person: over, or held for a decision
    # (what `run_task --wait` and the live log wait for).
    AT_REST = (*FINISHED, RunStatus.HELD)
    # Outcomes that count for a task's quiet alerts: a success ends a streak of failures.
    OUTCOMES = (RunStatus.SUCCEEDED, RunStatus.FAILED)
    FIRE_TIME_TRIGGERS = FIRE_TIME_TRIGGERS
    # Runs of these triggers wait for the tasks their task waits for; a person's "run now" does not.
    DEPENDENT_TRIGGERS = (Trigger.SCHEDULE, Trigger.CATCH_UP)

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="runs", verbose_name="task")
    status = models.CharField("status", max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True, help_text="Where the run is in its life.")
    trigger = models.CharField("trigger", max_length=10, choices=Trigger.choices, help_text="What started the run.")
    attempt = models.PositiveIntegerField("attempt", default=1, help_text="1 for the first try, 2 for the first retry, …")
    intended_at = models.DateTimeField(
        "intended time", help_text="The scheduled fire time (or the manual start) that dates in names are computed from; retries keep it.",
    )
    due_at = models.DateTimeField("due", help_text="When this attempt should start.")
    queued_at = models.DateTimeField("queued", auto_now_add=True)
    started_at = models.DateTimeField("started", null=True, blank=True)
    finished_at = models.DateTimeField("finished", null=True, blank=True)
    heartbeat_at = models.DateTimeField("last sign of life", null=True, blank=True, help_text="Updated while the run works; a stale value means its worker is gone.")
    worker = models.CharField("worker", max_length=200, blank=True, help_text="Host and process that claimed the run.")
    requeued_at = models.DateTimeField(
        "queued again", null=True, blank=True,
        help_text="When the reaper queued the run again because no worker had taken it (its queue message lost); once only.",
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name="started by", help_text="The user who started or retried the run by hand.",
    )
    retry_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="retries",
        verbose_name="retry of", help_text="The failed run this attempt retries.",
    )
    sequence_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="sequence_next",
        verbose_name="after run", help_text="In a sequence project: the run whose success started this one.",
    )
    schedule_id = models.BigIntegerField("schedule entry", null=True, blank=True, help_text="The django-q2 schedule that will start this retry.")
    rows = models.BigIntegerField("rows", null=True, blank=True, help_text="Data rows read from the source.")
    error_stage = models.CharField("failed stage", max_length=12, choices=Stage.choices, blank=True, help_text="The stage that failed.")
    error = models.TextField("error", blank=True, help_text="What went wrong, without secrets.")
    permanent = models.BooleanField("permanent failure", default=False, help_text="Trying again cannot help (syntax error, wrong password, …).")
    waiting_for = models.TextField("waiting for", blank=True, help_text="While waiting: the tasks this run waits for, and what each is doing.")
    catch_up_planned = models.BooleanField(
        "to be run late", default=False,
        help_text="A missed fire time that the project's missed-run policy runs late (as a catch-up run).",
    )
    guard_report = models.TextField("row guard", blank=True, help_text="The row guard's verdict and the numbers it compared.")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name="released or discarded by", help_text="Who released or discarded the run's held files.",
    )
    decided_at = models.DateTimeField("released or discarded", null=True, blank=True, help_text="When the held files were released or discarded.")
    failure_alerted = models.BooleanField("failure mail sent", default=False, help_text="A failure mail went out for this run (a later success may send “recovered”).")

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["task", "-id"], name="run_task_latest"),
            models.Index(fields=["task", "intended_at"], name="run_task_intended"),
        ]
        constraints = [
            # A fire time runs at most once (issue 18): the check in state.start_run is a read before
            # a write, which SQLite does not lock; this index refuses the second row on every database.
            models.UniqueConstraint(
                fields=["task", "intended_at", "trigger"], condition=models.Q(trigger__in=FIRE_TIME_TRIGGERS),
                name="run_once_per_fire_time",
            ),
        ]
        verbose_name = "run"

    def __str__(self) -> str:
        return f"Run {self.pk} of {self.task}"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class LatestRun(models.Model):
    """The latest run of a task (the one with the highest id) and its status, one row per task that has run.

    The task lists, the Dashboard and the status filter read this row instead
    of searching each task's runs for the newest one. runs/state.py, where
    every run is made and every status change happens, keeps it in step; a
    row of its own, not fields on Task, so that saving a task (its form, the
    admin, an import, a copy) can never write back a stale status.
    """

    task = models.OneToOneField(Task, on_delete=models.CASCADE, primary_key=True, related_name="latest_run", verbose_name="task")
    run = models.OneToOneField(Run, on_delete=models.CASCADE, related_name="+", verbose_name="run", help_text="The task's newest run.")
    status = models.CharField("status", max_length=20, choices=RunStatus.choices, db_index=True, help_text="That run's status, kept in step with it.")
    at = models.DateTimeField("time", help_text="When that run started, or is due while it has not started.")

    class Meta:
        verbose_name = "latest run"

    def __str__(self) -> str:
        return f"Latest run of task {self.task_id}: {self.run_id} ({self.status})"


class LateAlert(models.Model):
    """A task that had not succeeded by its expected time on a day its project fires: one per task and day."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="late_alerts", verbose_name="task")
    day = models.DateField("day", help_text="The day, in the project's time zone, whose run was late.")
    expected_at = models.DateTimeField("expected by", help_text="When a run intended that day should have succeeded.")
    alerted_at = models.DateTimeField("alerted", auto_now_add=True, help_text="When Courier noticed and sent the late alert.")
    late_mail = models.TextField("late mail", blank=True, help_text="To whom the late alert went, or why it did not.")
    recovered_at = models.DateTimeField("recovered", null=True, blank=True, help_text="When a run intended that day succeeded after all.")
    recovered_by = models.ForeignKey(
        Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name="recovered by", help_text="The run whose success ended the lateness.",
    )
    recovered_mail = models.TextField("recovered mail", blank=True, help_text="To whom the recovered mail went, or why it did not.")

    class Meta:
        ordering = ["-expected_at"]
        constraints = [models.UniqueConstraint(fields=["task", "day"], name="late_alert_once_per_day")]
        verbose_name = "late alert"

    def __str__(self) -> str:
        return f"{self.task} late on {self.day:%Y-%m-%d}"


class LogLevel(models.TextChoices):
    DEBUG = "debug", "Debug"
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"


class RunLog(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="log_lines", verbose_name="run")
    at = models.DateTimeField("time", auto_now_add=True)
    stage = models.CharField("stage", max_length=12, choices=Stage.choices)
    level = models.CharField("level", max_length=8, choices=LogLevel.choices, default=LogLevel.INFO)
    message = models.TextField("message")

    class Meta:
        ordering = ["id"]
        verbose_name = "log line"

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} [{self.stage}] {self.message}"


def run_file_path(instance: RunFile, filename: str) -> str:
    return f"runs/{instance.run.task_id}/{instance.run_id}/{filename}"


class RunFile(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="files", verbose_name="run")
    name = models.CharField("name", max_length=500, help_text="The file name as delivered.")
    size = models.BigIntegerField("size (bytes)", help_text="Size of exactly the delivered bytes.")
    rows = models.BigIntegerField("rows", null=True, blank=True, help_text="Data rows (header excluded); blank when not known.")
    md5 = models.CharField("MD5", max_length=32, help_text="MD5 of the delivered bytes.")
    sha256 = models.CharField("SHA-256", max_length=64, help_text="SHA-256 of the delivered bytes.")
    stored = models.FileField("stored file", upload_to=run_file_path, max_length=1000, help_text="Where Courier keeps its copy.")
    created_at = models.DateTimeField("created", auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "run file"

    def __str__(self) -> str:
        # Not the name: it may hold a sensitive value, and pages show it masked (tasks/masking.py).
        return f"File {self.pk} of run {self.run_id}"

    @property
    def is_empty(self) -> bool:
        """Empty for query output means no data rows; for other files, zero bytes."""
        return self.rows == 0 if self.rows is not None else self.size == 0


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class DeliveryKind(models.TextChoices):
    UPLOAD = "upload", "Upload"
    EMAIL = "email", "Email"
    DONE_FILE = "done_file", "Done file"


class Delivery(models.Model):
    # Arrived, or deliberately not sent: a redelivery repeats every other upload.
    DONE = (DeliveryStatus.SENT, DeliveryStatus.SKIPPED)
    # A resend by hand waits in the queue, then a worker sends it (runs/resend.py).
    UNFINISHED = (DeliveryStatus.QUEUED, DeliveryStatus.PENDING)

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="deliveries", verbose_name="run")
    kind = models.CharField("kind", max_length=10, choices=DeliveryKind.choices)
    file = models.ForeignKey(RunFile, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries", verbose_name="file")
    destination = models.ForeignKey(
        Destination, on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries",
        verbose_name="destination", help_text="The task destination uploaded to (kept as text below if it is removed later).",
    )
    target = models.CharField("target", max_length=1000, help_text="Where it went: connection and folder, or the recipients.")
    status = models.CharField("status", max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    at = models.DateTimeField("time", null=True, blank=True, help_text="When it was sent, skipped or failed.")
    error = models.TextField("error", blank=True)
    verified = models.BooleanField(
        "verified", default=False,
        help_text="The server's size of the file equalled Courier's before it was renamed to its final name.",
    )
    resent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name="resent by", help_text="Set when a user resent a stored file by hand.",
    )
    queued_at = models.DateTimeField(
        "queued at", null=True, blank=True, help_text="When a resend by hand was queued for a worker.",
    )
    requeued_at = models.DateTimeField(
        "queued again at", null=True, blank=True,
        help_text="When a queued resend that no worker took was queued once more (its queue message was lost).",
    )
    heartbeat_at = models.DateTimeField(
        "last sign of life", null=True, blank=True,
        help_text="Written every few seconds by the worker sending a resend; a silent one lost its worker.",
    )

    class Meta:
        ordering = ["id"]
        verbose_name = "delivery"
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.file or self.get_kind_display()} → {self.target}"


class SiteState(models.Model):
    """Site-wide switches that must survive a restart (one row)."""

    paused = models.BooleanField("scheduler paused", default=False, help_text="While paused, no schedule fires and no retry starts.")
    paused_at = models.DateTimeField("paused at", null=True, blank=True, help_text="When the scheduler was paused.")
    paused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name="paused by", help_text="Who paused the scheduler.",
    )
    processing_enabled = models.BooleanField(
        "processing scripts allowed", default=True,
        help_text="Switch off to stop every processing script site-wide; tasks that need one then fail clearly.",
    )

    class Meta:
        verbose_name = "site state"

    def __str__(self) -> str:
        return "Site state"

    @classmethod
    def get(cls) -> SiteState:
        return cls.objects.get_or_create(pk=1)[0]


class KeyExpiryWarning(models.Model):
    """One warning mail about a GPG key that will expire: at most one per key, expiry date and threshold."""

    key = models.ForeignKey(GpgKey, on_delete=models.CASCADE, related_name="+", verbose_name="GPG key")
    days = models.PositiveIntegerField("days ahead", help_text="The threshold that was reached (30 or 7 days before the expiry).")
    expires_at = models.DateTimeField("expires", help_text="The key's expiry this warning was about (a renewed key is warned about afresh).")
    sent_at = models.DateTimeField("sent", auto_now_add=True)
    recipients = models.TextField("sent to", blank=True, help_text="The owners who were mailed, or why no mail went.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["key", "days", "expires_at"], name="key_expiry_warning_once")]
        verbose_name = "key expiry warning"

    def __str__(self) -> str:
        return f"{self.key} expires in {self.days} days"


class DigestMail(models.Model):
    """The daily digest sent to one owner for one day: kept so that a day is never sent twice."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name="owner")
    day = models.DateField("day", help_text="The day the digest reports on (yesterday when it was sent).")
    sent_at = models.DateTimeField("sent", auto_now_add=True)
    status = models.CharField("status", max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.SENT)
    error = models.TextField("error", blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "day"], name="digest_once_per_owner_and_day")]
        verbose_name = "digest mail"

    def __str__(self) -> str:
        return f"Digest for {self.owner} on {self.day:%Y-%m-%d}"
