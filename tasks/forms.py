"""The New/Edit Task form: one page whose sections follow the SPEC (3.3–3.9).

Several Django forms are edited together (`TaskEditor`): the task itself, its
query/command and its processing script (each a code location), its
parameters (rows, and lines pasted in a box) and destinations (formsets) and
its two emails. Fields that do not apply to the chosen source, code location,
output type or email are hidden in the browser (static/courier/task_form.js
reads the `data-show-*` attributes that `Row` carries); the server validates
each part with its model's clean(), then the whole task with the rules of
tasks/validation.py, which refuse what could only fail when it runs.
For a user who may not write code, the code fields are locked (tasks/codeguard.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.forms.models import inlineformset_factory
from django.forms.utils import ErrorDict

from connections import kinds
from connections.kinds import Reads
from connections.models import Connection, GpgKey
from projects.forms import ParameterForm, ParameterLinesForm, save_parameter_lines
from tasks import codeguard, dependencies, placeholders, sqlbind
from tasks.models import (
    CodeLocation,
    CodeLocationKind,
    CodeRole,
    Destination,
    DestinationKind,
    Notification,
    NotificationEvent,
    OutputType,
    SourceKind,
    Task,
    TaskParameter,
)
from tasks.validation import Draft, refusals

QUERY_SOURCES = kinds.sources_reading(Reads.QUERY)
COMMAND_SOURCES = kinds.sources_reading(Reads.COMMAND)
CODE_SOURCES = [*QUERY_SOURCES, *COMMAND_SOURCES]
FILE_SOURCES = kinds.sources_reading(Reads.FILES)
TEXT_OUTPUTS = [OutputType.CSV, OutputType.TEXT]
REMOTE_LOCATIONS = kinds.code_kinds()
RECIPIENT_SPLIT = re.compile(r"[;,\n]")


class KindSelect(forms.Select):
    """A connection select whose options carry their kind, so the page can hide the wrong ones."""

    def __init__(self, *args, kind_from: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        if kind_from:
            self.attrs["data-kind-from"] = kind_from

    def create_option(self, name, value, *args, **kwargs):
        option = super().create_option(name, value, *args, **kwargs)
        instance = getattr(value, "instance", None)
        if instance is not None:
            option["attrs"]["data-kind"] = instance.kind
        return option


class ConnectionChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Connection) -> str:
        return f"{obj} ({obj.get_kind_display()})"


def connections(*kinds: str):
    # Only names and kinds are needed; secrets are never loaded into a choice list.
    return Connection.objects.filter(kind__in=kinds).select_related("organization").only(
        "id", "name", "kind", "organization__name"
    )


@dataclass(frozen=True)
class Row:
    """One field on the page, and when it is shown (controller field name and values)."""

    field: forms.BoundField
    show_field: str = ""
    show_values: str = ""


def rows(form: forms.BaseForm, names: list[str], show: dict[str, tuple[str, list[str]]]) -> list[Row]:
    found = []
    for name in names:
        controller, values = show.get(name, ("", []))
        found.append(Row(form[name], form.add_prefix(controller) if controller else "", " ".join(values)))
    return found


def blank_means_default(form: forms.ModelForm, *names: str) -> None:
    """Fields a page or client may leave out: left blank (or not sent), they take the model's default."""
    for name in names:
        field, default = form.fields[name], form._meta.model._meta.get_field(name).default
        field.required = False
        field.clean = _or_default(field.clean, default)


def _or_default(clean, default):
    def cleaned(value):
        result = clean(value)
        return default if result in (None, "") else result

    return cleaned


# --------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------

TASK_SHOW = {
    "source_connection": ("source_kind", [*CODE_SOURCES, *FILE_SOURCES]),
    "source_headers": ("source_kind", QUERY_SOURCES),
    "source_fail_on_empty": ("source_kind", QUERY_SOURCES),
    "source_path": ("source_kind", FILE_SOURCES),
    "source_missing_ok": ("source_kind", FILE_SOURCES),
    "source_delimiter": ("source_kind", FILE_SOURCES),
    "source_stdout_as_file": ("source_kind", COMMAND_SOURCES),
    "output_delimiter": ("output_type", [OutputType.TEXT]),
    "output_headers": ("output_type", [*TEXT_OUTPUTS, OutputType.XLSX]),
    "output_quoting": ("output_type", TEXT_OUTPUTS),
    "output_escape_char": ("output_type", TEXT_OUTPUTS),
    "output_encoding": ("output_type", [*TEXT_OUTPUTS, OutputType.JSONL]),
    "output_line_ending": ("output_type", [*TEXT_OUTPUTS, OutputType.JSONL]),
    "output_line_suffix": ("output_type", [*TEXT_OUTPUTS, OutputType.JSONL]),
    "zip_name": ("zip_enabled", ["on"]),
    "gpg_armor": ("gpg_key", ["*"]),
    "processing_entry": ("use_script", ["on"]),
    "processing_requirements": ("use_script", ["on"]),
    "script_network": ("use_script", ["on"]),
}
GENERAL = ["project", "name", "enabled", "rank", "timeout_minutes"]
SCHEDULE = ["expected_by", "wait_for", "wait_window_minutes", "wait_deadline_minutes"]
RETRIES = ["retry_max", "retry_delay_minutes", "retry_backoff", "retry_on_every_failure"]
SOURCE = ["source_kind", "source_connection", "source_headers", "source_path",
          "source_missing_ok", "source_delimiter", "source_stdout_as_file"]
PROCESSING = ["use_script", "processing_entry", "processing_requirements", "script_network"]
OUTPUT = ["output_type", "output_name", "output_delimiter", "output_headers", "output_quoting", "output_escape_char",
          "output_encoding", "output_line_ending", "output_line_suffix"]
PACKAGING = ["zip_enabled", "zip_name", "gpg_key", "gpg_armor"]
GUARD = ["source_fail_on_empty", "guard_min_rows", "guard_max_rows", "guard_median_runs", "guard_median_percent", "guard_action"]


class NoWaitingLoop:
    """A task form's "run after" may not close a loop of tasks waiting for each other."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "wait_deadline_minutes" in self.fields:
            # Left out of a post (a form from before this field existed): the saved value, or the default, stays.
            self.fields["wait_deadline_minutes"].required = False

    def clean_wait_for(self):
        chosen = list(self.cleaned_data["wait_for"])
        dependencies.refuse_cycle(self.instance, chosen)
        return chosen


class TaskForm(codeguard.CodeLockMixin, NoWaitingLoop, ParameterLinesForm):
    use_script = forms.BooleanField(
        label="Run a processing script", required=False,
        help_text="After the source, run a Python script on the files (always on for a script-only task).",
    )
    source_connection = ConnectionChoiceField(
        queryset=connections(*SourceKind.values), required=False, label="Source connection",
        widget=KindSelect(kind_from="source_kind"), help_text=Task._meta.get_field("source_connection").help_text,
    )

    class Meta:
        model = Task
        fields = [f for f in GENERAL + SCHEDULE + RETRIES + SOURCE + PROCESSING + GUARD + OUTPUT + PACKAGING if f != "use_script"]
        widgets = {
            "processing_requirements": forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"}),
            "name": forms.TextInput(attrs={"class": "vTextField"}),
            "source_path": forms.TextInput(attrs={"class": "vTextField"}),
            "output_name": forms.TextInput(attrs={"class": "vTextField"}),
            "zip_name": forms.TextInput(attrs={"class": "vTextField"}),
            "expected_by": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "wait_for": forms.SelectMultiple(attrs={"size": 6}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = self.fields["project"].queryset.only("id", "name")
        self.fields["gpg_key"].queryset = GpgKey.objects.only("id", "name")
        others = Task.objects.select_related("project").only("id", "name", "project__name").order_by("project__name", "name")
        self.fields["wait_for"].queryset = others.exclude(pk=self.instance.pk) if self.instance.pk else others
        has_script = any(c.role == CodeRole.PROCESSING for c in self.instance.code_locations.all()) if self.instance.pk else False
        self.initial.setdefault("use_script", has_script)
        blank_means_default(self, "guard_median_runs", "guard_action")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("source_kind") == SourceKind.PYTHON:
            cleaned["use_script"] = True
            # The select is hidden for a script-only task; a value left in it from before is no choice.
            cleaned["source_connection"] = None
            self.instance.source_connection = None
        return cleaned

    def sections(self) -> dict[str, list[Row]]:
        """The page's sections by name; the template lays them out in SPEC order."""
        parts = {"general": GENERAL, "schedule": SCHEDULE, "retries": RETRIES, "parameter_lines": ["parameter_lines"],
                 "source": SOURCE, "processing": PROCESSING, "guard": GUARD, "output": OUTPUT, "packaging": PACKAGING}
        return {name: rows(self, names, TASK_SHOW) for name, names in parts.items()}


# --------------------------------------------------------------------------
# Code locations: the query/command and the processing script
# --------------------------------------------------------------------------

CODE_SHOW = {
    "text": ("location", [CodeLocationKind.INLINE]),
    "connection": ("location", REMOTE_LOCATIONS),
    "path": ("location", kinds.code_kinds_reading("path")),
    "url": ("location", kinds.code_kinds_reading("url")),
    "cache": ("location", REMOTE_LOCATIONS),
}
CODE_FIELDS = ["location", "text", "connection", "path", "url", "cache"]


class CodeForm(codeguard.CodeLockMixin, forms.ModelForm):
    connection = ConnectionChoiceField(
        queryset=connections(*REMOTE_LOCATIONS), required=False, label="Connection",
        widget=KindSelect(), help_text=CodeLocation._meta.get_field("connection").help_text,
    )

    class Meta:
        model = CodeLocation
        fields = CODE_FIELDS
        widgets = {
            "text": forms.Textarea(attrs={"rows": 12, "class": "code-editor", "spellcheck": "false"}),
            "path": forms.TextInput(attrs={"class": "vTextField"}),
            "url": forms.TextInput(attrs={"class": "vTextField"}),
        }

    def __init__(self, *args, role: str, editor_mode: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.role = role
        self.fields["connection"].widget.attrs["data-kind-from"] = self.add_prefix("location")
        self.fields["text"].widget.attrs["data-mode"] = editor_mode
        self.fields["text"].label = "Query or command" if role == CodeRole.SOURCE else "Script"

    def clean(self):
        cleaned = super().clean()
        location, conn = cleaned.get("location"), cleaned.get("connection")
        errors = {}
        if location == CodeLocationKind.INLINE:
            if not (cleaned.get("text") or "").strip():
                errors["text"] = "Write the code here, or choose where it is kept."
            cleaned["connection"] = None
        elif location:
            use = kinds.KINDS[location].code
            if conn is None and not use.connection_optional:
                errors["connection"] = f"Code kept on {use.label} needs a {use.label} connection."
            elif conn is not None and conn.kind != location:
                errors["connection"] = f"“{conn}” is a {conn.get_kind_display()} connection, not {use.label}."
            if use.address == "path" and not cleaned.get("path"):
                errors["path"] = f"Give the path of the file on the {use.label} server."
            if use.address == "url" and not re.match(r"https?://", cleaned.get("url") or ""):
                errors["url"] = "Give an http:// or https:// URL."
        if errors:
            raise ValidationError(errors)
        return cleaned

    def rows(self) -> list[Row]:
        return rows(self, CODE_FIELDS, CODE_SHOW)


# --------------------------------------------------------------------------
# Parameters, destinations, emails
# --------------------------------------------------------------------------

# An explicit, own list of fields: the inline formset appends its foreign key to the form's field list,
# and without one it would append "task" to the list shared with the projects' parameter forms.
PARAMETER_FIELDS = ["key", "entered_value", "sensitive", "position"]
ParameterFormSet = inlineformset_factory(Task, TaskParameter, form=ParameterForm, fields=list(PARAMETER_FIELDS), extra=1, can_delete=True)


class DestinationForm(forms.ModelForm):
    connection = ConnectionChoiceField(
        queryset=connections(*DestinationKind.values),
        label="Connection", widget=KindSelect(),
    )

    class Meta:
        model = Destination
        fields = ["kind", "connection", "folder", "if_exists", "skip_empty", "done_file", "done_manifest", "position"]
        widgets = {"position": forms.NumberInput(attrs={"class": "vIntegerField"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["connection"].widget.attrs["data-kind-from"] = self.add_prefix("kind")


DestinationFormSet = inlineformset_factory(Task, Destination, form=DestinationForm, extra=1, can_delete=True)


def check_recipients(value: str) -> str:
    addresses = [a.strip() for a in RECIPIENT_SPLIT.split(value) if a.strip()]
    if not addresses:
        raise ValidationError("Give at least one address.")
    bad = []
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            bad.append(address)
    if bad:
        raise ValidationError(f"Not an email address: {', '.join(bad)}.")
    return value.strip()


class NotificationForm(forms.ModelForm):
    send = forms.BooleanField(label="Send this email", required=False)

    class Meta:
        model = Notification
        fields = ["recipients", "subject", "message", "attach", "embed", "skip_empty", "after_failures", "recovered"]
        widgets = {
            "recipients": forms.Textarea(attrs={"rows": 2, "class": "vLargeTextField"}),
            "subject": forms.TextInput(attrs={"class": "vTextField"}),
            "message": forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"}),
        }

    def __init__(self, *args, event: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.event = event
        self.initial.setdefault("send", bool(self.instance.pk))
        self.fields["recipients"].required = False  # only when sending; see clean_recipients
        only_other = ("after_failures", "recovered") if event == NotificationEvent.SUCCESS else ("attach", "embed", "skip_empty")
        for name in only_other:
            del self.fields[name]
        if "after_failures" in self.fields:
            blank_means_default(self, "after_failures")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("send") and "recipients" in cleaned:
            try:
                cleaned["recipients"] = check_recipients(cleaned["recipients"])
            except ValidationError as exc:
                self.add_error("recipients", exc)
        return cleaned

    def rows(self) -> list[Row]:
        names = [n for n in ["send", "recipients", "subject", "message", *self.Meta.fields[3:]] if n in self.fields]
        return rows(self, names, {n: ("send", ["on"]) for n in names if n != "send"})


# --------------------------------------------------------------------------
# All of it together
# --------------------------------------------------------------------------


class TaskEditor:
    """Binds, validates and saves every part of the task page in one transaction."""

    def __init__(self, data=None, *, instance: Task, user):
        self.task, self.user = instance, user
        self.form = TaskForm(data, instance=instance)
        codes = {c.role: c for c in instance.code_locations.all()} if instance.pk else {}
        query_mode = "text/x-sh" if instance.source_reads == Reads.COMMAND else "text/x-sql"
        self.query = CodeForm(data, prefix="query", instance=codes.get(CodeRole.SOURCE), role=CodeRole.SOURCE, editor_mode=query_mode)
        self.script = CodeForm(data, prefix="script", instance=codes.get(CodeRole.PROCESSING), role=CodeRole.PROCESSING,
                               editor_mode="text/x-python")
        self.code_locked = not codeguard.may_write_code(user)
        if self.code_locked:
            self.form.lock_code(codeguard.task_locks(instance))
            for part in (self.query, self.script):
                part.lock_code(codeguard.location_locks(codes.get(part.role), part.role, instance.source_kind))
        self.parameters = ParameterFormSet(data, instance=instance, prefix="param")
        self.destinations = DestinationFormSet(data, instance=instance, prefix="dest")
        notes = {n.event: n for n in instance.notifications.all()} if instance.pk else {}
        self.emails = {
            event: NotificationForm(data, prefix=event, instance=notes.get(event), event=event)
            for event in (NotificationEvent.SUCCESS, NotificationEvent.FAILURE)
        }
        self._share_choices()
        self._valid: bool | None = None

    def _share_choices(self) -> None:
        """Every destination row offers the same connections: load the list once, not once per row."""
        choices = None
        for form in [*self.destinations.forms, self.destinations.empty_form]:
            field = form.fields["connection"]
            if choices is None:
                choices = list(field.choices)
            field.choices = choices

    # -- validation --------------------------------------------------------

    def _needs_query(self) -> bool:
        return self.form.cleaned_data.get("source_kind") in CODE_SOURCES

    def _needs_script(self) -> bool:
        return bool(self.form.cleaned_data.get("use_script"))

    def _draft(self) -> Draft[forms.BaseForm]:
        """The task as this page would save it, each part named by the form that shows it."""
        # While the parameter rows have errors of their own, their keys are not known yet.
        keys = set(self._parameter_keys()) if self.parameters.is_valid() else None
        draft = Draft(self.form.instance, self.form, script=self._needs_script(), parameter_keys=keys)
        for code_form, role, wanted in ((self.query, CodeRole.SOURCE, self._needs_query()), (self.script, CodeRole.PROCESSING, self._needs_script())):
            if wanted and code_form.is_valid():
                code_form.instance.role = role
                draft.codes.append((code_form, code_form.instance))
        deleted = self.destinations.deleted_forms
        kept = [f for f in self.destinations.forms if f.is_valid() and (f.instance.pk or f.has_changed()) and f not in deleted]
        draft.destinations = [(f, f.instance) for f in kept]
        return draft

    def _runnable(self) -> bool:
        """Refuse what could only fail when the task runs, on the field that holds it (tasks/validation.py)."""
        found = refusals(self._draft())
        for refusal in found:
            refusal.where.add_error(refusal.field, refusal.message)
        return not found

    def _inline_sql(self) -> str | None:
        """The database query written on this page (as posted, or as stored when the page is first shown)."""
        if not self.form.is_bound:
            return placeholders.inline_query(self.task)
        code = self.query.cleaned_data if self.query.is_bound else {}
        if kinds.reads(self.form.cleaned_data.get("source_kind")) != Reads.QUERY or code.get("location") != CodeLocationKind.INLINE:
            return None
        return code.get("text") or ""

    def _parameter_keys(self) -> list[str]:
        """Keys of the project's parameters and the task's, as they are being saved."""
        if not self.form.is_bound:
            return placeholders.saved_keys(self.task)
        deleted = self.parameters.deleted_forms
        own = [f.cleaned_data.get("key") for f in self.parameters.forms if f not in deleted and hasattr(f, "cleaned_data")]
        own += [param.key for param in self.form.cleaned_data.get("parameter_lines") or []]
        return placeholders.project_keys(self.form.cleaned_data.get("project")) + [key for key in own if key]

    def _dialect(self) -> str:
        conn = self.form.cleaned_data.get("source_connection") if self.form.is_bound else self.task.source_connection
        return placeholders.dialect_of(conn)

    def unused_parameters(self) -> list[str]:
        """Parameters the query uses neither as a placeholder nor in a declaration: a warning on the page, not an error."""
        sql = self._inline_sql() if not self.form.is_bound or hasattr(self.form, "cleaned_data") else None
        return [] if sql is None else sqlbind.unused(sql, self._dialect(), self._parameter_keys())

    def _emails_valid(self) -> bool:
        return all(f.is_valid() for f in self.emails.values())

    @staticmethod
    def _skip(form: forms.BaseForm) -> bool:
        """A part that does not apply is neither validated nor saved, and shows no errors."""
        form._errors, form.cleaned_data = ErrorDict(), {}
        return True

    def is_valid(self) -> bool:
        # Once: the template asks again, and the refusals must not be added twice.
        if self._valid is None:
            self._valid = self._validate()
        return self._valid

    def _validate(self) -> bool:
        valid = self.form.is_valid()
        parameters_valid = self.parameters.is_valid()
        if valid:
            valid &= self.query.is_valid() if self._needs_query() else self._skip(self.query)
            valid &= self.script.is_valid() if self._needs_script() else self._skip(self.script)
        else:
            # Which parts apply is not known while the task's own fields are wrong.
            self._skip(self.query)
            self._skip(self.script)
        valid &= parameters_valid
        valid &= self.destinations.is_valid()
        valid &= self._emails_valid()
        if self.form.is_valid():
            valid &= self._runnable()
        return bool(valid)

    @property
    def has_errors(self) -> bool:
        return self.form.is_bound and not self.is_valid()

    # -- saving ------------------------------------------------------------

    def _save_code(self, code_form: CodeForm, wanted: bool, role: str) -> None:
        if wanted:
            code = code_form.save(commit=False)
            code.task, code.role = self.task, role
            code.save()
        elif code_form.instance.pk:
            code_form.instance.delete()

    def _save_email(self, form: NotificationForm) -> None:
        if form.cleaned_data.get("send"):
            note = form.save(commit=False)
            note.task, note.event = self.task, form.event
            note.save()
        elif form.instance.pk:
            form.instance.delete()

    @transaction.atomic
    def save(self) -> Task:
        code_before = codeguard.saved_code(self.task.pk)
        self.task = self.form.save()
        self._save_code(self.query, self._needs_query(), CodeRole.SOURCE)
        self._save_code(self.script, self._needs_script(), CodeRole.PROCESSING)
        for formset in (self.parameters, self.destinations):
            formset.instance = self.task
            formset.save()
        save_parameter_lines(self.form, self.task.parameters)
        for form in self.emails.values():
            self._save_email(form)
        codeguard.refuse_saved_change(self.user, code_before, self.task.pk)
        return self.task

    def changed(self) -> list[str]:
        """Labels of what changed, for the admin log."""
        labels = [str(self.form.fields[n].label) for n in self.form.changed_data]
        parts = {"query": self.query, "script": self.script, **self.emails}
        labels += [f"{name} email" if name in self.emails else name for name, f in parts.items() if f.has_changed()]
        labels += [name for name, fs in (("parameters", self.parameters), ("destinations", self.destinations)) if fs.has_changed()]
        return labels
