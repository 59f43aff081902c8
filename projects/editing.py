"""The New/Edit Project form of the pages: fields, triggers and parameters, as rows or pasted lines (validated by Project.clean)."""

from __future__ import annotations

from django import forms
from django.db import transaction
from django.forms.models import inlineformset_factory

from projects.forms import ParameterForm, ParameterLinesForm, save_parameter_lines
from projects.models import Project, ProjectParameter

GENERAL = ["name", "description", "owner", "sequence", "timezone", "owner_digest"]
TRIGGERS = ["cron", "interval_every", "interval_unit", "once_at", "start_at", "end_at"]
MISSED = ["missed_policy", "catch_up_minutes"]


class ProjectForm(ParameterLinesForm):
    class Meta:
        model = Project
        fields = GENERAL + TRIGGERS + MISSED
        widgets = {
            "name": forms.TextInput(attrs={"class": "vTextField"}),
            "description": forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"}),
            "cron": forms.TextInput(attrs={"class": "vTextField", "placeholder": "0 6 * * 1-5", "spellcheck": "false"}),
            "once_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "start_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "end_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = self.fields["owner"].queryset.filter(is_active=True).order_by("username")
        for name in ("once_at", "start_at", "end_at"):
            self.fields[name].input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
        for name in MISSED:
            # Left out of a post (a form from before these fields existed): the saved value, or the default, stays.
            self.fields[name].required = False

    def sections(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [("General", [self[n] for n in GENERAL]), ("Triggers", [self[n] for n in TRIGGERS]),
                ("Missed runs", [self[n] for n in MISSED])]


# An own list of fields (see tasks/forms.py ParameterFormSet): the formset appends "project" to it.
ProjectParameterFormSet = inlineformset_factory(
    Project, ProjectParameter, form=ParameterForm, fields=["key", "entered_value", "sensitive", "position"], extra=1, can_delete=True,
)


class ProjectEditor:
    """The project form and its parameter rows, saved together."""

    def __init__(self, data=None, *, instance: Project):
        self.form = ProjectForm(data, instance=instance)
        self.parameters = ProjectParameterFormSet(data, instance=instance, prefix="param")

    def is_valid(self) -> bool:
        return all([self.form.is_valid(), self.parameters.is_valid()])

    @transaction.atomic
    def save(self) -> Project:
        project = self.form.save()
        self.parameters.instance = project
        self.parameters.save()
        save_parameter_lines(self.form, project.parameters)
        return project

    def lines_row(self) -> dict:
        """The box for parameters pasted as lines, in the shape courier/field_row.html takes."""
        return {"field": self.form["parameter_lines"]}

    def changed(self) -> list[str]:
        labels = [str(self.form.fields[n].label) for n in self.form.changed_data]
        return labels + (["parameters"] if self.parameters.has_changed() else [])
