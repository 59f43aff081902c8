"""Admin for projects: they live on Courier's pages (All projects, Project details, New/Edit Project), and the admin's lead there.

See etlsite.pages.LeadsToCourierPages; the admin keeps a project's history page.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse

from etlsite.pages import LeadsToCourierPages
from projects.models import Project


@admin.register(Project)
class ProjectAdmin(LeadsToCourierPages, admin.ModelAdmin):
    list_page, detail_page, delete_page = "courier:project_list", "courier:project_detail", "courier:project_delete"

    def add_page_url(self, request: HttpRequest) -> str:
        return reverse("courier:project_new")
