"""`manage.py preview_task`: the SQL exactly as it will run (SQL Server path included) and the file names."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from projects.models import ProjectParameter
from tasks.models import TaskParameter
from tests import factories

pytestmark = pytest.mark.django_db

# A SQL Server script as people write them in SSMS. There is no SQL Server
# here: the prepared text is what is checked (the driver path is tested in
# test_sources_database.py).
SCRIPT = """USE Sales;
GO
-- GO and USE inside comments and strings stay: GO
DECLARE @from date = getdate()
DECLARE @key varchar(40) = 'none'
SELECT 'USE x; GO' AS note, * FROM dbo.orders WHERE day >= @from AND api_key = @key
GO
SELECT 2
"""
PREPARED = """SET NOCOUNT ON;
-- GO and USE inside comments and strings stay: GO
DECLARE @from date = '2024-02-28'
DECLARE @key varchar(40) = ********
SELECT 'USE x; GO' AS note, * FROM dbo.orders WHERE day >= @from AND api_key = @key
GO
SELECT 2"""


@pytest.fixture
def mssql_task():
    conn = factories.connection("database", name="mssql", dialect="mssql", odbc="Driver={FreeTDS};Server=db.example;Port=1433;")
    task = factories.query_task(factories.project(name="Sales", timezone="Europe/Amsterdam"), conn, SCRIPT,
                                name="orders", output_name="orders_%Y%m%d-1_CLIENT")
    ProjectParameter.objects.create(project=task.project, key="CLIENT", value="acme")
    TaskParameter.objects.create(task=task, key="@from", value="'parse(%Y-%m-%d-1)'")
    secret = TaskParameter(task=task, key="@key", position=1)
    secret.set_value("'k-Super-Secret-77'", sensitive=True)
    secret.save()
    return task


def test_sql_for_sql_server_is_prepared_and_masked(mssql_task, capsys):
    call_command("preview_task", "Sales/orders", "--sql", "--at", "2024-02-29T06:00")
    out = capsys.readouterr().out
    # CLIENT serves the file name only: the SQL preview names it as a parameter the SQL does not use.
    assert out == PREPARED + "\n-- Parameters the SQL does not use: CLIENT\n"
    assert "Super-Secret" not in out


def test_file_names_at_a_given_time(mssql_task, capsys):
    # 00:30 UTC on 1 March is 01:30 in Amsterdam: yesterday there is 29 February (a leap day).
    call_command("preview_task", str(mssql_task.pk), "--filename", "--at", "2024-03-01T00:30+00:00")
    assert capsys.readouterr().out == "orders_20240229_acme.csv\n"


def test_without_flags_both_are_printed_with_headings(mssql_task, capsys):
    call_command("preview_task", "Sales/orders", "--at", "2024-02-29")
    out = capsys.readouterr().out
    assert out.startswith("-- SQL for a run intended at 2024-02-29 00:00 CET\nSET NOCOUNT ON;\n")
    assert out.endswith("-- File names for a run intended at 2024-02-29 00:00 CET\norders_20240228_acme.csv\n")


def test_sensitive_value_in_a_file_name_is_masked(mssql_task, capsys):
    mssql_task.output_name = "orders_@key"
    mssql_task.save()
    call_command("preview_task", "Sales/orders", "--filename", "--at", "2024-02-29")
    assert capsys.readouterr().out == "orders_********.csv\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Sales/nope"], "No task “Sales/nope”"),
        (["Sales/orders", "--at", "yesterday"], "--at “yesterday” is not an ISO date and time"),
    ],
)
def test_bad_input_exits_2_with_one_line(mssql_task, args, message):
    with pytest.raises(CommandError) as failure:
        call_command("preview_task", *args)
    assert failure.value.returncode == 2
    assert message in str(failure.value) and "\n" not in str(failure.value)


def test_sql_of_a_file_task_is_bad_input():
    conn = factories.connection("ftp", host="ftp.example")
    task = factories.query_task(factories.project(), None, "", name="files")
    task.source_kind, task.source_connection, task.source_path = "ftp", conn, "in/*.csv"
    task.save()
    with pytest.raises(CommandError) as failure:
        call_command("preview_task", "Nightly/files", "--sql")
    assert failure.value.returncode == 2
    assert "not a query" in str(failure.value)


def test_sql_that_cannot_be_prepared_fails_with_1(mssql_task):
    mssql_task.code_locations.update(text="SELECT 1\nGO 5\n")
    with pytest.raises(CommandError) as failure:
        call_command("preview_task", "Sales/orders", "--sql")
    assert failure.value.returncode == 1
    assert "GO" in str(failure.value)
