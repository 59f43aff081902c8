"""Session-scoped system daemons: OpenSSH sshd and Samba smbd (TESTING.md 4a, 5a).

Both run as root on a free loopback port with their own config, state and keys in a
throwaway /tmp directory, and log in the OS user etltest/etlpass.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers_common import (
    HOST,
    TEST_PASSWORD,
    TEST_USER,
    ensure_test_user,
    free_port,
    need_binary,
    need_root,
    shared_tmp,
    stop_process,
    wait_port,
)

__all__ = ["SshServer", "SmbServer", "run_sshd", "sshd", "smb_server"]

SSHD = "/usr/sbin/sshd"
SMBD = "/usr/sbin/smbd"
SMB_SHARE = "etl"


@dataclass(frozen=True)
class SshServer:
    """A real OpenSSH sshd (password + public-key login, shell exec, internal-sftp).

    No chroot: SFTP paths are the server's filesystem paths. An absolute path is
    used as is (``f"{root}/x.csv"``); a relative one resolves against ``home``, the
    login directory, so ``f"{root.name}/x.csv"`` names the same file. ``root`` is a
    fresh per-session folder inside ``home``, owned by etltest; tests share it, so
    use unique file names. Files can be checked directly via ``root`` (tests run as root).

    Keys: ``client_key_path`` / ``client_private_key_text`` is an unencrypted ed25519
    key in OpenSSH format; ``client_key_passphrase_path`` is an RSA-2048 key
    (OpenSSH format) encrypted with ``passphrase``. Both are authorized.
    ``host_key_line`` ("ssh-ed25519 AAAA...") pins the server's host key;
    ``host_key_fingerprint_sha256`` is the "SHA256:..." that ``ssh-keygen -l`` prints.
    ``log`` is sshd's own log (LogLevel INFO): each login attempt shows there
    ("Invalid user …", "Failed password for …", "Accepted …").
    """

    host: str
    port: int
    username: str
    password: str
    root: Path
    client_key_path: Path
    client_private_key_text: str
    client_key_passphrase_path: Path
    passphrase: str
    host_key_line: str
    host_key_fingerprint_sha256: str
    home: Path
    log: Path


@dataclass(frozen=True)
class SmbServer:
    """A real Samba smbd (SMB 3.1.1, signing; encryption on request).

    ``root`` is the share's directory on disk; pass ``port=`` to every smbclient call.
    """

    host: str
    port: int
    share: str
    username: str
    password: str
    root: Path

    def unc(self, *parts: str) -> str:
        r"""UNC path inside the share, e.g. ``unc("in", "a.csv")`` -> ``\\127.0.0.1\etl\in\a.csv``."""
        return "\\".join([rf"\\{self.host}\{self.share}", *parts])


def _keygen(path: Path, key_type: str, *extra: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", key_type, "-C", f"courier-{path.name}", "-f", str(path), *extra],
        check=True, capture_output=True,
    )


def _fingerprint(pub: Path) -> str:
    # "256 SHA256:abc... comment (ED25519)" -> "SHA256:abc..."
    out = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)], check=True, capture_output=True, text=True
    ).stdout
    return out.split()[1]


def _sshd_config(workdir: Path, port: int, subsystem: str = "internal-sftp") -> Path:
    cfg = workdir / "sshd_config"
    cfg.write_text(
        f"Port {port}\n"
        f"ListenAddress {HOST}\n"
        f"HostKey {workdir}/host_ed25519\n"
        f"PidFile {workdir}/sshd.pid\n"
        f"AuthorizedKeysFile {workdir}/authorized_keys\n"
        # StrictModes off: authorized_keys lives in our root-owned temp dir, not ~/.ssh.
        "StrictModes no\n"
        # Without PAM, sshd checks the password against /etc/shadow (set by chpasswd).
        "UsePAM no\n"
        "PasswordAuthentication yes\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin no\n"
        f"AllowUsers {TEST_USER}\n"
        "UseDNS no\n"
        "PrintMotd no\n"
        f"Subsystem sftp {subsystem}\n"
    )
    return cfg


def _make_ssh_keys(workdir: Path, passphrase: str) -> None:
    _keygen(workdir / "host_ed25519", "ed25519", "-N", "")
    _keygen(workdir / "client_ed25519", "ed25519", "-N", "")
    # 4 bcrypt KDF rounds instead of 16: paramiko then decrypts the key in ~0.1 s, not ~0.4 s.
    _keygen(workdir / "client_rsa_pw", "rsa", "-b", "2048", "-a", "4", "-N", passphrase)
    pubs = [(workdir / f"{n}.pub").read_text() for n in ("client_ed25519", "client_rsa_pw")]
    authorized = workdir / "authorized_keys"
    authorized.write_text("".join(pubs))
    authorized.chmod(0o644)  # sshd reads it with etltest's privileges


@pytest.fixture(scope="session")
def sshd() -> Iterator[SshServer]:
    yield from run_sshd()


def run_sshd(subsystem: str = "internal-sftp", name: str = "sshd-") -> Iterator[SshServer]:
    """Start an sshd (its SFTP subsystem given as sshd_config writes it), yield it, stop it."""
    need_root()
    need_binary(SSHD, "openssh-server")
    need_binary("/usr/bin/ssh-keygen", "openssh-client")
    user = ensure_test_user()
    workdir = shared_tmp(name)
    home = Path(user.pw_dir)
    root = home / f"sftp-{secrets.token_hex(4)}"
    root.mkdir(mode=0o755)
    shutil.chown(root, user.pw_uid, user.pw_gid)
    passphrase = "keypass-" + secrets.token_hex(4)
    _make_ssh_keys(workdir, passphrase)
    # The privilege-separation dir only exists once the distro service has run.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = free_port()
    log = workdir / "sshd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(_sshd_config(workdir, port, subsystem))],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_port(port, proc, log=log)
        host_pub = workdir / "host_ed25519.pub"
        yield SshServer(
            host=HOST,
            port=port,
            username=TEST_USER,
            password=TEST_PASSWORD,
            root=root,
            client_key_path=workdir / "client_ed25519",
            client_private_key_text=(workdir / "client_ed25519").read_text(),
            client_key_passphrase_path=workdir / "client_rsa_pw",
            passphrase=passphrase,
            host_key_line=" ".join(host_pub.read_text().split()[:2]),
            host_key_fingerprint_sha256=_fingerprint(host_pub),
            home=home,
            log=log,
        )
    finally:
        stop_process(proc)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)


def _smb_conf(workdir: Path, port: int) -> Path:
    conf = workdir / "smb.conf"
    conf.write_text(
        "[global]\n"
        "  server role = standalone server\n"
        f"  smb ports = {port}\n"
        f"  interfaces = {HOST}\n"
        "  bind interfaces only = yes\n"
        "  disable netbios = yes\n"
        # Every state directory points into workdir so /var/lib/samba stays untouched.
        f"  passdb backend = tdbsam:{workdir}/private/passdb.tdb\n"
        f"  private dir = {workdir}/private\n"
        f"  lock directory = {workdir}/lock\n"
        f"  state directory = {workdir}/state\n"
        f"  cache directory = {workdir}/cache\n"
        f"  pid directory = {workdir}/pid\n"
        f"  ncalrpc dir = {workdir}/ncalrpc\n"
        f"  log file = {workdir}/log.%m\n"
        "  map to guest = never\n"
        "  load printers = no\n"
        "  printing = bsd\n"
        "  printcap name = /dev/null\n"
        "  disable spoolss = yes\n"
        f"[{SMB_SHARE}]\n"
        f"  path = {workdir}/share\n"
        "  read only = no\n"
        f"  valid users = {TEST_USER}\n"
    )
    return conf


def _reset_smbclient_cache() -> None:
    # Cached sessions would point at a dead server for anything that runs later.
    try:
        import smbclient
    except ImportError:
        return
    smbclient.reset_connection_cache()


@pytest.fixture(scope="session")
def smb_server() -> Iterator[SmbServer]:
    need_root()
    need_binary(SMBD, "samba")
    with running_smbd(need_binary("/usr/bin/smbpasswd", "samba")) as server:
        yield server


@contextmanager
def running_smbd(smbpasswd: str = "/usr/bin/smbpasswd") -> Iterator[SmbServer]:
    """Samba on a free loopback port with the test user (the smb_server fixture; bench/transfers.py)."""
    user = ensure_test_user()
    workdir = shared_tmp("smb-")
    for sub in ("private", "lock", "state", "cache", "pid", "ncalrpc", "share"):
        (workdir / sub).mkdir()
    share = workdir / "share"
    shutil.chown(share, user.pw_uid, user.pw_gid)
    port = free_port()
    conf = _smb_conf(workdir, port)
    subprocess.run(
        [smbpasswd, "-c", str(conf), "-a", "-s", TEST_USER],
        input=f"{TEST_PASSWORD}\n{TEST_PASSWORD}\n", text=True, check=True, capture_output=True,
    )
    log = workdir / "smbd.log"
    with log.open("wb") as out:
        # Own session: with --no-process-group smbd signals its whole process group
        # on shutdown, which would otherwise include pytest itself.
        proc = subprocess.Popen(
            [SMBD, "--foreground", "--no-process-group", "--debug-stdout", "-s", str(conf)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_port(port, proc, log=log)
        yield SmbServer(HOST, port, SMB_SHARE, TEST_USER, TEST_PASSWORD, share)
    finally:
        _reset_smbclient_cache()
        stop_process(proc)
        shutil.rmtree(workdir, ignore_errors=True)
