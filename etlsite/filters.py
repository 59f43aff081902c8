"""The filters of the task and project lists (django-filter).

The parameter names (`q`, `project`, `owner`, `status`, `source`, `enabled`)
are part of the page URLs: the name clouds set `project` and `owner`.
Part of the site's page layer, shared by the apps' pages (etlsite/pages.py).
"""

from __future__ import annotations

from functools import reduce
from operator import or_

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from projects.models import Project
from runs.models import RunStatus
from tasks.models import SourceKind, Task

NEVER_RUN = "never"
STATUS_CHOICES = [*RunStatus.choices, (NEVER_RUN, "Never run")]
ENABLED_CHOICES = [("true", "Enabled"), ("false", "Disabled")]


def owners() -> QuerySet:
    """Users who own at least one project: the only useful owner choices."""
    return get_user_model().objects.filter(projects__isnull=False).distinct().order_by("username")


def search_box(placeholder: str, *fields: str) -> django_filters.CharFilter:
    """The `q` box: every word typed must occur (any case) in one of `fields`."""

    def search(queryset: QuerySet, name: str, value: str) -> QuerySet:
        for word in value.split():
            queryset = queryset.filter(reduce(or_, (Q(**{f"{field}__icontains": word}) for field in fields)))
        return queryset

    return django_filters.CharFilter(
        label="Search", method=search, widget=forms.TextInput(attrs={"placeholder": placeholder, "type": "search"}),
    )


class LongSelect(forms.Select):
    """A select of many options (every project, every owner) written out in Python.

    The same markup as Django's select; its template renders each option on
    its own, about 0.1 ms apiece: 50 ms of All Tasks at 500 projects (issue 20).
    """

    def render(self, name, value, attrs=None, renderer=None):
        widget = self.get_context(name, value, attrs)["widget"]
        options = format_html_join(
            "\n", '<option value="{}"{}>{}</option>',
            ((option["value"], mark_safe(" selected") if option["selected"] else "", option["label"])
             for _, group, _ in widget["optgroups"] for option in group),
        )
        return format_html('<select name="{}"{}>\n{}\n</select>', widget["name"], flatatt(widget["attrs"]), options)


class TaskFilter(django_filters.FilterSet):
    q = search_box("task or project name", "name", "project__name")
    project = django_filters.ModelChoiceFilter(label="Project", queryset=Project.objects.only("id", "name"), empty_label="All projects",
                                               widget=LongSelect)
    owner = django_filters.ModelChoiceFilter(label="Owner", field_name="project__owner", queryset=owners(), empty_label="All owners",
                                             widget=LongSelect)
    status = django_filters.ChoiceFilter(label="Last run", choices=STATUS_CHOICES, method="by_status", empty_label="Any status")
    source = django_filters.ChoiceFilter(label="Source", field_name="source_kind", choices=SourceKind.choices, empty_label="Any source")
    enabled = django_filters.ChoiceFilter(label="Enabled", choices=ENABLED_CHOICES, method="by_enabled", empty_label="Enabled or not")

    class Meta:
        model = Task
        fields: list[str] = []

    def by_enabled(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(enabled=value == "true")

    def by_status(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        # `last_status` is the latest-run annotation of runs/queries.py.
        if value == NEVER_RUN:
            return queryset.filter(last_status__isnull=True)
        return queryset.filter(last_status=value)


class ProjectFilter(django_filters.FilterSet):
    q = search_box("project name or description", "name", "description")
    owner = django_filters.ModelChoiceFilter(label="Owner", queryset=owners(), empty_label="All owners", widget=LongSelect)

    class Meta:
        model = Project
        fields: list[str] = []


class MyTaskFilter(TaskFilter):
    """My Tasks: the owner is always the current user, so there is no owner filter."""

    owner = None
