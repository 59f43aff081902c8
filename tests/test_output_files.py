"""Output files: names, keep-as-is, GPG encryption before zipping, the zip archive, hashes of the final bytes, storage."""

from __future__ import annotations

import io
import zipfile
import zoneinfo
from datetime import datetime, timedelta

import gnupg
import pytest
from django.utils import timezone

from connections.forms import GpgKeyForm
from connections.models import GpgKey
from projects.models import ProjectParameter
from runs.models import Delivery, RunStatus
from runs.pipeline.naming import numbered
from tasks.models import Task, TaskParameter
from tests import factories
from tests.delivery_support import ORDERS_CSV, folder_destination, log_text, md5, orders_task, run_task, sha256
from tests.file_servers import ftp_conn, put
from tests.servers import throwaway_gnupghome

pytestmark = pytest.mark.django_db

# Friday 5 January 2024, 00:30 in New York (05:30 UTC): "yesterday" there is the 4th.
AT = datetime(2024, 1, 5, 0, 30, tzinfo=zoneinfo.ZoneInfo("America/New_York"))
BINARY = bytes(range(256)) * 16 + b"\x00\r\n\xff"


def gpg_key(pair, name: str = "vendor") -> GpgKey:
    form = GpgKeyForm(data={"name": name, "public_key": pair.public_key_armored})
    assert form.is_valid(), form.errors
    return form.save()


def decrypt(pair, data: bytes) -> bytes:
    result = pair.gpg.decrypt(data, passphrase=pair.passphrase)
    assert result.ok, result.status
    return result.data


# --------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------

def test_name_with_parameters_and_dates_in_the_projects_zone(sqlite_odbc, tmp_path):
    task = orders_task(sqlite_odbc, output_name="client_orders_%Y%m%d-1", output_type="csv")
    task.project.timezone = "America/New_York"
    task.project.save()
    ProjectParameter.objects.create(project=task.project, key="client", value="acme")
    TaskParameter.objects.create(task=task, key="client", value="globex")  # the task's value wins
    folder_destination(task, tmp_path / "out")
    run = run_task(task, intended_at=AT)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["globex_orders_20240104.csv"]
    assert run.files.get().name == "globex_orders_20240104.csv"


def test_numbering_never_overwrites():
    assert numbered(["a.csv", "a.csv", "a.csv"]) == ["a.csv", "a_2.csv", "a_3.csv"]
    assert numbered(["a.csv", "a.csv", "a_2.csv"]) == ["a.csv", "a_3.csv", "a_2.csv"]
    assert numbered(["x", "x"]) == ["x", "x_2"]


def _ftp_task(ftp_server, **fields) -> Task:
    conn = ftp_conn(ftp_server)
    put(ftp_server.root, "in/first.bin", BINARY)
    put(ftp_server.root, "in/second.dat", b"second\n")
    put(ftp_server.root, "in/empty.bin", b"")
    return Task.objects.create(project=factories.project(), name="move", source_kind="ftp", source_connection=conn,
                               source_path="in/*", **fields)


def test_blank_type_and_name_keep_source_names_and_bytes(ftp_server, tmp_path):
    task = _ftp_task(ftp_server, output_type="", output_name="")
    folder_destination(task, tmp_path / "out")
    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED, run.error
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["empty.bin", "first.bin", "second.dat"]
    assert (out / "first.bin").read_bytes() == BINARY
    record = run.files.get(name="first.bin")
    assert (record.rows, record.size, record.md5) == (None, len(BINARY), md5(BINARY))
    assert run.files.get(name="empty.bin").is_empty


def test_keep_with_one_fixed_name_numbers_the_files_and_keeps_their_extension(ftp_server, tmp_path):
    task = _ftp_task(ftp_server, output_type="keep", output_name="vendor_%Y")
    folder_destination(task, tmp_path / "out")
    run = run_task(task, intended_at=AT)
    assert run.status == RunStatus.SUCCEEDED, run.error
    out = tmp_path / "out"
    # Source files come in name order: empty.bin, first.bin, second.dat.
    assert sorted(p.name for p in out.iterdir()) == ["vendor_2024.bin", "vendor_2024.dat", "vendor_2024_2.bin"]
    assert (out / "vendor_2024_2.bin").read_bytes() == BINARY
    assert "first.bin is delivered as vendor_2024_2.bin" in log_text(run)


# --------------------------------------------------------------------------
# GPG and zip
# --------------------------------------------------------------------------

@pytest.mark.parametrize(("armor", "suffix", "head"), [(False, ".gpg", None), (True, ".asc", b"-----BEGIN PGP MESSAGE-----")])
def test_gpg_encrypts_each_file_and_hashes_the_encrypted_bytes(sqlite_odbc, tmp_path, gpg_home, armor, suffix, head):
    task = orders_task(sqlite_odbc, output_name="orders.csv", gpg_key=gpg_key(gpg_home), gpg_armor=armor)
    folder_destination(task, tmp_path / "out")
    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED, run.error
    arrived = (tmp_path / "out" / f"orders.csv{suffix}").read_bytes()
    if head:
        assert arrived.startswith(head)
    else:
        assert not arrived.startswith(b"-----")  # binary OpenPGP by default
    assert decrypt(gpg_home, arrived) == ORDERS_CSV
    record = run.files.get()
    assert (record.name, record.rows, record.size) == (f"orders.csv{suffix}", 3, len(arrived))
    assert (record.md5, record.sha256) == (md5(arrived), sha256(arrived))
    assert record.stored.read() == arrived


def test_zip_holds_every_file_encrypted_first_and_is_named_with_dates(ftp_server, tmp_path, gpg_home):
    task = _ftp_task(ftp_server, output_type="keep", zip_enabled=True, zip_name="bundle_%Y%m%d", gpg_key=gpg_key(gpg_home))
    folder_destination(task, tmp_path / "out")
    run = run_task(task, intended_at=AT)
    assert run.status == RunStatus.SUCCEEDED, run.error
    arrived = (tmp_path / "out" / "bundle_20240105.zip").read_bytes()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["bundle_20240105.zip"]
    with zipfile.ZipFile(io.BytesIO(arrived)) as archive:
        assert sorted(archive.namelist()) == ["empty.bin.gpg", "first.bin.gpg", "second.dat.gpg"]
        assert decrypt(gpg_home, archive.read("first.bin.gpg")) == BINARY
        assert decrypt(gpg_home, archive.read("second.dat.gpg")) == b"second\n"
    record = run.files.get()  # only the archive is stored and delivered
    assert (record.name, record.size, record.md5, record.sha256) == ("bundle_20240105.zip", len(arrived), md5(arrived), sha256(arrived))


def test_empty_output_is_not_zipped_or_sent_when_no_destination_takes_it(sqlite_odbc, tmp_path):
    task = orders_task(sqlite_odbc, sql="select * from orders where id < 0", output_name="none.csv",
                       zip_enabled=True, zip_name="bundle")
    folder_destination(task, tmp_path / "out", skip_empty=True)
    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert list((tmp_path / "out").iterdir()) == []
    assert run.files.count() == 0 and not Delivery.objects.filter(run=run).exists()
    assert "none.csv is empty and no destination takes empty files: it is not zipped or sent" in log_text(run)


def test_an_empty_file_is_left_out_of_the_zip_beside_a_full_one(ftp_server, tmp_path):
    task = _ftp_task(ftp_server, output_type="keep", zip_enabled=True, zip_name="bundle")
    folder_destination(task, tmp_path / "out", skip_empty=True)
    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED, run.error
    with zipfile.ZipFile(tmp_path / "out" / "bundle.zip") as archive:
        assert sorted(archive.namelist()) == ["first.bin", "second.dat"]


def test_an_empty_query_result_still_zipped_when_a_destination_takes_empty_files(sqlite_odbc, tmp_path):
    task = orders_task(sqlite_odbc, sql="select * from orders where id < 0", output_name="none.csv", zip_enabled=True, zip_name="b")
    folder_destination(task, tmp_path / "out")
    run = run_task(task)
    assert run.status == RunStatus.SUCCEEDED, run.error
    with zipfile.ZipFile(tmp_path / "out" / "b.zip") as archive:
        assert archive.read("none.csv") == b"id,customer,amount,note\n"
    assert run.files.get().rows == 0


def test_an_expired_key_fails_the_run_before_anything_is_sent(sqlite_odbc, tmp_path, gpg_home):
    key = gpg_key(gpg_home)
    GpgKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(days=1))
    task = orders_task(sqlite_odbc, gpg_key=key)
    folder_destination(task, tmp_path / "out")
    run = run_task(task)
    assert run.status == RunStatus.FAILED and run.error_stage == "output" and run.permanent
    assert "expired" in run.error
    assert list((tmp_path / "out").iterdir()) == []


# --------------------------------------------------------------------------
# GPG key connections
# --------------------------------------------------------------------------

def test_saving_a_gpg_key_reads_fingerprint_user_ids_and_expiry(gpg_home):
    key = gpg_key(gpg_home)
    assert key.fingerprint == gpg_home.fingerprint
    assert key.user_ids == "Courier Test <courier@example.test>"
    assert key.expires_at is None


def test_an_invalid_or_expired_key_is_rejected():
    form = GpgKeyForm(data={"name": "junk", "public_key": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a key\n-----END PGP PUBLIC KEY BLOCK-----"})
    assert not form.is_valid() and "cannot be read" in str(form.errors)
    # A key made "two days ago" that lived one day: expired now.
    with throwaway_gnupghome() as home:
        past = (datetime.now() - timedelta(days=2)).strftime("%Y%m%dT%H%M%S")
        gpg = gnupg.GPG(gnupghome=str(home), options=["--faked-system-time", f"{past}!"])
        made = gpg.gen_key(gpg.gen_key_input(key_type="EDDSA", key_curve="ed25519", subkey_type="ECDH", subkey_curve="cv25519",
                                             name_email="old@example.test", no_protection=True, expire_date="1d"))
        armored = gpg.export_keys(made.fingerprint)
    form = GpgKeyForm(data={"name": "old", "public_key": armored})
    assert not form.is_valid() and "expired" in str(form.errors)


def test_the_admin_shows_what_it_read_from_a_saved_key(client, superuser, gpg_home):
    from django.urls import reverse

    client.force_login(superuser)
    response = client.post(reverse("admin:connections_gpgkey_add"), {"name": "vendor", "public_key": gpg_home.public_key_armored})
    assert response.status_code == 302, response.content[:2000]
    key = GpgKey.objects.get(name="vendor")
    page = client.get(reverse("admin:connections_gpgkey_change", args=[key.pk])).content.decode()
    assert gpg_home.fingerprint in page and "courier@example.test" in page
    refused = client.post(reverse("admin:connections_gpgkey_add"), {"name": "junk", "public_key": "hello"})
    assert refused.status_code == 200 and "not an ASCII-armoured OpenPGP public key" in refused.content.decode()
