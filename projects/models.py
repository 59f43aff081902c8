"""Projects: named groups of tasks that share one schedule and parameters."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from connections.secrets import SecretField
from connections.validators import validate_plain_name
from projects.cron import CronError, validate_cron
from projects.parameters import Param


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"Unknown time zone “{value}”; use an IANA name such as Europe/Amsterdam.")


def default_time_zone() -> str:
    return settings.TIME_ZONE


class IntervalUnit(models.TextChoices):
    WEEKS = "weeks", "weeks"
    DAYS = "days", "days"
    HOURS = "hours", "hours"
    MINUTES = "minutes", "minutes"
    SECONDS = "seconds", "seconds"


class MissedPolicy(models.TextChoices):
    NONE = "none", "Record them only"
    LATEST = "latest", "Run the latest one"
    ALL = "all", "Run each one, oldest first"


class Project(models.Model):
    name = models.CharField(
        "name", max_length=200, unique=True, validators=[validate_plain_name],
        help_text="Unique; commands refer to tasks as “project/task”.",
    )
    description = models.TextField("description", blank=True, help_text="What this project delivers, and to whom.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="projects",
        verbose_name="owner", help_text="The person responsible; the project's tasks are theirs on “My Tasks”.",
    )
    sequence = models.BooleanField(
        "run tasks in sequence", default=False,
        help_text="Run enabled tasks one after another by run rank (then name), each only after the previous succeeded. Otherwise all start at once.",
    )
    timezone = models.CharField(
        "time zone", max_length=64, default=default_time_zone, validators=[validate_time_zone],
        help_text="Cron triggers and date patterns in names are evaluated in this zone.",
    )
    owner_digest = models.BooleanField(
        "daily digest to the owner", default=False,
        help_text="Each morning the owner gets one mail on yesterday's failures, held runs and late tasks "
                  "of every project that has this on, and on GPG keys about to expire.",
    )

    cron = models.CharField(
        "cron trigger", max_length=200, blank=True,
        help_text="Five fields: minute hour day-of-month month day-of-week, e.g. “0 6 * * 1-5”. Blank for none.",
    )
    interval_every = models.PositiveIntegerField("interval: every", null=True, blank=True, help_text="Fire every N units. Blank for no interval trigger.")
    interval_unit = models.CharField("interval: unit", max_length=10, choices=IntervalUnit.choices, blank=True, help_text="Unit of the interval.")
    once_at = models.DateTimeField("one-off trigger", null=True, blank=True, help_text="Fire once at this date and time; re-saving does not fire it again.")
    once_fired_for = models.DateTimeField(
        "one-off fired for", null=True, blank=True, editable=False,
        help_text="The one-off time that has already fired, so that it never fires twice.",
    )
    start_at = models.DateTimeField("active from", null=True, blank=True, help_text="Triggers do not fire before this moment.")
    end_at = models.DateTimeField("active until", null=True, blank=True, help_text="Triggers do not fire after this moment.")
    missed_policy = models.CharField(
        "missed runs", max_length=10, choices=MissedPolicy.choices, default=MissedPolicy.NONE,
        help_text="Fire times missed while the scheduler was down are always recorded as “missed”; "
        "this says whether they are then run late: none, the latest one, or each one (oldest first, one at a time).",
    )
    catch_up_minutes = models.PositiveIntegerField(
        "catch-up window (minutes)", default=360,
        help_text="Only a missed fire time younger than this is run late (e.g. 360 = 6 hours).",
    )

    created_at = models.DateTimeField("created", auto_now_add=True)
    updated_at = models.DateTimeField("updated", auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "project"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if self.interval_every is not None and self.interval_every < 1:
            errors["interval_every"] = "The interval must be a positive whole number."
        if (self.interval_every is None) != (not self.interval_unit):
            errors["interval_unit"] = "Give both the number and the unit of the interval, or neither."
        if self.start_at and self.end_at and self.end_at <= self.start_at:
            errors["end_at"] = "“Active until” must be after “active from”."
        if self.cron:
            try:
                validate_cron(self.cron)
            except CronError as exc:
                errors["cron"] = str(exc)
        if errors:
            raise ValidationError(errors)


class ParameterBase(models.Model):
    """A key/value pair inserted into SQL, names, subjects and script environments.

    A sensitive value lives only in `secret_value` (encrypted); `value` then
    stays empty so that no page or export can show it by accident.
    """

    key = models.CharField("key", max_length=200, help_text="E.g. @day: SQL's :day placeholders are bound to it, the default of "
                           "DECLARE @day or SET @day is replaced by it, and it is replaced everywhere in names and subjects.")
    value = models.TextField("value", blank=True, help_text="Bound as text to SQL placeholders, inserted as written elsewhere; "
                             "parse(%Y-%m-%d-1) is replaced by a date.")
    sensitive = models.BooleanField("sensitive", default=False, help_text="Store encrypted and show masked in previews, logs and emails.")
    secret_value = SecretField("sensitive value", blank=True, help_text="The value of a sensitive parameter, stored encrypted.")
    position = models.PositiveIntegerField("position", default=0, help_text="Order in which parameters are listed.")

    class Meta:
        abstract = True
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.key

    @property
    def clear_value(self) -> str:
        return self.secret_value if self.sensitive else self.value

    def set_value(self, value: str, sensitive: bool) -> None:
        self.sensitive = sensitive
        if sensitive:
            self.secret_value, self.value = value, ""
        else:
            self.value, self.secret_value = value, ""

    def as_param(self) -> Param:
        return Param(self.key, self.clear_value, self.sensitive)


class ProjectParameter(ParameterBase):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="parameters", verbose_name="project")

    class Meta(ParameterBase.Meta):
        constraints = [models.UniqueConstraint(fields=["project", "key"], name="project_parameter_unique_key")]
        verbose_name = "project parameter"
