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


class TaskFilter(django_filters.FilterSet):
    q = search_box("task or project name", "name", "project__name")
    project = django_filters.ModelChoiceFilter(label="Project", queryset=Project.objects.only("id", "name"), empty_label="All projects")
    owner = django_filters.ModelChoiceFilter(label="Owner", field_name="project__owner", queryset=owners(), empty_label="All owners")
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
    owner = django_filters.ModelChoiceFilter(label="Owner", queryset=owners(), empty_label="All owners")

    class Meta:
        model = Project
        fields: list[str] = []


class MyTaskFilter(TaskFilter):
    """My Tasks: the owner is always the current user, so there is no owner filter."""

    owner = None
