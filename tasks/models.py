"""Tasks: where data comes from, how it is processed, what file is made, where it goes."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from connections import kinds
from connections.kinds import Reads
from connections.models import Connection, GpgKey
from connections.validators import validate_plain_name
from projects.models import ParameterBase, Project


def _members(choices: list[tuple[str, str]]) -> list[tuple[str, tuple[str, str]]]:
    return [(value.upper(), (value, label)) for value, label in choices]


# Every connection kind that can be a data source (connections/kinds.py), and a script-only task.
SourceKind = models.TextChoices("SourceKind", [*_members(kinds.source_choices()), ("PYTHON", ("python", "Python script only"))])


def source_kind_choices() -> list[tuple[str, str]]:
    return SourceKind.choices


class OutputType(models.TextChoices):
    CSV = "csv", "CSV"
    TEXT = "text", "Delimited text"
    XLSX = "xlsx", "Excel (.xlsx)"
    JSONL = "jsonl", "JSON lines"
    KEEP = "keep", "Keep as is"


class Quoting(models.TextChoices):
    MINIMAL = "minimal", "Minimal (only when needed)"
    ALL = "all", "All fields"
    NONNUMERIC = "nonnumeric", "Non-numeric fields"
    NONE = "none", "None (escape instead)"


class Encoding(models.TextChoices):
    UTF8 = "utf-8", "UTF-8"
    UTF8_SIG = "utf-8-sig", "UTF-8 with BOM"
    CP1252 = "cp1252", "Windows-1252"
    LATIN1 = "latin-1", "Latin-1"


class LineEnding(models.TextChoices):
    LF = "lf", "LF (Unix)"
    CRLF = "crlf", "CRLF (Windows)"


class GuardAction(models.TextChoices):
    FAIL = "fail", "Fail the run"
    HOLD = "hold", "Hold the delivery"
    WARN = "warn", "Warn in the log"


class Task(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks", verbose_name="project", help_text="Tasks run when their project fires.")
    name = models.CharField("name", max_length=200, validators=[validate_plain_name], help_text="Unique within the project.")
    enabled = models.BooleanField("enabled", default=True, help_text="Only enabled tasks run when the project fires.")
    rank = models.IntegerField("run rank", null=True, blank=True, help_text="Order within a sequence project (ascending; ties and blanks by name).")
    timeout_minutes = models.PositiveIntegerField("timeout (minutes)", default=60, help_text="The whole run is stopped after this long.")
    retry_max = models.PositiveIntegerField("retries", default=0, help_text="How many times a failed run is tried again.")
    retry_delay_minutes = models.PositiveIntegerField("retry delay (minutes)", default=5, help_text="Wait this long before the first retry.")
    retry_backoff = models.FloatField("retry backoff", default=1.0, help_text="Each further retry waits this many times longer (1 = same delay).")
    retry_on_every_failure = models.BooleanField(
        "retry on every failure", default=False,
        help_text="Also retry failures that cannot succeed by trying again (query syntax, wrong password).",
    )

    # Source
    source_kind = models.CharField("data source", max_length=20, choices=source_kind_choices, default=SourceKind.DATABASE, help_text="Where the data comes from.")
    source_connection = models.ForeignKey(
        Connection, on_delete=models.PROTECT, null=True, blank=True, related_name="source_tasks",
        verbose_name="source connection", help_text="The database, file server or SSH host to read from.",
    )
    source_headers = models.BooleanField("include column headers", default=True, help_text="Query sources: pass the column names on as the header row.")
    source_fail_on_empty = models.BooleanField(
        "guard: no rows", default=False,
        help_text="A result without data rows breaks the row guard: the run fails, or is held or warned about as the guard's action says.",
    )
    source_path = models.CharField(
        "remote path", max_length=1000, blank=True,
        help_text="File sources: path with wildcards (* ? [seq] [!seq]), parameters and date patterns, e.g. in/orders_%Y%m%d*.csv.",
    )
    source_missing_ok = models.BooleanField("no match is fine", default=False, help_text="File sources: succeed with nothing delivered when no file matches.")
    source_delimiter = models.CharField(
        "source delimiter", max_length=5, blank=True,
        help_text="File sources: blank passes files on byte for byte; a delimiter (e.g. , or \\t) reads them as delimited text to re-write.",
    )
    source_stdout_as_file = models.BooleanField("keep stdout as the output file", default=False, help_text="SSH sources: the command's standard output becomes the file.")

    # Processing
    processing_entry = models.CharField("script entry file", max_length=500, blank=True, help_text="For a package (folder, archive, repository): the file to run inside it.")
    processing_requirements = models.TextField(
        "script requirements", blank=True,
        help_text="pip requirements, one per line. Blank: read from the package, or from the script's imports.",
    )
    script_network = models.BooleanField(
        "script may use the network", default=True,
        help_text="Off: the processing script runs in its sandbox without any network access (its requirements are still installed).",
    )

    # Output
    output_type = models.CharField("output type", max_length=10, choices=OutputType.choices, blank=True, help_text="Blank keeps source files and names as they are.")
    output_name = models.CharField(
        "output file name", max_length=500, blank=True,
        help_text="May use parameters and date patterns, e.g. orders_%Y%m%d-1. The extension comes from the type unless given.",
    )
    output_delimiter = models.CharField("delimiter", max_length=5, default=",", help_text="Delimited text: the field separator; \\t for tab.")
    output_headers = models.BooleanField("header row", default=True, help_text="Write the column names as the first line.")
    output_quoting = models.CharField("quoting", max_length=12, choices=Quoting.choices, default=Quoting.MINIMAL, help_text="Which fields are put in quotes.")
    output_escape_char = models.CharField("escape character", max_length=1, blank=True, default="\\", help_text="Used with quoting “none” before delimiters inside values.")
    output_encoding = models.CharField("encoding", max_length=12, choices=Encoding.choices, default=Encoding.UTF8, help_text="Character encoding of text output.")
    output_line_ending = models.CharField("line ending", max_length=4, choices=LineEnding.choices, default=LineEnding.LF, help_text="End of each line.")
    output_line_suffix = models.CharField("characters at line end", max_length=20, blank=True, help_text="Appended to every line before the line ending, e.g. ~.")
    zip_enabled = models.BooleanField("zip the files", default=False, help_text="Put all output files into one zip archive.")
    zip_name = models.CharField("zip name", max_length=500, blank=True, help_text="May use parameters and date patterns; .zip is added if missing.")
    gpg_key = models.ForeignKey(
        GpgKey, on_delete=models.PROTECT, null=True, blank=True, related_name="tasks",
        verbose_name="encrypt for GPG key", help_text="Encrypt each file for this public key (before zipping). Blank: no encryption.",
    )
    gpg_armor = models.BooleanField("ASCII armour", default=False, help_text="Write armoured .asc instead of binary .gpg.")

    # Schedule integrity (SPEC §4.1): an expected time, and other tasks to wait for.
    expected_by = models.TimeField(
        "should have succeeded by", null=True, blank=True,
        help_text="HH:MM in the project's time zone. On a day the project's triggers fire, if no run intended "
        "that day has succeeded by then, a late alert goes to the failure mail's recipients and the owner.",
    )
    wait_for = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="waited_on_by", verbose_name="run after",
        help_text="Tasks (of any project) that must have succeeded first: a scheduled run waits for them.",
    )
    wait_window_minutes = models.PositiveIntegerField(
        "dependency window (minutes)", null=True, blank=True,
        help_text="A success of each task waited for counts when intended within this many minutes of this run's "
        "intended time. Blank: intended on the same day (project time zone).",
    )
    wait_deadline_minutes = models.PositiveIntegerField(
        "give up waiting after (minutes)", default=360,
        help_text="A run still waiting this long after its intended time fails (“dependencies not met by …”).",
    )
    # Row-count guard (runs/pipeline/guard.py): checked once the result's rows are known, before any file is made.
    guard_min_rows = models.PositiveIntegerField("guard: fewer rows than", null=True, blank=True, help_text="A result with fewer data rows breaks the guard. Blank: no lower limit.")
    guard_max_rows = models.PositiveIntegerField("guard: more rows than", null=True, blank=True, help_text="A result with more data rows breaks the guard. Blank: no upper limit.")
    guard_median_runs = models.PositiveIntegerField(
        "guard: median of the last runs", default=0,
        help_text="Compare the row count with the median of this many latest successful runs (0: no comparison).",
    )
    guard_median_percent = models.PositiveIntegerField(
        "guard: allowed deviation (%)", null=True, blank=True,
        help_text="A row count more than this many percent above or below that median breaks the guard.",
    )
    guard_action = models.CharField(
        "guard: when broken", max_length=4, choices=GuardAction.choices, default=GuardAction.FAIL,
        help_text="Fail the run; hold its files in storage until someone releases or discards them; or only warn in the log.",
    )

    created_at = models.DateTimeField("created", auto_now_add=True)
    updated_at = models.DateTimeField("updated", auto_now=True)

    class Meta:
        ordering = ["project__name", "name"]
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="task_unique_name_per_project")]
        permissions = [("run_task", "Can run tasks"), ("write_code", "Can write code that runs")]
        verbose_name = "task"

    def __str__(self) -> str:
        return f"{self.project.name}/{self.name}"

    @property
    def source_reads(self) -> Reads | None:
        """What the source does (query, files, command); None for a script-only task."""
        return kinds.reads(self.source_kind)

    def clean(self) -> None:
        # Which fields the choices need; what would fail when it runs is tasks/validation.py's.
        errors = {}
        # A source is a connection of the same kind, except a script-only one.
        wanted = kinds.KINDS[self.source_kind] if self.source_reads else None
        conn = self.source_connection
        if wanted and conn is None:
            errors["source_connection"] = f"A {self.get_source_kind_display()} source needs a {wanted.label} connection."
        elif wanted and conn.kind != wanted.key:
            errors["source_connection"] = f"“{conn}” is a {conn.get_kind_display()} connection; this source needs a {wanted.label} connection."
        elif not wanted and conn is not None:
            errors["source_connection"] = "A Python-script-only source takes no connection."
        if self.source_reads == Reads.FILES and not self.source_path:
            errors["source_path"] = "A file source needs a remote path."
        if self.retry_backoff < 1:
            errors["retry_backoff"] = "The backoff multiplier must be 1 or more."
        if self.zip_enabled and not self.zip_name:
            errors["zip_name"] = "Give the zip archive a name."
        errors.update(self._guard_problems())
        if errors:
            raise ValidationError(errors)


    def _guard_problems(self) -> dict[str, str]:
        return guard_problems(self.guard_min_rows, self.guard_max_rows, self.guard_median_runs, self.guard_median_percent)

    @property
    def has_row_guard(self) -> bool:
        return (self.source_fail_on_empty or self.guard_min_rows is not None or self.guard_max_rows is not None
                or bool(self.guard_median_runs))


def guard_problems(min_rows: int | None, max_rows: int | None, median_runs: int, median_percent: int | None) -> dict[str, str]:
    """What is wrong with a row guard's numbers, by Task field (the task form, the admin and import_config share it)."""
    errors = {}
    if min_rows is not None and max_rows is not None and min_rows > max_rows:
        errors["guard_max_rows"] = "The upper row limit must not be below the lower one."
    if median_runs and median_percent is None:
        errors["guard_median_percent"] = "Say how many percent the row count may differ from the median."
    if median_percent is not None and not median_runs:
        errors["guard_median_runs"] = "Say how many successful runs the median is taken over."
    return errors


class TaskParameter(ParameterBase):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="parameters", verbose_name="task")

    class Meta(ParameterBase.Meta):
        constraints = [models.UniqueConstraint(fields=["task", "key"], name="task_parameter_unique_key")]
        verbose_name = "task parameter"


class CodeRole(models.TextChoices):
    SOURCE = "source", "Query / command"
    PROCESSING = "processing", "Processing script"


# Code written on the task page, and every connection kind that can keep code (connections/kinds.py).
CodeLocationKind = models.TextChoices("CodeLocationKind", [("INLINE", ("inline", "Inline")), *_members(kinds.code_choices())])


def code_location_choices() -> list[tuple[str, str]]:
    return CodeLocationKind.choices


class CodeLocation(models.Model):
    """Where a task's query, SSH command or processing script is read from."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="code_locations", verbose_name="task")
    role = models.CharField("used as", max_length=12, choices=CodeRole.choices, help_text="The task's query or command, or its processing script.")
    location = models.CharField("location", max_length=10, choices=code_location_choices, default=CodeLocationKind.INLINE, help_text="Where the code is kept.")
    text = models.TextField("code", blank=True, help_text="Inline code (SQL, shell command or Python).")
    connection = models.ForeignKey(
        Connection, on_delete=models.PROTECT, null=True, blank=True, related_name="code_locations",
        verbose_name="connection", help_text="The file server or code host the code is fetched from.",
    )
    path = models.CharField("path", max_length=1000, blank=True, help_text="SFTP/FTP/SMB: path of the file (or package folder/archive).")
    url = models.CharField("URL", max_length=1000, blank=True, help_text="GitLab file URL or any HTTP(S) URL (or a git repository for a package).")
    cache = models.BooleanField("keep a cached copy", default=False, help_text="If a later fetch fails, run the last fetched text and log a warning.")
    cached_text = models.TextField("cached text", blank=True, editable=False, help_text="The last successfully fetched text, before parameters.")
    cached_at = models.DateTimeField("cached at", null=True, blank=True, editable=False, help_text="When the cached text was fetched.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "role"], name="code_location_one_per_role")]
        verbose_name = "code location"

    def __str__(self) -> str:
        return f"{self.get_role_display()} ({self.get_location_display()})"


class IfExists(models.TextChoices):
    FAIL = "fail", "Fail"
    OVERWRITE = "overwrite", "Overwrite"
    SKIP = "skip", "Skip"


# Every connection kind that can receive files (connections/kinds.py).
DestinationKind = models.TextChoices("DestinationKind", _members(kinds.destination_choices()))


class Destination(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="destinations", verbose_name="task")
    kind = models.CharField("kind", max_length=10, choices=kinds.destination_choices, help_text="How the files are delivered.")
    connection = models.ForeignKey(
        Connection, on_delete=models.PROTECT, related_name="destinations",
        verbose_name="connection", help_text="The server or local folder connection to deliver to.",
    )
    folder = models.CharField("folder", max_length=1000, blank=True, help_text="Relative to the connection's base folder; blank for the base folder itself.")
    if_exists = models.CharField("if the file exists", max_length=10, choices=IfExists.choices, default=IfExists.FAIL, help_text="Fail (default), overwrite it, or skip this file.")
    skip_empty = models.BooleanField("do not send empty files", default=False, help_text="Query output without data rows, or a zero-byte file, is not sent.")
    position = models.PositiveIntegerField("position", default=0, help_text="Deliveries happen in this order.")
    done_file = models.CharField(
        "done file", max_length=500, blank=True,
        help_text="Written after every file of the run has arrived here, e.g. {name}.done (one per file) or batch_%Y%m%d.ready; "
                  "parameters and date patterns allowed. Blank: none.",
    )
    done_manifest = models.BooleanField(
        "manifest in the done file", default=False,
        help_text="The done file lists each delivered file as name,size,sha256 (one line each) instead of being empty.",
    )

    class Meta:
        ordering = ["position", "id"]
        verbose_name = "destination"

    def __str__(self) -> str:
        folder = f" {self.folder}" if self.folder else ""
        return f"{self.get_kind_display()} {self.connection}{folder}"

    def clean(self) -> None:
        if self.connection_id and self.connection.kind != self.kind:
            raise ValidationError({"connection": f"“{self.connection}” is a {self.connection.get_kind_display()} connection, not {self.get_kind_display()}."})
        if "/" in self.done_file or "\\" in self.done_file:
            raise ValidationError({"done_file": "The done file is written beside the files: its name may not contain a folder."})
        if self.done_manifest and not self.done_file:
            raise ValidationError({"done_manifest": "Name the done file that holds the manifest."})


class NotificationEvent(models.TextChoices):
    SUCCESS = "success", "On success"
    FAILURE = "failure", "On failure"


class Notification(models.Model):
    """An email (or email-to-SMS) sent after a run succeeds or fails."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="notifications", verbose_name="task")
    event = models.CharField("when", max_length=10, choices=NotificationEvent.choices, help_text="Send after a successful or a failed run.")
    recipients = models.TextField("to", help_text="Addresses separated by ; , or new lines. A phone-number address (5551234567@gateway) gets a short text.")
    subject = models.CharField("subject", max_length=500, blank=True, help_text="May use parameters and date patterns. Blank for a default subject.")
    message = models.TextField("message", blank=True, help_text="May use parameters and date patterns. Blank for a default message.")
    attach = models.BooleanField("attach files", default=False, help_text="Success mail: attach the output files.")
    embed = models.BooleanField("embed as table", default=False, help_text="Success mail: show the output as an HTML table (cut at a size cap).")
    skip_empty = models.BooleanField("not for empty output", default=False, help_text="Success mail: do not send when the output has no data.")
    after_failures = models.PositiveIntegerField(
        "after consecutive failures", default=1, validators=[MinValueValidator(1)],
        help_text="Failure mail: sent only once this many runs in a row have failed for good (retries used up).",
    )
    recovered = models.BooleanField(
        "recovered mail", default=False,
        help_text="Failure mail: after a failure mail was sent, the next success sends a “recovered” mail to the same people.",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "event"], name="notification_one_per_event")]
        verbose_name = "email notification"

    def __str__(self) -> str:
        return f"{self.get_event_display()}: {self.recipients}"
