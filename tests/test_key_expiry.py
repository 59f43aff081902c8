"""GPG key expiry with real keys (gpg made them to expire in 5 and 40 days) and a fixed clock.

The dashboard lists keys expiring within 30 days with the tasks using them;
each owner of such a task gets one mail at 30 and one at 7 days (counted on
aiosmtpd); a run encrypting for a key that really expired (made by gpg with
a faked clock in 2020) fails permanently, naming its fingerprint and date.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import gnupg
import pytest
from django.urls import reverse

from connections.clients.gpg import inspect_key
from connections.models import GpgKey
from runs import keywatch, watch
from runs.models import KeyExpiryWarning, RunStatus
from tests import factories
from tests.delivery_support import folder_destination, mail_through, orders_task, run_task
from tests.servers_crypto import throwaway_gnupghome

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(smtp_server, settings):
    return mail_through(smtp_server, settings)


def gpg_key(home, name: str, expire: str, *, made_at: str | None = None) -> GpgKey:
    """A real key made by gpg to expire after `expire` (e.g. "5d"), stored as Courier reads a key."""
    options = ["--faked-system-time", f"{made_at}!"] if made_at else None
    gpg = gnupg.GPG(gnupghome=str(home), options=options)
    made = gpg.gen_key(gpg.gen_key_input(key_type="EDDSA", key_curve="ed25519", subkey_type="ECDH", subkey_curve="cv25519",
                                         name_real=name, name_email=f"{name}@example.test", no_protection=True, expire_date=expire))
    armored = gpg.export_keys(made.fingerprint)
    if made_at:  # expired already: Courier would refuse it now, as it was stored back when it was valid
        info = gnupg.GPG(gnupghome=str(home)).list_keys(keys=made.fingerprint)[0]
        expires = datetime.fromtimestamp(int(info["expires"])).astimezone()
        return GpgKey.objects.create(name=name, public_key=armored, fingerprint=made.fingerprint, expires_at=expires)
    info = inspect_key(armored)
    return GpgKey.objects.create(name=name, public_key=armored, fingerprint=info.fingerprint, expires_at=info.expires_at)


@pytest.fixture
def home() -> Iterator:
    with throwaway_gnupghome() as path:
        yield path


@pytest.fixture
def keys(home, django_user_model, sqlite_odbc):
    """vendor (5 days left) used by two owners' tasks, partner (40 days left) by one."""
    alice = django_user_model.objects.create_user("alice", "alice@example.test")
    bob = django_user_model.objects.create_user("bob", "bob@example.test")
    soon, later = gpg_key(home, "vendor", "5d"), gpg_key(home, "partner", "40d")
    conn = factories.connection("database", name="db", dialect="sqlite", odbc=sqlite_odbc.odbc)
    sales, stock = factories.project("Sales", owner=alice), factories.project("Stock", owner=bob)
    factories.query_task(sales, conn, "select 1", name="orders", gpg_key=soon)
    factories.query_task(sales, conn, "select 1", name="refunds", gpg_key=later)
    factories.query_task(stock, conn, "select 1", name="levels", gpg_key=soon)
    return soon, later


def test_the_dashboard_lists_keys_expiring_within_30_days_and_their_tasks(client, staff_runner, keys):
    soon, later = keys
    client.force_login(staff_runner)
    html = client.get(reverse("courier:dashboard")).content.decode()
    panel = html.split('id="expiring-keys"')[1].split('<div class="module"')[0]
    assert "vendor" in panel and soon.fingerprint in panel and "in 5 days" in panel
    assert "Sales/orders" in panel and "Stock/levels" in panel
    assert "partner" not in panel  # 40 days: not yet


def test_each_owner_gets_one_mail_at_30_and_one_at_7_days(keys, smtp):
    soon, later = keys
    now = soon.expires_at - timedelta(days=5)  # the fixed clock: vendor has 5 days left, partner 40

    first = keywatch.send_expiry_warnings(now)
    assert [(w.key.name, w.days) for w in first] == [("vendor", 7)]
    mails = {tuple(e.rcpt_tos): m for e, m in zip(smtp.envelopes, smtp.messages, strict=True)}
    assert set(mails) == {("alice@example.test",), ("bob@example.test",)}
    alice = mails[("alice@example.test",)]
    assert alice["Subject"].strip() == f"[Courier] GPG key “vendor” expires on {soon.expires_at:%Y-%m-%d} (in 5 days)"
    text = alice.get_body(("plain",)).get_content()
    assert soon.fingerprint in text and "Sales/orders" in text and "Stock/levels" not in text  # only her own tasks

    assert keywatch.send_expiry_warnings(now + timedelta(hours=1)) == []  # once per threshold
    assert len(smtp.messages) == 2

    # 11 days on: vendor has expired (its runs fail; no more mail), partner reaches 29 days.
    assert [(w.key.name, w.days) for w in watch_keys(now + timedelta(days=11))] == [("partner", 30)]
    assert smtp.envelopes[-1].rcpt_tos == ["alice@example.test"]
    assert "(in 29 days)" in smtp.messages[-1]["Subject"]
    # 34 days on: partner has 6 days left.
    assert [(w.key.name, w.days) for w in watch_keys(now + timedelta(days=34))] == [("partner", 7)]
    assert watch_keys(now + timedelta(days=35)) == []
    assert len(smtp.messages) == 4
    assert KeyExpiryWarning.objects.count() == 3


def watch_keys(now):
    """The watch's pass at `now`; returns the warnings it recorded."""
    before = set(KeyExpiryWarning.objects.values_list("pk", flat=True))
    watch.watch(now)
    return list(KeyExpiryWarning.objects.exclude(pk__in=before).order_by("pk"))


def test_a_renewed_key_is_warned_about_afresh(keys, smtp):
    soon, _ = keys
    now = soon.expires_at - timedelta(days=5)
    keywatch.send_expiry_warnings(now)
    GpgKey.objects.filter(pk=soon.pk).update(expires_at=soon.expires_at + timedelta(days=365))
    assert keywatch.send_expiry_warnings(now + timedelta(days=364)) != []


def test_a_run_with_a_really_expired_key_fails_permanently_naming_fingerprint_and_date(home, sqlite_odbc, tmp_path):
    old = gpg_key(home, "vendor", "5d", made_at="20200101T000000")
    task = orders_task(sqlite_odbc, gpg_key=old, retry_max=3)
    folder_destination(task, tmp_path / "out")

    run = run_task(task)

    assert run.status == RunStatus.FAILED and run.permanent and run.error_stage == "output"
    assert run.error == f"The GPG key “vendor” ({old.fingerprint}) expired on 2020-01-06; nothing was encrypted or sent."
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert not run.retries.exists()  # permanent: trying again cannot help
