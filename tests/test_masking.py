"""The one masker (connections/masking.py) and the one way to collect secrets (tasks/masking.py)."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings

from connections.masking import MASK, HideEverything, Masker, courier_secrets, masker_for, odbc_password
from connections.secrets import SecretError, set_stored_token
from projects.models import ProjectParameter
from projects.parameters import Param
from tasks.masking import shown_masker, task_masker
from tasks.models import CodeLocation, TaskParameter
from tests import factories

# "+" and "/" in its standard base64 at every alignment, so the URL-safe forms differ.
SECRET = "pa>>>ss???w0rd~~~s3cr3t"


def mask(text: str, *secrets: str) -> str:
    return Masker(secrets).mask(text)


# --- plain text ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("user=bob;pwd=pw12;", ["pw12"], "user=bob;pwd=********;"),
        ("pw12 and pw12", ["pw12"], "******** and ********"),
        ("abcd", [""], "abcd"),  # an empty value masks nothing
        ("a.b$ axb$", ["a.b$"], "******** axb$"),  # a literal, not a pattern
        ("x\\1yz", ["\\1yz"], "x********"),
        ("", ["pw12"], ""),
    ],
)
def test_plain_secrets_are_masked_where_they_stand(text, secrets, expected):
    assert mask(text, *secrets) == expected


def test_a_secret_inside_a_longer_one_leaves_no_fragment():
    assert mask("abcdef abcd", "abcd", "abcdef") == "******** ********"


def test_overlapping_secrets_become_one_mask():
    assert mask("xx abcdefghi yy", "abcdef", "defghi") == "xx ******** yy"
    assert mask("abcdabcd", "abcd") == "********" * 2  # next to each other, not overlapping: one mask each


def test_secrets_shorter_than_four_characters_are_not_masked():
    # They occur by chance everywhere ("on", "12"); four characters and more are masked.
    assert mask("pin 123 on row 123", "123", "on") == "pin 123 on row 123"
    assert mask("pin 1234 on", "1234") == "pin ******** on"


def test_each_line_of_a_multi_line_secret_is_masked():
    key = "-----BEGIN KEY-----\nAAAAbbbbCCCCdddd\nEEEEffff\n-----END KEY-----"
    assert mask("line: AAAAbbbbCCCCdddd", key) == "line: ********"
    assert mask(f"whole: {key}", key) == "whole: ********"


def test_a_long_secret_such_as_an_rsa_key_is_masked():
    # A 4096-bit key is about 3,200 characters; its hex form twice that.
    body = base64.b64encode(bytes(range(256)) * 9).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    key = "\n".join(["-----BEGIN RSA PRIVATE KEY-----", *lines, "-----END RSA PRIVATE KEY-----"])
    masker = Masker([key])
    assert masker.mask(f"key: {key}") == "key: ********"
    assert masker.mask(key.encode().hex()) == MASK
    assert masker.mask(body[64:128]) == MASK


def test_escaped_forms_are_masked():
    secret = 'quote" back\\slash <b>&'
    as_json = json.dumps({"v": secret})
    assert secret not in as_json  # escaped in JSON, and again in JSON inside JSON
    assert mask(as_json, secret) == '{"v": "********"}'
    assert mask(json.dumps({"outer": as_json}), secret).count(MASK) == 1
    assert mask("<p>quote&quot; back\\slash &lt;b&gt;&amp;</p>", secret) == "<p>********</p>"


# --- encoded forms ---------------------------------------------------------------


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text.replace("-", "+").replace("_", "/"))


@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode], ids=["standard", "urlsafe"])
@pytest.mark.parametrize("before", [0, 1, 2], ids=["aligned", "one-byte-before", "two-bytes-before"])
def test_base64_of_a_blob_holding_the_secret_is_masked_at_each_alignment(encode, before):
    blob = ("#" * before + json.dumps({"HOME": "/root", "TOKEN": SECRET, "LANG": "C"})).encode()
    encoded = encode(blob).decode()
    assert encoded != base64.b64encode(blob).decode() or encode is base64.b64encode  # the two alphabets really differ here
    head, tail = mask(encoded, SECRET).split(MASK)
    # The mask covers whole 4-character groups: both sides still decode, and show
    # at most two bytes of the secret each (the groups it shares with its neighbours).
    left, right = _b64decode(head), _b64decode(tail)
    assert blob.startswith(left) and blob.endswith(right)
    start = blob.index(SECRET.encode())
    end = start + len(SECRET)
    assert len(left) - start <= 2 and end - (len(blob) - len(right)) <= 2


@pytest.mark.parametrize("case", [str.lower, str.upper])
def test_hex_is_masked_in_either_case(case):
    encoded = case(("prefix:" + SECRET + ":suffix").encode().hex())
    masked = mask(encoded, SECRET)
    assert masked == case(b"prefix:".hex()) + MASK + case(b":suffix".hex())


def test_base64_of_an_environment_with_a_json_variable_is_masked():
    """json.dumps(os.environ) escapes the quotes of a JSON variable: the secret inside is escaped twice if it needs it."""
    secret = 'pw"with\\quote'
    env = {"COURIER_CONNECTION": json.dumps({"password": secret}), "X": "1"}
    encoded = base64.b64encode(json.dumps(env).encode()).decode()
    assert MASK in mask(encoded, secret)


def test_needles_are_computed_once_and_ordered_longest_first():
    masker = Masker([SECRET, "abcd"])
    assert [len(n) for n in masker.needles] == sorted((len(n) for n in masker.needles), reverse=True)
    assert SECRET in masker.needles and SECRET.encode().hex() in masker.needles


def test_hide_everything_hides_any_text_whole():
    assert HideEverything().mask("orders_2026.csv") == MASK
    assert HideEverything().mask("") == ""


# --- collecting the secrets ----------------------------------------------------------


def test_courier_keys_and_passwords_are_secrets(settings, monkeypatch):
    monkeypatch.setitem(django_settings.DATABASES["default"], "PASSWORD", "db-p@ss/word")
    settings.REDIS_URL = "redis://:redis-pw-1@broker:6379/0"
    settings.EMAIL_HOST_PASSWORD = "mail-pw-2"
    masker = Masker(courier_secrets())
    env_file = (f"SECRET_KEY={settings.SECRET_KEY}\nCOURIER_SECRET_KEYS={','.join(settings.COURIER_SECRET_KEYS)}\n"
                "DATABASE_URL=postgres://courier:db-p%40ss%2Fword@db/courier\nREDIS_URL=redis://:redis-pw-1@broker:6379/0\n"
                "EMAIL_URL=smtp://courier:mail-pw-2@mail")
    masked = masker.mask(env_file)
    assert masked == ("SECRET_KEY=********\nCOURIER_SECRET_KEYS=********\nDATABASE_URL=postgres://courier:********@db/courier\n"
                      "REDIS_URL=********\nEMAIL_URL=smtp://courier:********@mail")
    assert MASK in masker.mask(base64.b64encode(env_file.encode()).decode())


def test_a_redis_url_without_a_password_is_no_secret(settings):
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    assert settings.REDIS_URL not in courier_secrets()


@pytest.mark.parametrize(
    ("odbc", "password"),
    [
        ("Driver={X};Server=s;UID=u;PWD=Pa55-word;", "Pa55-word"),
        ("Driver=X;password = spaced ;Database=d", "spaced"),
        ("Driver=X;Pwd={br;ac}}ed};", "br;ac}ed"),
        ("Driver=X;Database=d;", ""),
    ],
)
def test_the_password_inside_an_odbc_string(odbc, password):
    assert odbc_password(odbc) == password


@pytest.mark.django_db
def test_a_task_masker_knows_every_connection_and_sensitive_value_of_the_task():
    source = factories.connection("database", name="dw", odbc="Driver=X;Uid=u;Pwd=Odbc-Pw-1;")
    task = factories.query_task(factories.project(), source, "select 1")
    factories.destination(task, factories.connection("sftp", name="drop", host="h", username="u", password="Sftp-Pw-2"))
    code_host = factories.connection("gitlab", name="lab", url="https://git.example", token="Gitlab-Token-3")
    CodeLocation.objects.create(task=task, role="processing", location="gitlab", connection=code_host, url="https://git.example/p")
    for param, value in ((TaskParameter(task=task, key="@key"), "Task-Value-4"),
                         (ProjectParameter(project=task.project, key="@projkey"), "Project-Value-5")):
        param.set_value(value, sensitive=True)
        param.save()
    TaskParameter.objects.create(task=task, key="@plain", value="Plain-Value-6")

    text = "Odbc-Pw-1 Sftp-Pw-2 Gitlab-Token-3 Task-Value-4 Project-Value-5 Plain-Value-6"
    assert task_masker(task).mask(text) == " ".join([MASK] * 5) + " Plain-Value-6"
    # A run passes its filled-in parameters instead of those defined.
    assert task_masker(task, [Param("@key", "Resolved-7", True)]).mask("Task-Value-4 Resolved-7") == f"Task-Value-4 {MASK}"


@pytest.mark.django_db
def test_a_secret_that_cannot_be_decrypted_is_an_error_and_pages_then_hide_names_whole():
    conn = factories.connection("sftp", name="drop", host="h", username="u")
    set_stored_token(conn, "password", Fernet(Fernet.generate_key()).encrypt(b"lost").decode())
    conn.save()
    task = factories.query_task(factories.project(), None, "select 1")
    factories.destination(task, conn)
    with pytest.raises(SecretError, match="password of connection “Acme/drop” cannot be decrypted"):
        masker_for([conn])
    with pytest.raises(SecretError):
        task_masker(task)
    assert shown_masker(task).mask("orders_2026.csv") == MASK
