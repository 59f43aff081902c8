"""Admin for tasks: they live on Courier's pages (All tasks, Task Details, New/Edit Task), and the admin's lead there.

The admin's task list, add, change and delete pages answer with Courier's
(etlsite.pages.LeadsToCourierPages), so a link to a task from anywhere in the
admin — a run's page, the recent actions, the audit trail — ends on Task
Details, and every task is saved through one form with one set of checks
(tasks/forms.py, tasks/validation.py). The admin keeps a task's history page.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest
from django.urls import reverse

from etlsite.pages import LeadsToCourierPages
from projects.models import Project
from tasks.models import Task


@admin.register(Task)
class TaskAdmin(LeadsToCourierPages, admin.ModelAdmin):
    list_page, detail_page, delete_page = "courier:task_list", "courier:task_detail", "courier:task_delete"

    def add_page_url(self, request: HttpRequest) -> str:
        project = request.GET.get("project", "")
        if project.isdigit() and Project.objects.filter(pk=project).exists():
            return reverse("courier:task_new", args=[project])
        messages.info(request, "A task is made inside its project: open the project and choose “New task”.")
        return reverse("courier:project_list")
