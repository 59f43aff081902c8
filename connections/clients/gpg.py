"""GnuPG: read a public key's details, encrypt files for it — always in a throwaway home."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import gnupg

from connections.clients.base import ClientError


class GpgError(ClientError):
    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


@dataclass(frozen=True)
class KeyInfo:
    fingerprint: str
    user_ids: list[str]
    expires_at: datetime | None


@contextmanager
def throwaway_home():
    """A private GNUPGHOME that exists only for one operation (short path: the agent socket lives there)."""
    home = tempfile.mkdtemp(prefix="courier-gpg-", dir="/tmp")
    try:
        yield gnupg.GPG(gnupghome=home)
    finally:
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


def inspect_key(armored: str) -> KeyInfo:
    """Fingerprint, user ids and expiry of an ASCII-armoured public key; refuses invalid or expired keys."""
    if "BEGIN PGP PUBLIC KEY BLOCK" not in armored:
        raise GpgError("This is not an ASCII-armoured OpenPGP public key (-----BEGIN PGP PUBLIC KEY BLOCK-----).")
    if "PRIVATE KEY" in armored:
        raise GpgError("This is a private key; give the public key only.")
    with throwaway_home() as gpg:
        result = gpg.import_keys(armored)
        keys = gpg.list_keys()
    if not result.fingerprints or not keys:
        raise GpgError("The public key cannot be read by GnuPG (damaged or not a key).")
    if len(keys) > 1:
        raise GpgError(f"The text holds {len(keys)} keys; give exactly one.")
    key = keys[0]
    expires = datetime.fromtimestamp(int(key["expires"]), tz=timezone.utc) if key.get("expires") else None
    if expires and expires <= datetime.now(tz=timezone.utc):
        raise GpgError(f"The key {key['fingerprint']} expired on {expires:%Y-%m-%d}.")
    if key.get("trust") in ("r", "e"):
        raise GpgError(f"The key {key['fingerprint']} is revoked or expired.")
    return KeyInfo(fingerprint=key["fingerprint"], user_ids=list(key.get("uids", [])), expires_at=expires)


def encrypt_file(armored: str, source: Path, target: Path, *, armor: bool = False) -> None:
    with throwaway_home() as gpg:
        fingerprints = gpg.import_keys(armored).fingerprints
        if not fingerprints:
            raise GpgError("The public key cannot be read by GnuPG.")
        with open(source, "rb") as fh:
            result = gpg.encrypt_file(fh, fingerprints, armor=armor, always_trust=True, output=str(target))
    if not result.ok:
        target.unlink(missing_ok=True)
        raise GpgError(f"GnuPG could not encrypt {source.name}: {result.status}.")
