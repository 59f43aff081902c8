"""When the COPY fast path is taken, when it steps aside (and says why), and how its failures read (runs/pipeline/pgcopy.py).

Real runs on a real PostgreSQL. A run that steps aside writes what the ODBC
path writes, and its log names the reason; a query that fails once COPY runs
fails the run as through ODBC, without a second attempt through ODBC.
"""

from __future__ import annotations

import psycopg
import pytest
from django.urls import reverse

from connections.clients import postgres
from connections.models import Connection
from runs.models import RunStatus
from tests import factories
from tests.database_support import csv_of, database, run_query
from tests.delivery_support import log_text
from tests.form_support import browser_form

pytestmark = pytest.mark.django_db

FAST = "Reading through PostgreSQL's COPY"
ODBC = "Reading through ODBC, not PostgreSQL's COPY"


def sql_admin(db, *statements: str) -> None:
    with psycopg.connect(host="127.0.0.1", dbname=db.name, user=db.user, password=db.password, autocommit=True) as cnxn:
        for statement in statements:
            cnxn.execute(statement)


@pytest.fixture
def people(pg_odbc):
    sql_admin(pg_odbc, "DROP TABLE IF EXISTS people", "CREATE TABLE people (id int, name text, born date, spot point)",
              "INSERT INTO people VALUES (1, 'Ann', '1990-01-02', '(1,2)'), (2, 'O''Brien \\ x', NULL, NULL), (3, '', '2001-12-31', NULL)")
    return pg_odbc


def test_bound_parameters_and_a_trailing_semicolon_go_through_copy_as_the_odbc_driver_binds_them(people):
    sql = "SELECT id, name, :tag AS tag FROM people WHERE id >= :low AND name <> :name ORDER BY id; -- done\n"
    params = {"low": "2", "name": "Ann", "tag": "it's \\ a \"tag\""}
    fast = run_query(database(people), sql, params)
    assert fast.status == RunStatus.SUCCEEDED, fast.error
    assert FAST in log_text(fast)
    assert csv_of(fast) == 'id,name,tag\n2,O\'Brien \\ x,"it\'s \\ a ""tag"""\n3,,"it\'s \\ a ""tag"""\n'
    off = factories.connection("database", name="odbc-only", dialect="postgresql", odbc=people.odbc, copy_export=False)
    assert csv_of(run_query(off, sql, params, name="through odbc")) == csv_of(fast)


@pytest.mark.parametrize(("fields", "sql", "why"), [
    ({"output_quoting": "none"}, "SELECT id, name FROM people ORDER BY id", "quoting “none” escapes values"),
    ({"output_encoding": "latin-1"}, "SELECT id, name FROM people ORDER BY id", "the output is latin-1"),
    ({}, "SELECT id, spot FROM people ORDER BY id", "does not know how the ODBC driver writes the type of “spot” (point)"),
    ({}, "SHOW server_encoding", "COPY cannot wrap this query"),
    ({}, "SELECT 1 AS one\nGO\nSELECT 2 AS two", "the query runs in several batches"),
])
def test_what_copy_cannot_write_the_same_goes_through_odbc_and_the_log_says_why(people, fields, sql, why):
    run = run_query(database(people), sql, **fields)
    assert run.status == RunStatus.SUCCEEDED, run.error
    log = log_text(run)
    assert f"{ODBC}: " in log and why in log and FAST not in log
    assert run.files.get().size > 0


def test_an_odbc_option_the_fast_path_does_not_know_sends_the_run_through_odbc_without_showing_values(people):
    conn = factories.connection("database", name="bools", dialect="postgresql", odbc=people.odbc + "BoolsAsChar=0;Pwd=Hidden-9;")
    run = run_query(conn, "SELECT id, id > 1 AS big FROM people ORDER BY id")
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert f"{ODBC}: the ODBC connection string sets boolsaschar" in log_text(run)
    assert csv_of(run) == "id,big\n1,False\n2,True\n3,True\n"  # psqlodbc's BoolsAsChar=0: what the fast path would not have written


def test_switching_the_fast_path_off_in_the_connections_admin_page_sends_runs_through_odbc(people, client, superuser):
    conn = database(people)
    client.force_login(superuser)
    url = reverse("admin:connections_connection_change", args=[conn.pk])
    form, _ = browser_form(client.get(url).content.decode(), "connection_form")
    assert form.pop("copy_export") == "on"  # on by default; the person unticks it
    assert client.post(url, form, follow=True).status_code == 200
    assert Connection.objects.get(pk=conn.pk).copy_export is False
    run = run_query(Connection.objects.get(pk=conn.pk), "SELECT id FROM people ORDER BY id")
    assert f"{ODBC}: it is switched off for this connection." in log_text(run)
    assert csv_of(run) == "id\n1\n2\n3\n"


def test_a_query_that_fails_inside_copy_fails_the_run_once_with_the_servers_reason(people):
    run = run_query(database(people), "SELECT id, 10 / (id - 2) AS q FROM people ORDER BY id")
    assert run.status == RunStatus.FAILED
    assert run.error == "The query on Acme/postgresql-db failed [22012]: division by zero" and run.permanent
    log = log_text(run)
    assert FAST in log and ODBC not in log  # not run a second time through ODBC


def test_the_connections_query_timeout_stops_a_copy(people):
    run = run_query(database(people, query_timeout=1), "SELECT id FROM people CROSS JOIN pg_sleep(5) AS pause")
    assert run.status == RunStatus.FAILED and not run.permanent
    assert run.error.startswith("The query on Acme/postgresql-db was stopped by the query timeout of 1 s set on the connection [57014]: ")
    assert FAST in log_text(run)


def test_a_read_only_connection_refuses_a_query_that_writes_as_through_odbc(people):
    sql_admin(people, "DROP SEQUENCE IF EXISTS tickets", "CREATE SEQUENCE tickets")
    conn = database(people, read_only=True)
    run = run_query(conn, "SELECT nextval('tickets') AS ticket, id FROM people")
    assert run.status == RunStatus.FAILED and run.permanent
    assert "tried to change data, but the connection is read only [25006]" in run.error
    assert FAST in log_text(run)
    with psycopg.connect(host="127.0.0.1", dbname=people.name, user=people.user, password=people.password) as cnxn:
        assert cnxn.execute("SELECT is_called FROM tickets").fetchone() == (False,)  # never advanced
    fine = run_query(conn, "SELECT id FROM people ORDER BY id", name="reads")
    assert fine.status == RunStatus.SUCCEEDED and FAST in log_text(fine)


# --------------------------------------------------------------------------
# Reading the ODBC string
# --------------------------------------------------------------------------


def test_the_libpq_settings_come_from_a_psqlodbc_unicode_string_braces_and_all():
    settings = postgres.libpq_settings("Driver={PostgreSQL Unicode};Server=db.example;Port=5433;Database={a;b};"
                                       "Uid=etl;Pwd={p}}w;d};UseDeclareFetch=1;Fetch=5000;SSLmode=require;")
    assert settings == {"host": "db.example", "port": "5433", "dbname": "a;b", "user": "etl", "password": "p}w;d", "sslmode": "require"}
    assert postgres.libpq_settings("DRIVER=psqlodbcw.so;SERVERNAME=h;UserName=u")["sslmode"] == "disable"  # psqlodbc's default


@pytest.mark.parametrize(("odbc", "why"), [
    ("DSN=warehouse;Uid=u;Pwd=x", "sets dsn"),
    ("Driver={PostgreSQL ANSI};Server=h", "not psqlodbc's Unicode driver"),
    ("Driver={PostgreSQL Unicode};Database=d", "names no server"),
    ("Driver={PostgreSQL Unicode};Server=h;Pwd={open", "not closed"),
    ("Driver={PostgreSQL Unicode};Server=h;ConnSettings=set x=1", "sets connsettings"),
])
def test_a_string_the_fast_path_cannot_read_exactly_is_unsupported(odbc, why):
    with pytest.raises(postgres.Unsupported, match=why):
        postgres.libpq_settings(odbc)


def test_a_login_refused_through_libpq_is_reported_by_the_odbc_driver_as_before(people):
    conn = factories.connection("database", name="wrong", dialect="postgresql",
                                odbc=people.odbc.replace(f"Database={people.name}", "Database=no_such_database"))
    run = run_query(conn, "SELECT 1 AS one")
    assert run.status == RunStatus.FAILED
    assert f"{ODBC}: logging in through libpq failed (" in log_text(run)
    assert run.error.startswith("Connecting on Acme/wrong failed [08001]: ") and "no_such_database" in run.error  # psqlodbc's words
