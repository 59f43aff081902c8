"""Courier's URLs: everything lives inside the Django admin.

The Courier pages sit under /admin/courier/ and are wrapped by
`admin.site.admin_view`: the admin's login, staff check, CSRF protection and
no-cache headers apply to them exactly as to the admin's own pages. They come
before `admin.site.urls` so the admin's catch-all never hides them.
"""

from __future__ import annotations

from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from projects import views as project_views
from runs import views as run_views
from tasks import views as task_views

admin.site.site_header = "Courier"
admin.site.site_title = "Courier"
admin.site.index_title = "Scheduled data extracts"


def page(route: str, view, name: str):
    return path(route, admin.site.admin_view(view), name=name)


courier_patterns = [
    page("", run_views.dashboard, "dashboard"),
    page("run-errored/", run_views.run_errored, "run_errored"),
    page("scheduler/", run_views.scheduler_tools, "scheduler"),
    page("scheduler/<slug:action>/", run_views.scheduler_action, "scheduler_action"),
    page("runs/<int:pk>/log/", run_views.run_log, "run_log"),
    page("files/<int:pk>/resend/", run_views.file_resend, "file_resend"),
    page("files/<int:pk>/download/", run_views.download_run_file, "runfile_download"),
    page("tasks/", task_views.task_list, "task_list"),
    page("tasks/mine/", task_views.my_tasks, "my_tasks"),
    page("tasks/<int:pk>/", task_views.task_detail, "task_detail"),
    page("tasks/<int:pk>/live/", task_views.task_live, "task_live"),
    page("tasks/<int:pk>/edit/", task_views.task_edit, "task_edit"),
    page("tasks/<int:pk>/delete/", task_views.task_delete, "task_delete"),
    page("tasks/<int:pk>/<slug:action>/", task_views.task_action, "task_action"),
    page("projects/", project_views.project_list, "project_list"),
    page("projects/mine/", project_views.my_projects, "my_projects"),
    page("projects/new/", project_views.project_new, "project_new"),
    page("projects/<int:pk>/", project_views.project_detail, "project_detail"),
    page("projects/<int:pk>/edit/", project_views.project_edit, "project_edit"),
    page("projects/<int:pk>/delete/", project_views.project_delete, "project_delete"),
    page("projects/<int:project_pk>/new-task/", task_views.task_new, "task_new"),
    page("projects/<int:pk>/<slug:action>/", project_views.project_action, "project_action"),
]


def app_page(app_label: str, list_page: str):
    """The admin's page of an app whose objects live on Courier's pages (etlsite.pages.LeadsToCourierPages): Courier's list.

    The admin still links it (from the breadcrumbs of an object's history page) though its app list leaves the app out.
    """
    return path(f"admin/{app_label}/", admin.site.admin_view(RedirectView.as_view(pattern_name=list_page)))

handler403 = "etlsite.errors.permission_denied"
handler404 = "etlsite.errors.page_not_found"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # Browsers ask for /favicon.ico on their own; the pages also link the file.
    path("favicon.ico", RedirectView.as_view(url=static("courier/favicon.ico"), permanent=True)),
    path("admin/courier/", include((courier_patterns, "courier"))),
    app_page("projects", "courier:project_list"),
    app_page("tasks", "courier:task_list"),
    path("admin/", admin.site.urls),
]
