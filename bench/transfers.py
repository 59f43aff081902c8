"""Large files both ways: Courier's SFTP, SMB and FTP clients side by side with the native clients.

    .venv/bin/python bench/transfers.py [--mb 256] [--repeat 5] [--only sftp_get,smb_put,smb_get,ftp_put,ftp_get]

Needs root (it starts daemons and uses the etltest login, like the test
servers), OpenSSH's sshd and sftp, Samba's smbd and smbclient, and curl
(scripts/system-packages.sh bench). Five comparisons, each on the same
loopback server for both clients, taking turns:

- sftp_get: a source pick-up, Courier's `SftpClient.download` (paramiko's
  `get`, which reads ahead) vs `sftp -b` "get";
- smb_put / smb_get: Courier's `SmbClient` upload (to a temporary name, then
  renamed, as a delivery does) and download vs `smbclient` put / get, both
  on SMB 3 and both encrypted (Courier asks for encryption whenever the server
  offers it; `--smb-signed-only` lets smbclient only sign, as it does unless told);
- ftp_put / ftp_get: Courier's `FtpClient` vs `curl -T` / `curl -o`, against
  pyftpdlib run in a process of its own (the same Python server for both:
  it may be the limit, which the ratio then says).

Each arrival is checked by SHA-256. The ratio is that of the medians.
Prints `RESULT name=value` lines.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from bench.machine import describe_machine, load  # noqa: E402
from bench.sftp_upload import loopback_sshd, make_file, sha256_of  # noqa: E402
from tests.servers_common import HOST, TEST_PASSWORD, TEST_USER, free_port, shared_tmp, stop_process, wait_port  # noqa: E402
from tests.servers_daemons import SMB_SHARE, running_smbd  # noqa: E402

KINDS = ("sftp_get", "smb_put", "smb_get", "ftp_put", "ftp_get")
ENCRYPTED_SMB = True  # --smb-signed-only compares with smbclient signing only (not what Courier does)
FTP_USER, FTP_PASSWORD = "etl", "etlpass"


def connection(**fields):
    import django

    django.setup()
    from connections.models import Connection

    return Connection(name="bench", **fields)  # never saved: the clients only read the fields


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{command[0]} failed: {done.stdout[-500:]}{done.stderr[-1000:]}")


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------

@contextmanager
def loopback_smbd() -> Iterator[tuple[int, Path]]:
    """The tests' Samba (tests/servers_daemons.py); yields (port, the share's folder)."""
    with running_smbd() as server:
        yield server.port, server.root


@contextmanager
def loopback_ftpd() -> Iterator[tuple[int, Path]]:
    """pyftpdlib in a process of its own; yields (port, its root folder)."""
    root = Path(tempfile.mkdtemp(prefix="bench-ftp-"))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-W", "ignore", "-m", "pyftpdlib", "-i", HOST, "-p", str(port), "-w", "-d", str(root),
                             "-u", FTP_USER, "-P", FTP_PASSWORD], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        yield port, root
    finally:
        stop_process(proc)
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------
# The comparisons: each returns {"native": seconds, "courier": seconds} for one turn
# --------------------------------------------------------------------------

def sftp_get(server, payload: Path, digest: str, scratch: Path) -> dict[str, float]:
    from connections.clients.sftp import SftpClient

    source = server.target / "source.bin"
    if not source.exists():
        shutil.copyfile(payload, source)
        source.chmod(0o644)
    known = server.workdir / "known_hosts"
    known.write_text(f"[{HOST}]:{server.port} {server.host_key_line}\n")
    batch = server.workdir / "get-batch"
    arrived = scratch / "sftp.bin"
    batch.write_text(f"get {source} {arrived}\n")
    native = ["sftp", "-q", "-b", str(batch), "-i", str(server.key), "-P", str(server.port), "-o", f"UserKnownHostsFile={known}",
              "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", f"etltest@{HOST}"]
    conn = connection(kind="sftp", host=HOST, port=server.port, username="etltest", private_key=server.key.read_text(),
                      host_key=server.host_key_line, folder=str(server.target))

    def courier() -> None:
        with SftpClient(conn) as client:
            client.download("source.bin", arrived)

    return {"native": checked(lambda: run(native), arrived, digest), "courier": checked(courier, arrived, digest)}


def checked(action: Callable[[], object], arrived: Path, digest: str) -> float:
    seconds = timed(action)
    if sha256_of(arrived) != digest:
        raise SystemExit(f"{arrived.name}: the bytes that arrived differ from the original")
    arrived.unlink()
    return seconds


def smb(direction: str, port: int, share: Path, payload: Path, digest: str, scratch: Path) -> dict[str, float]:
    from connections.clients.base import IfExists
    from connections.clients.smb import SmbClient

    conn = connection(kind="smb", host=HOST, port=port, share=SMB_SHARE, username=TEST_USER, password=TEST_PASSWORD)
    # Courier's SMB sessions are encrypted when the server can (connections/clients/smb.py): so is smbclient's here.
    protection = "encrypt" if ENCRYPTED_SMB else "sign"
    native = ["smbclient", f"//{HOST}/{SMB_SHARE}", "-p", str(port), "-U", f"{TEST_USER}%{TEST_PASSWORD}", "-m", "SMB3",
              f"--client-protection={protection}", "-c"]
    if direction == "put":
        def courier() -> None:
            with SmbClient(conn) as client:
                client.upload(payload, "", "courier.bin", IfExists.OVERWRITE)
        return {"native": checked(lambda: run([*native, f'put "{payload}" native.bin']), share / "native.bin", digest),
                "courier": checked(courier, share / "courier.bin", digest)}
    source = share / "source.bin"
    if not source.exists():
        shutil.copyfile(payload, source)
        source.chmod(0o644)
    arrived = scratch / "smb.bin"

    def courier_get() -> None:
        with SmbClient(conn) as client:
            client.download("source.bin", arrived)

    return {"native": checked(lambda: run([*native, f'get source.bin "{arrived}"']), arrived, digest),
            "courier": checked(courier_get, arrived, digest)}


def ftp(direction: str, port: int, root: Path, payload: Path, digest: str, scratch: Path) -> dict[str, float]:
    from connections.clients.base import IfExists
    from connections.clients.ftp import FtpClient

    conn = connection(kind="ftp", host=HOST, port=port, username=FTP_USER, password=FTP_PASSWORD)
    url = f"ftp://{FTP_USER}:{FTP_PASSWORD}@{HOST}:{port}/"
    if direction == "put":
        def courier() -> None:
            with FtpClient(conn) as client:
                client.upload(payload, "", "courier.bin", IfExists.OVERWRITE)
        return {"native": checked(lambda: run(["curl", "-s", "-S", "-T", str(payload), url + "native.bin"]), root / "native.bin", digest),
                "courier": checked(courier, root / "courier.bin", digest)}
    source = root / "source.bin"
    if not source.exists():
        shutil.copyfile(payload, source)
    arrived = scratch / "ftp.bin"

    def courier_get() -> None:
        with FtpClient(conn) as client:
            client.download("source.bin", arrived)

    return {"native": checked(lambda: run(["curl", "-s", "-S", "-o", str(arrived), url + "source.bin"]), arrived, digest),
            "courier": checked(courier_get, arrived, digest)}


# --------------------------------------------------------------------------

def compare(kind: str, turn: Callable[[], dict[str, float]], megabytes: int, repeat: int) -> dict[str, float]:
    speeds: dict[str, list[float]] = {"native": [], "courier": []}
    for attempt in range(repeat):
        for label, seconds in turn().items():
            speeds[label].append(megabytes / seconds)
        print(f"{kind:9} turn {attempt + 1}: native {speeds['native'][-1]:6.1f} MB/s, Courier {speeds['courier'][-1]:6.1f} MB/s "
              f"(load {load()})", flush=True)
    median = {label: statistics.median(values) for label, values in speeds.items()}
    return {"native": median["native"], "courier": median["courier"], "ratio": median["courier"] / median["native"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="file size in MiB")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default=",".join(KINDS), help="comma-separated: " + ", ".join(KINDS))
    parser.add_argument("--smb-signed-only", action="store_true", help="smbclient signs only (Courier still encrypts)")
    args = parser.parse_args()
    global ENCRYPTED_SMB
    ENCRYPTED_SMB = not args.smb_signed_only
    wanted = [kind for kind in args.only.split(",") if kind]
    if os.geteuid() != 0:
        raise SystemExit("Needs root: it starts sshd and smbd and uses the etltest login.")
    print(describe_machine())
    results: dict[str, dict[str, float]] = {}
    scratch = shared_tmp("bench-transfers-")
    try:
        payload = scratch / "payload.bin"
        digest = make_file(payload, args.mb)
        payload.chmod(0o644)
        if "sftp_get" in wanted:
            with loopback_sshd() as server:
                results["sftp_get"] = compare("sftp_get", lambda: sftp_get(server, payload, digest, scratch), args.mb, args.repeat)
        for protocol, server, turn in (("smb", loopback_smbd, smb), ("ftp", loopback_ftpd, ftp)):
            directions = [d for d in ("put", "get") if f"{protocol}_{d}" in wanted]
            if directions:
                with server() as (port, folder):
                    for direction in directions:
                        results[f"{protocol}_{direction}"] = compare(
                            f"{protocol}_{direction}", lambda d=direction, f=turn: f(d, port, folder, payload, digest, scratch),
                            args.mb, args.repeat)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"load average after: {load()}")
    for kind, figures in results.items():
        print(f"RESULT {kind}_native_median_mb_per_s={figures['native']:.1f}")
        print(f"RESULT {kind}_courier_median_mb_per_s={figures['courier']:.1f}")
        print(f"RESULT {kind}_courier_vs_native={figures['ratio']:.2f}")


if __name__ == "__main__":
    main()
