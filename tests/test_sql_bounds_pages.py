"""A query its connection would refuse (SPEC 8.2) is shown as such before it runs: Task Details and preview_task."""

from __future__ import annotations

import html

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from tests import factories

pytestmark = pytest.mark.django_db

SQL = "SELECT 1 AS warm_up\nGO\nATTACH DATABASE '/srv/courier/var/courier.sqlite3' AS c\nGO\nSELECT session_key FROM c.django_session"
REFUSAL = ("The query may not run on Acme/lite: SQLite connections may not run ATTACH statements "
           "(statement 2: ATTACH DATABASE '/srv/courier/var/courier.sqlite3' AS c).")


@pytest.fixture
def task(staff_runner):
    conn = factories.connection("database", name="lite", dialect="sqlite", odbc="Driver={SQLite3};Database=/x;")
    return factories.query_task(factories.project("Sales", owner=staff_runner), conn, SQL, name="attach")


def test_task_details_shows_the_refusal_and_the_sql(client, staff_runner, task):
    client.force_login(staff_runner)
    page = client.get(reverse("courier:task_detail", args=[task.pk])).content.decode()
    assert f'<p class="errornote">{REFUSAL}</p>' in html.unescape(page)
    assert "SELECT session_key FROM c.django_session" in html.unescape(page.split('id="sql-preview">')[1])


def test_preview_task_fails_with_the_refusal(task, capsys):
    with pytest.raises(CommandError) as error:
        call_command("preview_task", "Sales/attach", "--sql")
    assert str(error.value) == REFUSAL and error.value.returncode == 1
    assert capsys.readouterr().out == ""
