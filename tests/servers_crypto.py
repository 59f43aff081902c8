"""Key material for tests: a session TLS certificate and throwaway GnuPG homes."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.servers_common import HOST, need_binary, shared_tmp

__all__ = ["TlsCert", "GpgKeyPair", "tls_cert", "gpg_home", "throwaway_gnupghome"]

# TESTING.md section 8: a fixed s2k-count avoids gpg-agent's multi-second KDF
# calibration per home; TTL 0 stops a cached passphrase from letting a
# wrong-passphrase test pass.
GPG_AGENT_CONF = (
    "s2k-count 65536\n"
    "default-cache-ttl 0\n"
    "max-cache-ttl 0\n"
    "allow-loopback-pinentry\n"
)
GPG_PASSPHRASE = "s3cret"


@dataclass(frozen=True)
class TlsCert:
    """Self-signed certificate for 127.0.0.1 / localhost (PEM files, key unencrypted)."""

    cert_path: Path
    key_path: Path

    def client_context(self, max_tls12: bool = False) -> ssl.SSLContext:
        """A verifying client context trusting only this certificate.

        ``max_tls12`` is needed for ftplib's FTP_TLS data channel (see FtpServer).
        """
        ctx = ssl.create_default_context(cafile=str(self.cert_path))
        if max_tls12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        return ctx


@pytest.fixture(scope="session")
def tls_cert() -> Iterator[TlsCert]:
    openssl = need_binary("/usr/bin/openssl", "openssl")
    workdir = shared_tmp("tls-")
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    # EC P-256 instead of RSA: generated in milliseconds rather than ~0.3 s.
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", f"/CN={HOST}",
            "-addext", f"subjectAltName=IP:{HOST},DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True, capture_output=True,
    )
    try:
        yield TlsCert(cert, key)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def throwaway_gnupghome(prefix: str = "gpg-") -> Iterator[Path]:
    """An empty GNUPGHOME with the fast, non-caching agent config; removed on exit.

    Directly under /tmp because gpg-agent's socket path must stay short.
    """
    gpgconf = need_binary("/usr/bin/gpgconf", "gnupg")
    home = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    home.chmod(0o700)
    (home / "gpg-agent.conf").write_text(GPG_AGENT_CONF)
    try:
        yield home
    finally:
        # The agent outlives gpg and would keep running with a deleted home.
        subprocess.run([gpgconf, "--homedir", str(home), "--kill", "all"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


@dataclass(frozen=True)
class GpgKeyPair:
    """An ed25519 (sign) + cv25519 (encrypt) key in ``home``; its secret key has no passphrase.

    ``gpg`` holds the secret key: ``gpg.decrypt(data)`` (``passphrase`` is accepted and ignored).
    """

    home: Path
    fingerprint: str
    public_key_armored: str
    passphrase: str
    gpg: Any  # gnupg.GPG; Any keeps python-gnupg out of this module's import


@pytest.fixture
def gpg_home() -> Iterator[GpgKeyPair]:
    gnupg = pytest.importorskip("gnupg")
    need_binary("/usr/bin/gpg", "gnupg")
    with throwaway_gnupghome() as home:
        gpg = gnupg.GPG(gnupghome=str(home))
        key = gpg.gen_key(
            gpg.gen_key_input(
                key_type="EDDSA", key_curve="ed25519", subkey_type="ECDH", subkey_curve="cv25519",
                name_real="Courier Test", name_email="courier@example.test",
                # No passphrase on the test's own secret key: with the agent's cache
                # switched off, a busy machine let the cached passphrase expire
                # between creating and self-signing the key, and gpg then tried a
                # terminal pinentry. Courier itself only ever encrypts to public keys.
                no_protection=True, expire_date=0,
            )
        )
        if not key.fingerprint:
            raise RuntimeError(f"gpg key generation failed: {key.stderr}")
        yield GpgKeyPair(home, key.fingerprint, gpg.export_keys(key.fingerprint), GPG_PASSPHRASE, gpg)
