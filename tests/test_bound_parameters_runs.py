""":name placeholders bound by real drivers on real PostgreSQL, MariaDB and SQLite (SPEC 6, issue 17).

Each test runs a task the way the worker does and reads what arrived in the
output file; tables are read back over a connection of the test's own.
"""

from __future__ import annotations

import zoneinfo

import pytest

from projects.models import ProjectParameter
from runs.models import RunStatus
from runs.runner import execute
from runs.state import create_run
from tasks.models import TaskParameter
from tests import factories
from tests.database_support import csv_of, database, rows_of, run_query, seed

pytestmark = pytest.mark.django_db

# Quotes of both kinds, a backslash, a positional marker and a statement of its own.
EVIL = "O'Brien \\ \"q\" $1 ; drop table x; --"
PEOPLE = [(1, "Ann"), (2, "Bob"), (3, "Zoë"), (4, EVIL)]


@pytest.fixture(params=["pg_odbc", "mariadb_odbc", "sqlite_odbc"])
def db(request):
    return request.getfixturevalue(request.param)


def log_of(run) -> str:
    return "\n".join(run.log_lines.values_list("message", flat=True))


def test_placeholders_in_where_in_and_limit_used_several_times(db):
    seed(db, "people", PEOPLE)
    sql = "SELECT id, :tag AS tag FROM people WHERE id IN (:a, :b, :c) AND name <> :tag ORDER BY id LIMIT :top"
    run = run_query(database(db, read_only=True), sql, {"a": "1", "@b": "2", "#c": "4", "tag": "x", "$TOP": "2"})
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert csv_of(run) == "id,tag\n1,x\n2,x\n"
    assert 'Bound as text: :tag = "x", :a = "1", :b = "2", :c = "4", :top = "2".' in log_of(run)


def test_a_hostile_value_is_bound_as_one_harmless_value(db):
    seed(db, "people", PEOPLE)
    seed(db, "x", [(1, "keep")])
    run = run_query(database(db), "SELECT id FROM people WHERE name = :evil", {"evil": EVIL})
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert csv_of(run) == "id\n4\n"
    assert rows_of(db, "x") == [(1, "keep")]  # "; drop table x" was never SQL


@pytest.mark.parametrize(
    ("fixture", "sql", "expected"),
    [
        ("pg_odbc", "SELECT '7'::int + :n::int AS total, CAST(:n AS int) * 2 AS twice", "total,twice\n12,10\n"),
        ("mariadb_odbc", "SET @acc := 2;\nSELECT @acc := @acc + 1 AS acc, @acc + CAST(:n AS signed) AS total", "acc,total\n3,8\n"),
    ],
)
def test_casts_and_assignments_are_left_alone(fixture, sql, expected, request):
    run = run_query(database(request.getfixturevalue(fixture)), sql, {"n": "5"})
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert csv_of(run) == expected


@pytest.mark.parametrize(
    ("fixture", "sql", "header"),
    [
        ("pg_odbc", "SELECT ':gone' AS s, $$:gone$$ AS d, :tag AS \"c :gone\" -- :gone\n/* :gone */", "s,d,c :gone"),
        ("mariadb_odbc", "SELECT ':gone' AS s, \":gone\" AS d, :tag AS `c :gone` # :gone\n-- :gone\n/* :gone */", "s,d,c :gone"),
        ("sqlite_odbc", "SELECT ':gone' AS s, :tag AS [d :gone], :tag AS `c :gone` -- :gone\n/* :gone */", "s,d :gone,c :gone"),
    ],
)
def test_placeholders_inside_strings_comments_and_quoted_names_are_left_alone(fixture, sql, header, request):
    # There is no parameter "gone": any :gone read as a placeholder would stop the run.
    run = run_query(database(request.getfixturevalue(fixture)), sql, {"tag": "x"})
    assert run.status == RunStatus.SUCCEEDED, run.error
    first_row = ":gone,:gone,x" if fixture != "sqlite_odbc" else ":gone,x,x"
    assert csv_of(run) == f"{header}\n{first_row}\n"


def test_a_parse_value_is_bound_as_its_text(db):
    # "%m-01" shifts the month back by one (SPEC 6.1): "2026-10", which pasted into SQL would be 2016.
    params = {"start": "parse(%Y-%m-01)", "first": "parse(%Y-%m-firstday0)"}
    run = run_query(database(db), "SELECT :start AS start, :first AS first_day", params)
    assert run.status == RunStatus.SUCCEEDED, run.error
    intended = run.intended_at.astimezone(zoneinfo.ZoneInfo(run.task.project.timezone))
    year, month = divmod(intended.year * 12 + intended.month - 2, 12)
    assert csv_of(run) == f"start,first_day\n{year:04d}-{month + 1:02d},{intended:%Y-%m}-01\n"


def test_each_go_batch_binds_its_own_placeholders(db):
    sql = (
        "CREATE TEMPORARY TABLE staged (w VARCHAR(20))\nGO\n"
        "INSERT INTO staged VALUES (:first)\nGO\n"
        "INSERT INTO staged VALUES (:second), (:first)\nGO\n"
        "SELECT w FROM staged ORDER BY w\n"
    )
    run = run_query(database(db), sql, {"first": "a", "second": "b"})
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert csv_of(run) == "w\na\na\nb\n"
    assert "(4 batches)" in log_of(run)


@pytest.mark.parametrize("fixture", ["pg_odbc", "mariadb_odbc"])
def test_placeholders_in_later_statements_of_one_batch(fixture, request):
    # MariaDB's driver binds only a batch's first statement: Courier runs such a batch statement by statement.
    sql = "CREATE TEMPORARY TABLE staged (w VARCHAR(20)); INSERT INTO staged VALUES (:first); SELECT w, :second AS s FROM staged"
    run = run_query(database(request.getfixturevalue(fixture)), sql, {"first": "a", "second": "b"})
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert csv_of(run) == "w,s\na,b\n"


def test_a_placeholder_whose_parameter_was_removed_fails_the_run_for_good(sqlite_odbc):
    project = factories.project("Sales")
    param = ProjectParameter.objects.create(project=project, key="country", value="NL")
    task = factories.query_task(project, database(sqlite_odbc), "SELECT 1 AS one\nWHERE :country = 'NL'", output_name="o.csv")
    param.delete()
    run = create_run(task, "manual")
    execute(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.permanent is True
    assert "No parameter for the placeholder :country (line 2)" in run.error


def test_a_sensitive_value_is_bound_and_masked_in_the_log(sqlite_odbc):
    seed(sqlite_odbc, "people", PEOPLE)
    task = factories.query_task(factories.project(), database(sqlite_odbc), "SELECT id FROM people WHERE name = :who", output_name="o.csv")
    secret = TaskParameter(task=task, key="who", position=0)
    secret.set_value("Zoë", sensitive=True)
    secret.save()
    run = create_run(task, "manual")
    execute(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert csv_of(run) == "id\n3\n"
    assert "Bound as text: :who = ********." in log_of(run)
    assert "Zoë" not in log_of(run)
