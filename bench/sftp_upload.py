"""Upload speed: Courier's SFTP destination client vs the OpenSSH `sftp` client.

    .venv/bin/python bench/sftp_upload.py [--mb 256] [--repeat 5]

Needs root and openssh-server (like tests/servers_daemons.py, whose helpers
start the same kind of loopback sshd: own port, config, host key, and the
etltest login). Both clients log in with the same ed25519 key and upload the
same random file to the same sshd; each upload is checked byte for byte.
The clients take turns, `--repeat` uploads each; the ratio is that of the
medians (the machine is shared: one upload can be disturbed), the best of
each is reported too.
Prints `RESULT name=value` lines at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from tests.servers_common import HOST, ensure_test_user, free_port, shared_tmp, stop_process, wait_port  # noqa: E402
from tests.servers_daemons import SSHD, _make_ssh_keys, _sshd_config  # noqa: E402


@dataclass(frozen=True)
class Sshd:
    port: int
    workdir: Path
    target: Path  # a folder in etltest's home that both clients upload into

    @property
    def key(self) -> Path:
        return self.workdir / "client_ed25519"

    @property
    def host_key_line(self) -> str:
        return " ".join((self.workdir / "host_ed25519.pub").read_text().split()[:2])


@contextmanager
def loopback_sshd() -> Iterator[Sshd]:
    user = ensure_test_user()
    workdir = shared_tmp("bench-sshd-")
    target = Path(user.pw_dir) / f"bench-{secrets.token_hex(4)}"
    target.mkdir(mode=0o755)
    shutil.chown(target, user.pw_uid, user.pw_gid)
    _make_ssh_keys(workdir, "unused-" + secrets.token_hex(4))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = free_port()
    log = workdir / "sshd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(_sshd_config(workdir, port))],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc, log=log)
        yield Sshd(port, workdir, target)
    finally:
        stop_process(proc)
        shutil.rmtree(target, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)


def make_file(path: Path, megabytes: int) -> str:
    """Random bytes (nothing for a transport to compress) and their SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        for _ in range(megabytes):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            fh.write(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def upload_openssh(server: Sshd, local: Path, name: str) -> float:
    known = server.workdir / "known_hosts"
    known.write_text(f"[{HOST}]:{server.port} {server.host_key_line}\n")
    batch = server.workdir / "batch"
    batch.write_text(f"put {local} {server.target}/{name}\n")
    command = ["sftp", "-q", "-b", str(batch), "-i", str(server.key), "-P", str(server.port),
               "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
               "-o", "BatchMode=yes", f"etltest@{HOST}"]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def courier_connection(server: Sshd):
    import django

    django.setup()
    from connections.models import Connection

    # Never saved: the client only reads the fields, so no database is needed.
    return Connection(kind="sftp", name="bench", host=HOST, port=server.port, username="etltest",
                      private_key=server.key.read_text(), host_key=server.host_key_line, folder=str(server.target))


def upload_courier(server: Sshd, local: Path, name: str) -> float:
    """Login, upload to a temporary name, size check and rename: what a delivery does."""
    from connections.clients.base import IfExists
    from connections.clients.sftp import SftpClient

    conn = courier_connection(server)
    started = time.perf_counter()
    with SftpClient(conn) as client:
        client.upload(local, "", name, IfExists.OVERWRITE)
    return time.perf_counter() - started


def measure(server: Sshd, local: Path, digest: str, megabytes: int, repeat: int) -> dict[str, list[float]]:
    speeds: dict[str, list[float]] = {"openssh": [], "courier": []}
    uploaders = {"openssh": upload_openssh, "courier": upload_courier}
    for attempt in range(repeat):
        # Alternate the clients so a burst of load elsewhere hits both alike.
        for label, upload in uploaders.items():
            name = f"{label}-{attempt}.bin"
            seconds = upload(server, local, name)
            arrived = server.target / name
            if sha256_of(arrived) != digest:
                raise SystemExit(f"{label}: the uploaded file differs from the original")
            arrived.unlink()
            speeds[label].append(megabytes / seconds)
            print(f"{label:8} upload {attempt + 1}: {megabytes / seconds:6.1f} MB/s ({seconds:.2f} s)", flush=True)
    return speeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="file size in MiB")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0 or not os.access(SSHD, os.X_OK):
        raise SystemExit("Needs root and /usr/sbin/sshd (apt-get install openssh-server).")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with loopback_sshd() as server:
        local = server.workdir / "payload.bin"
        digest = make_file(local, args.mb)
        speeds = measure(server, local, digest, args.mb, args.repeat)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    best = {label: max(values) for label, values in speeds.items()}
    median = {label: statistics.median(values) for label, values in speeds.items()}
    for label in speeds:
        print(f"RESULT {label}_median_mb_per_s={median[label]:.1f}")
        print(f"RESULT {label}_best_mb_per_s={best[label]:.1f}")
    print(f"RESULT courier_vs_openssh={median['courier'] / median['openssh']:.2f}")
    print(f"RESULT courier_vs_openssh_best={best['courier'] / best['openssh']:.2f}")


if __name__ == "__main__":
    main()
