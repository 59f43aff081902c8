"""Courier's URLs: everything lives inside the Django admin."""
from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

admin.site.site_header = "Courier"
admin.site.site_title = "Courier"
admin.site.index_title = "Scheduled data extracts"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
]
