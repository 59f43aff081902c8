"""Admin for organizations, connections and GPG keys: superusers only (SPEC §7)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit, urlunsplit

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from connections.checks import check_connection
from connections.clients.ssh_transport import host_address
from connections.forms import ConnectionForm, GpgKeyForm, secret_field_names
from connections.host_keys import PinRefused, host_key_fingerprint, pending_fingerprint, pending_key, pin_host_key
from connections.kinds import KINDS
from connections.models import Connection, GpgKey, Organization

# The kind, and what the add page's general fields held when the kind was chosen (changeform_view).
CARRIED = ("kind", "organization", "name", "description")
# The change page's button; help texts and error messages name it so (connections/clients/ssh_transport.py too).
TEST_LABEL = "Test connection"


class SuperuserOnly:
    """Only superusers may see or change these objects; staff pick connections by name on tasks."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    has_add_permission = has_change_permission = has_delete_permission = has_view_permission


@admin.register(Organization)
class OrganizationAdmin(SuperuserOnly, admin.ModelAdmin):
    list_display = ["name", "contact_name", "contact_email", "contact_phone"]
    search_fields = ["name", "contact_name"]
    readonly_fields = ["connection_list"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ["name", "description", "address"]}),
            ("Contact", {"fields": ["contact_name", "contact_email", "contact_phone"]}),
        ]
        return [*fieldsets, ("Connections", {"fields": ["connection_list"]})] if obj else fieldsets

    @admin.display(description="connections")
    def connection_list(self, obj):
        links = format_html_join(
            ", ", '<a href="{}">{} ({})</a>',
            ((reverse("admin:connections_connection_change", args=[c.pk]), c.name, c.get_kind_display())
             for c in obj.connections.order_by("name")),
        )
        add = f"{reverse('admin:connections_connection_add')}?{urlencode({'organization': obj.pk})}"
        return format_html('{}<br><a href="{}">Add a connection</a>', links or "No connection yet.", add)


def report_test(modeladmin, request, conn: Connection) -> None:
    """“Test connection”: really connect, keep the outcome in the connection's history and say it on the page.

    An SFTP/SSH server without a pinned key only shows its key: a warning, since pinning it is the next step.
    """
    result = check_connection(conn)
    modeladmin.log_change(request, conn, f"Tested: {'passed' if result.ok else 'failed'}. {result.message}")
    level = messages.SUCCESS if result.ok else messages.WARNING if pending_fingerprint(conn) else messages.ERROR
    modeladmin.message_user(request, result.message, level)


@admin.action(description="Test the selected connections")
def test_connections(modeladmin, request, queryset):
    for conn in queryset.select_related("organization"):
        report_test(modeladmin, request, conn)


@admin.register(Connection)
class ConnectionAdmin(SuperuserOnly, admin.ModelAdmin):
    form = ConnectionForm
    list_display = ["__str__", "kind", "host", "username", "test_ok", "tested_at", "updated_at"]
    list_filter = ["kind", "organization"]
    search_fields = ["name", "organization__name", "host"]
    list_select_related = ["organization"]
    actions = [test_connections]
    readonly_fields = ["used_by", "host_key_fingerprint", "tested_at", "test_ok", "test_message"]

    class Media:
        css = {"all": ["courier/connection_admin.css"]}

    def get_object(self, request, object_id, from_field=None):
        # A kind chosen on the change page (?kind=, see changeform_view) is shown, and saved with its settings.
        obj = super().get_object(request, object_id, from_field)
        if obj is not None and request.GET.get("kind") in KINDS:
            obj.kind = request.GET["kind"]
        return obj

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """Saving with a kind other than the one whose settings the page shows shows that kind's settings instead.

        Nothing is saved then, since the page had no inputs for the new kind's
        settings; on the add page, what was typed in the general fields comes along.
        """
        if request.method == "POST" and request.POST.get("kind") in KINDS:
            obj = self.get_object(request, unquote(object_id)) if object_id else None
            allowed = self.has_change_permission(request, obj) if obj else self.has_add_permission(request)
            shown = obj.kind if obj else request.GET.get("kind")
            if allowed and (object_id is None or obj is not None) and request.POST["kind"] != shown:
                return self._show_settings(request, request.POST["kind"], carry=obj is None)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _show_settings(self, request, kind: str, *, carry: bool):
        query = request.GET.copy()
        query["kind"] = kind
        if carry:  # the add page takes them as initial values
            for name in CARRIED[1:]:
                query[name] = request.POST.get(name, "")
        self.message_user(request, f"Now fill in the {KINDS[kind].label} settings and save.", messages.INFO)
        return redirect(f"{request.path}?{urlencode(sorted(query.items()))}")

    def response_add(self, request, obj, post_url_continue=None):
        # The admin keeps the add page's query on the next page; what was carried there has done its work.
        response = super().response_add(request, obj, post_url_continue)
        if isinstance(response, HttpResponseRedirect):
            url = urlsplit(response["Location"])
            kept = [(k, v) for k, v in parse_qsl(url.query, keep_blank_values=True) if k not in CARRIED]
            response["Location"] = urlunsplit(url._replace(query=urlencode(kept)))
        return response

    def get_fieldsets(self, request, obj=None):
        kind = obj.kind if obj else request.GET.get("kind")
        general = (None, {"fields": ["organization", "name", "kind", "description"]})
        if kind not in KINDS:
            return [general, ("Settings", {"description": "Choose the kind and save; its own settings appear then.", "fields": []})]
        fields = list(KINDS[kind].fields)
        for name in KINDS[kind].secrets:
            if obj and obj.__dict__.get(name):
                fields.insert(fields.index(name) + 1, f"clear_{name}")
        if obj and "host_key" in fields:
            fields.insert(fields.index("host_key") + 1, "host_key_fingerprint")
        used = [("Used by", {"fields": ["used_by"]})] if obj else []
        tested = [("Last test", {"fields": ["tested_at", "test_ok", "test_message"]})] if obj else []
        return [general, (f"{KINDS[kind].label} settings", {"fields": fields}), *tested, *used]

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The clear_* boxes are added by the form itself, beside the secret inputs it makes.
        clear_boxes = {f"clear_{name}" for name in secret_field_names(Connection)}
        shown = [f for _, opts in self.get_fieldsets(request, obj) for f in opts["fields"]]
        kwargs["fields"] = [f for f in shown if f not in clear_boxes and f not in self.readonly_fields]
        return super().get_form(request, obj, change, **kwargs)

    @admin.display(description="host key fingerprint")
    def host_key_fingerprint(self, obj):
        if obj.host_key:
            return host_key_fingerprint(obj.host_key)
        if pending := pending_key(obj):
            return (f"Not pinned. The last test read {host_key_fingerprint(pending.line)} from {pending.address} "
                    "without logging in. Check it with the server's administrator, then “Pin this key” above.")
        return (f"Not pinned: nothing is sent to {host_address(obj)} until a key is. “{TEST_LABEL}” above "
                "reads the server's key without logging in and shows its fingerprint here to pin.")

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["pin_fingerprint"] = pending_fingerprint(obj) if obj else ""
        context["test_label"] = TEST_LABEL
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        own = [
            path("<path:object_id>/pin-host-key/", self.admin_site.admin_view(self.pin_host_key_view),
                 name="connections_connection_pin_host_key"),
            path("<path:object_id>/test/", self.admin_site.admin_view(self.test_view), name="connections_connection_test"),
        ]
        return [*own, *super().get_urls()]

    def _connection_to_change(self, request, object_id) -> Connection:
        conn = self.get_object(request, unquote(object_id))
        if conn is None:
            raise Http404("No such connection.")
        if not self.has_change_permission(request, conn):
            raise PermissionDenied
        return conn

    @method_decorator(require_POST)
    def test_view(self, request, object_id):
        """The change page's “Test connection” button: tests the saved settings, then shows the page again."""
        conn = self._connection_to_change(request, object_id)
        report_test(self, request, conn)
        return redirect("admin:connections_connection_change", conn.pk)

    @method_decorator(require_POST)
    def pin_host_key_view(self, request, object_id):
        """“Pin this key”: pins the waiting key only if it is the one whose fingerprint the page showed."""
        conn = self._connection_to_change(request, object_id)
        try:
            message = pin_host_key(conn, request.POST.get("fingerprint", ""))
        except PinRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.log_change(request, conn, message)
            self.message_user(request, message, messages.SUCCESS)
        return redirect("admin:connections_connection_change", conn.pk)

    @admin.display(description="tasks using it")
    def used_by(self, obj):
        """Each task that reads from it, delivers to it or keeps code on it, linked to its Task Details."""
        tasks = {t.pk: t for t in obj.source_tasks.select_related("project")}
        tasks |= {d.task_id: d.task for d in obj.destinations.select_related("task__project")}
        tasks |= {c.task_id: c.task for c in obj.code_locations.select_related("task__project")}
        if not tasks:
            return "No task uses it."
        return format_html_join(", ", '<a href="{}">{}</a>',
                                ((reverse("courier:task_detail", args=[t.pk]), str(t)) for t in sorted(tasks.values(), key=str)))


@admin.register(GpgKey)
class GpgKeyAdmin(SuperuserOnly, admin.ModelAdmin):
    form = GpgKeyForm
    list_display = ["name", "fingerprint", "expires_at"]
    readonly_fields = ["fingerprint", "user_ids", "expires_at"]
    fieldsets = [(None, {"fields": ["name", "public_key"]}), ("Read from the key", {"fields": ["fingerprint", "user_ids", "expires_at"]})]
