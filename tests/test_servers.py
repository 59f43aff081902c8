"""Smoke tests for tests/servers.py: one real client round trip per fixture.

None of these touch Django's database (no ``django_db``): the ODBC tests go
through pyodbc to their own throwaway databases.
"""

from __future__ import annotations

import base64
import ftplib
import io
import secrets
import smtplib
from email.message import EmailMessage

import paramiko
import pyodbc
import pytest
import requests

from tests.servers import (
    FtpServer,
    GpgKeyPair,
    HttpServer,
    OdbcDatabase,
    SmbServer,
    SmtpServer,
    SshServer,
    TlsCert,
    throwaway_gnupghome,
)

PAYLOAD = "id;name\n1;Zoë\n".encode() + bytes(range(256))


def _ssh_client(server: SshServer, **auth: object) -> paramiko.SSHClient:
    # Pin the host key from the fixture instead of trusting on first use.
    key_type, key_b64 = server.host_key_line.split()
    client = paramiko.SSHClient()
    client.get_host_keys().add(
        f"[{server.host}]:{server.port}", key_type,
        paramiko.PKey.from_type_string(key_type, base64.b64decode(key_b64)),
    )
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        server.host, port=server.port, username=server.username, timeout=10,
        allow_agent=False, look_for_keys=False, **auth,  # type: ignore[arg-type]
    )
    return client


def _exec(client: paramiko.SSHClient, command: str) -> tuple[str, int]:
    _, stdout, _ = client.exec_command(command, timeout=10)
    return stdout.read().decode(), stdout.channel.recv_exit_status()


def test_sshd_key_login_exec_and_sftp(sshd: SshServer) -> None:
    pkey = paramiko.Ed25519Key.from_private_key(io.StringIO(sshd.client_private_key_text))
    with _ssh_client(sshd, pkey=pkey) as client:
        server_key = client.get_transport().get_remote_server_key()  # type: ignore[union-attr]
        assert server_key.fingerprint == sshd.host_key_fingerprint_sha256
        assert _exec(client, "id -un; pwd; exit 3") == (f"{sshd.username}\n{sshd.home}\n", 3)
        with client.open_sftp() as sftp:
            sftp.putfo(io.BytesIO(PAYLOAD), f"{sshd.root}/smoke.bin")
            # Relative SFTP paths resolve against the login home.
            assert sftp.stat(f"{sshd.root.name}/smoke.bin").st_size == len(PAYLOAD)
            back = io.BytesIO()
            sftp.getfo(f"{sshd.root}/smoke.bin", back)
            sftp.remove(f"{sshd.root}/smoke.bin")
    assert back.getvalue() == PAYLOAD


def test_sshd_passphrase_key_and_password_login(sshd: SshServer) -> None:
    pkey = paramiko.PKey.from_path(sshd.client_key_passphrase_path, password=sshd.passphrase.encode())
    with _ssh_client(sshd, pkey=pkey) as client:
        assert _exec(client, "echo key") == ("key\n", 0)
    with _ssh_client(sshd, password=sshd.password) as client:
        assert _exec(client, "echo pw") == ("pw\n", 0)
    with pytest.raises(paramiko.AuthenticationException):
        _ssh_client(sshd, password="wrong")


def _ftp_round_trip(ftp: ftplib.FTP, server: FtpServer) -> None:
    ftp.storbinary("STOR smoke.bin", io.BytesIO(PAYLOAD))
    assert (server.root / "smoke.bin").read_bytes() == PAYLOAD
    back = io.BytesIO()
    ftp.retrbinary("RETR smoke.bin", back.write)
    assert back.getvalue() == PAYLOAD
    ftp.quit()


def test_ftp_stor_retr(ftp_server: FtpServer) -> None:
    ftp = ftplib.FTP()
    ftp.connect(ftp_server.host, ftp_server.port, timeout=10)
    ftp.login(ftp_server.username, ftp_server.password)
    _ftp_round_trip(ftp, ftp_server)


def test_ftps_stor_retr(ftps_server: FtpServer, tls_cert: TlsCert) -> None:
    ftp = ftplib.FTP_TLS(context=tls_cert.client_context(max_tls12=True))
    ftp.connect(ftps_server.host, ftps_server.port, timeout=10)
    ftp.login(ftps_server.username, ftps_server.password)  # sends AUTH TLS first
    ftp.prot_p()
    _ftp_round_trip(ftp, ftps_server)


def test_smb_write_read(smb_server: SmbServer) -> None:
    import smbclient

    port = smb_server.port
    smbclient.register_session(
        smb_server.host, username=smb_server.username, password=smb_server.password, port=port
    )
    smbclient.makedirs(smb_server.unc("in"), exist_ok=True, port=port)
    with smbclient.open_file(smb_server.unc("in", "smoke.bin"), mode="wb", port=port) as fh:
        fh.write(PAYLOAD)
    assert (smb_server.root / "in" / "smoke.bin").read_bytes() == PAYLOAD
    with smbclient.open_file(smb_server.unc("in", "smoke.bin"), mode="rb", port=port) as fh:
        assert fh.read() == PAYLOAD
    smbclient.remove(smb_server.unc("in", "smoke.bin"), port=port)


def _mail(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "courier@example.test", "ops@example.test", subject
    msg.set_content("Run finished.")
    msg.add_attachment(PAYLOAD[:14], maintype="text", subtype="csv", filename="out.csv")
    return msg


def test_smtp_auth_and_anonymous(smtp_server: SmtpServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as smtp:
        smtp.login(smtp_server.username, smtp_server.password)
        smtp.send_message(_mail("Bericht ✓"))
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as smtp:
        smtp.send_message(_mail("anonymous"))
    first, second = smtp_server.messages
    assert first["Subject"] == "Bericht ✓"
    attachment = next(first.iter_attachments())
    assert attachment.get_filename() == "out.csv"
    assert attachment.get_payload(decode=True) == PAYLOAD[:14]
    assert second["Subject"] == "anonymous"
    assert [e.authenticated_as for e in smtp_server.envelopes] == [smtp_server.username, None]
    assert smtp_server.envelopes[0].rcpt_tos == ["ops@example.test"]


def test_gpg_encrypt_to_public_key_and_decrypt(gpg_home: GpgKeyPair) -> None:
    import gnupg

    with throwaway_gnupghome("gpgpub-") as sender_home:
        sender = gnupg.GPG(gnupghome=str(sender_home))
        assert sender.import_keys(gpg_home.public_key_armored).fingerprints == [gpg_home.fingerprint]
        encrypted = sender.encrypt(PAYLOAD, gpg_home.fingerprint, always_trust=True, armor=True)
        assert encrypted.ok, encrypted.status
    decrypted = gpg_home.gpg.decrypt(encrypted.data, passphrase=gpg_home.passphrase)
    assert decrypted.ok and decrypted.data == PAYLOAD


def _odbc_round_trip(db: OdbcDatabase) -> None:
    table = f"smoke_{secrets.token_hex(3)}"  # server databases are session-shared
    rows = [(1, "Zoë"), (2, None), (3, "plain")]
    with pyodbc.connect(db.odbc, timeout=10) as cn:
        cur = cn.cursor()
        cur.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name VARCHAR(50))")
        cur.executemany(f"INSERT INTO {table} (id, name) VALUES (?, ?)", rows)
        cn.commit()
        got = cur.execute(f"SELECT id, name FROM {table} WHERE id >= ? ORDER BY id", 1).fetchall()
        assert [tuple(r) for r in got] == rows
        assert [d[0] for d in cur.description] == ["id", "name"]
        cur.execute(f"DROP TABLE {table}")
        cn.commit()


def test_pg_odbc_round_trip(pg_odbc: OdbcDatabase) -> None:
    assert pg_odbc.dialect == "postgresql"
    _odbc_round_trip(pg_odbc)


def test_mariadb_odbc_round_trip(mariadb_odbc: OdbcDatabase) -> None:
    assert mariadb_odbc.dialect == "mysql"
    _odbc_round_trip(mariadb_odbc)
    with pytest.raises(pyodbc.Error):
        pyodbc.connect(mariadb_odbc.odbc.replace(mariadb_odbc.password, "wrong"), timeout=10)


def test_sqlite_odbc_round_trip(sqlite_odbc: OdbcDatabase) -> None:
    assert sqlite_odbc.dialect == "sqlite"
    _odbc_round_trip(sqlite_odbc)


def test_http_get_records_headers(http_server: HttpServer) -> None:
    (http_server.root / "job.py").write_bytes(PAYLOAD)
    resp = requests.get(f"{http_server.url}/job.py", headers={"PRIVATE-TOKEN": "tok-1"}, timeout=5)
    assert resp.status_code == 200 and resp.content == PAYLOAD
    assert requests.get(f"{http_server.url}/missing.py", timeout=5).status_code == 404
    first = http_server.received[0]
    assert (first.method, first.path) == ("GET", "/job.py")
    assert first.headers["private-token"] == "tok-1"
    assert len(http_server.received) == 2
