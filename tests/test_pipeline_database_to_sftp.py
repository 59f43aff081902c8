"""The first pipeline path end to end: ODBC query → CSV → stored file → SFTP and local folder."""

from __future__ import annotations

import hashlib

import pyodbc
import pytest

from runs.models import Delivery, Run, RunStatus
from runs.runner import execute
from runs.state import create_run
from tests import factories

pytestmark = pytest.mark.django_db

# SQLite has no exact decimals (it would hand back 0.1 for 0.10), so amounts are text there.
SEED_SQL = [
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer VARCHAR(50), amount {amount}, note VARCHAR(100))",
    "INSERT INTO orders VALUES (1, 'Ann', '10.50', 'plain')",
    "INSERT INTO orders VALUES (2, 'Bob, Jr.', '20.00', 'has \"quotes\"')",
    "INSERT INTO orders VALUES (3, 'Zoë', '0.10', NULL)",
]
EXPECTED_CSV = (
    "id,customer,amount,note\n"
    "1,Ann,10.50,plain\n"
    '2,"Bob, Jr.",20.00,"has ""quotes"""\n'
    "3,Zoë,0.10,\n"
)


def seed(db) -> None:
    cnxn = pyodbc.connect(db.odbc)
    amount = "VARCHAR(10)" if db.dialect == "sqlite" else "DECIMAL(10,2)"
    for sql in SEED_SQL:
        cnxn.execute(sql.format(amount=amount))
    cnxn.commit()
    cnxn.close()


def database(db):
    return factories.connection("database", name=f"{db.dialect}-db", dialect=db.dialect, odbc=db.odbc, query_timeout=60)


def run_task(task) -> Run:
    run = create_run(task, "manual")
    assert execute(run.pk) is not None
    run.refresh_from_db()
    return run


def test_sqlite_query_lands_on_sftp_byte_for_byte(sqlite_odbc, sshd):
    seed(sqlite_odbc)
    task = factories.query_task(factories.project(), database(sqlite_odbc), "select id, customer, amount, note from orders order by id",
                                output_name="orders_%Y")
    factories.destination(task, factories.sftp_connection(sshd), folder="")
    run = run_task(task)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.rows == 3
    record = run.files.get()
    name = f"orders_{run.intended_at:%Y}.csv"
    arrived = (sshd.root / name).read_bytes()
    assert arrived == EXPECTED_CSV.encode("utf-8")
    assert (record.name, record.size, record.rows) == (name, len(arrived), 3)
    assert record.md5 == hashlib.md5(arrived).hexdigest()
    assert record.sha256 == hashlib.sha256(arrived).hexdigest()
    assert record.stored.read() == arrived
    assert Delivery.objects.get(run=run).status == "sent"
    # No temporary upload name is left beside the file.
    assert [p.name for p in sshd.root.iterdir() if p.name.startswith(f".{name}")] == []
    stages = set(run.log_lines.values_list("stage", flat=True))
    assert {"claim", "parameters", "source", "output", "delivery", "finish"} <= stages


def test_postgresql_query_without_header_to_local_folder(pg_odbc, tmp_path):
    seed(pg_odbc)
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    task = factories.query_task(factories.project(), database(pg_odbc), "select id, customer, amount, note from orders order by id",
                                output_name="pg-orders.csv", source_headers=False)
    factories.destination(task, factories.connection("folder", folder=str(outbox)), folder="daily")
    run = run_task(task)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (outbox / "daily" / "pg-orders.csv").read_text(encoding="utf-8") == EXPECTED_CSV.split("\n", 1)[1]


def test_sftp_key_login_and_passphrase_key(sqlite_odbc, sshd):
    seed(sqlite_odbc)
    proj = factories.project()
    source = database(sqlite_odbc)
    for name, key, passphrase in [
        ("plain-key", sshd.client_private_key_text, ""),
        ("rsa-passphrase", sshd.client_key_passphrase_path.read_text(), sshd.passphrase),
    ]:
        conn = factories.sftp_connection(sshd, name=name, password="", private_key=key, key_passphrase=passphrase)
        task = factories.query_task(proj, source, "select id from orders where id = 1", name=name, output_name=f"{name}.csv")
        factories.destination(task, conn)
        run = run_task(task)
        assert run.status == RunStatus.SUCCEEDED, run.error
        assert (sshd.root / f"{name}.csv").read_text() == "id\n1\n"


def test_wrong_pinned_host_key_is_refused_and_nothing_arrives(sqlite_odbc, sshd):
    seed(sqlite_odbc)
    other_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    task = factories.query_task(factories.project(), database(sqlite_odbc), "select 1 as one", output_name="mitm.csv")
    factories.destination(task, factories.sftp_connection(sshd, host_key=other_key))
    run = run_task(task)

    assert run.status == RunStatus.FAILED
    assert run.error_stage == "delivery"
    assert "does not match the key pinned" in run.error
    assert run.permanent is True
    assert not (sshd.root / "mitm.csv").exists()
    assert Delivery.objects.get(run=run).status == "failed"


def test_wrong_sftp_password_fails_without_leaking_it(sqlite_odbc, sshd):
    seed(sqlite_odbc)
    task = factories.query_task(factories.project(), database(sqlite_odbc), "select 1 as one", output_name="nope.csv")
    factories.destination(task, factories.sftp_connection(sshd, password="Wr0ng-Canary-Pass"))
    run = run_task(task)

    assert run.status == RunStatus.FAILED
    assert "refused" in run.error and run.permanent
    everything = run.error + "".join(run.log_lines.values_list("message", flat=True))
    everything += "".join(Delivery.objects.filter(run=run).values_list("error", flat=True))
    assert "Wr0ng-Canary-Pass" not in everything


def test_query_error_is_a_permanent_source_failure(sqlite_odbc):
    task = factories.query_task(factories.project(), database(sqlite_odbc), "select * from no_such_table")
    run = run_task(task)

    assert run.status == RunStatus.FAILED
    assert run.error_stage == "source"
    assert "no_such_table" in run.error
    assert run.files.count() == 0


def test_fail_when_no_rows(sqlite_odbc):
    seed(sqlite_odbc)
    task = factories.query_task(factories.project(), database(sqlite_odbc), "select * from orders where 1 = 0", source_fail_on_empty=True)
    run = run_task(task)
    assert run.status == RunStatus.FAILED
    assert "no rows" in run.error
