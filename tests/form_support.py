"""Forms submitted as a person does: GET the page, take what the browser would send, change a few fields, POST.

`browser_form` reads the page's HTML with the browser's rules that matter
here: disabled fields and the contents of <template> are not sent, a
checkbox only when checked, a select its selected option (else its first), a
textarea its text without the one newline that follows the opening tag.

The request builders below (each returns `case(client, world)`) are the
routes by which a task's code can be created or changed: the task pages and
the copies. The admin has none: its task pages lead to Courier's.
"""

from __future__ import annotations

from html.parser import HTMLParser

from django.urls import reverse

from tests.security_support import CodeWorld

NOT_SENT = {"submit", "button", "reset", "image", "file"}


class _FormReader(HTMLParser):
    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = self.found = False
        self.templates = 0
        self.fields: list[tuple[str, str]] = []
        self.disabled: set[str] = set()
        self._textarea: tuple[str, list[str]] | None = None
        self._select: tuple[str, list[tuple[str, bool]], bool] | None = None
        self._option: tuple[str | None, bool, list[str]] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("id") == self.form_id:
            self.inside = self.found = True
        if not self.inside:
            return
        if tag == "template":
            self.templates += 1
        if self.templates or tag not in ("input", "textarea", "select", "option"):
            return
        name = attrs.get("name")
        if tag != "option" and "disabled" in attrs:
            self.disabled.add(name)
            return
        if tag == "input":
            self._input(name, attrs)
        elif tag == "textarea":
            self._textarea = (name, [])
        elif tag == "select":
            self._select = (name, [], "multiple" in attrs)
        elif tag == "option" and self._select is not None:
            self._option = (attrs.get("value"), "selected" in attrs and "disabled" not in attrs, [])

    def _input(self, name: str | None, attrs: dict) -> None:
        kind = (attrs.get("type") or "text").lower()
        if not name or kind in NOT_SENT or (kind in ("checkbox", "radio") and "checked" not in attrs):
            return
        self.fields.append((name, attrs.get("value") or ("on" if kind in ("checkbox", "radio") else "")))

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1].append(data)
        if self._option is not None:
            self._option[2].append(data)

    def handle_endtag(self, tag):
        if not self.inside:
            return
        if tag == "form":
            self.inside = False
        elif tag == "template":
            self.templates -= 1
        elif tag == "textarea" and self._textarea is not None:
            name, parts = self._textarea
            text = "".join(parts)
            self.fields.append((name, text[1:] if text.startswith("\n") else text))
            self._textarea = None
        elif tag == "option" and self._option is not None:
            value, selected, parts = self._option
            self._select[1].append((value if value is not None else "".join(parts).strip(), selected))
            self._option = None
        elif tag == "select" and self._select is not None:
            name, options, multiple = self._select
            # A single select sends its first option when none is selected; a multiple one sends nothing.
            chosen = [value for value, selected in options if selected] or ([] if multiple else [value for value, _ in options[:1]])
            self.fields += [(name, value) for value in chosen]
            self._select = None


def browser_form(html: str, form_id: str) -> tuple[dict[str, str], set[str]]:
    """(what the browser would send, the names of the disabled fields) for the form with this id."""
    reader = _FormReader(form_id)
    reader.feed(html)
    assert reader.found, f"no <form id={form_id!r}> on the page"
    return dict(reader.fields), reader.disabled


class Conn(str):
    """A change that names a connection of the world by kind; its primary key is sent."""


def _resolve(changes: dict, w: CodeWorld) -> dict:
    return {key: w.conns[value].pk if isinstance(value, Conn) else value for key, value in changes.items()}


def form_on(client, url: str) -> dict:
    """What the browser sends for the page's task form, untouched (disabled fields left out)."""
    response = client.get(url)
    assert response.status_code == 200, f"GET {url}: {response.status_code}"
    return browser_form(response.content.decode(), "task_form")[0]


def page_edit(task: str, **changes):
    def case(client, w: CodeWorld):
        url = reverse("courier:task_edit", args=[w.tasks[task].pk])
        return client.post(url, {**form_on(client, url), **_resolve(changes, w)})

    return case


def page_new(**changes):
    def case(client, w: CodeWorld):
        url = reverse("courier:task_new", args=[w.project.pk])
        base = {"name": "new", "source_connection": w.conns["database"].pk, "query-text": "select 3 as three"}
        return client.post(url, {**form_on(client, url), **base, **_resolve(changes, w)})

    return case


def duplicate(task: str):
    return lambda client, w: client.post(reverse("courier:task_action", args=[w.tasks[task].pk, "duplicate"]))


def project_duplicate(client, w: CodeWorld):
    return client.post(reverse("courier:project_action", args=[w.project.pk, "duplicate"]))


def typed_in(client, url: str, form_id: str, **typed):
    """GET the page, type or pick the given values, POST what the browser sends and follow the redirect.

    A value of None unticks a checkbox (the browser then sends nothing for it).
    """
    page = client.get(url)
    assert page.status_code == 200, f"GET {url}: {page.status_code}"
    data = browser_form(page.content.decode(), form_id)[0]
    data.update(typed)
    return client.post(url, {key: value for key, value in data.items() if value is not None}, follow=True)
